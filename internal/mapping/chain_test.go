package mapping

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

const twinEvent = `{"topic":"org.eclipse.ditto/thing-1/things/twin/events/modified","headers":{"correlation-id":"c-1"},"path":"/features/lamp/properties/on","value":true}`

func TestConditions(t *testing.T) {
	in := map[string]string{"sampleCondition": "fn:filter(header:incoming-mapping-required,'eq','true')"}
	out := map[string]string{"sampleCondition": "fn:filter(header:outgoing-mapping-required,'eq','true')"}
	m := mustNew(t, "Ditto", "", in, out)

	cases := []struct {
		name    string
		headers map[string]string
		skipped bool
	}{
		{"header true", map[string]string{"incoming-mapping-required": "true"}, false},
		{"header false", map[string]string{"incoming-mapping-required": "false"}, true},
		{"header missing", nil, true},
	}
	for _, c := range cases {
		t.Run("incoming "+c.name, func(t *testing.T) {
			o := m.MapIncoming(textMsg(c.headers, twinEvent))
			if o.Skipped != c.skipped || o.Err != nil {
				t.Fatalf("outcome %+v", o)
			}
			if !c.skipped && len(o.Messages) != 1 {
				t.Fatalf("messages %v", o.Messages)
			}
		})
	}
	msg := protocol.Message{Topic: "ns/n/things/twin/events/modified", Path: "/", Value: json.RawMessage(`{}`)}
	msg.Headers = map[string]string{"outgoing-mapping-required": "true"}
	if o := m.MapOutgoing(msg); o.Skipped || len(o.Messages) != 1 {
		t.Fatalf("outgoing true: %+v", o)
	}
	msg.Headers = map[string]string{"outgoing-mapping-required": "nope"}
	if o := m.MapOutgoing(msg); !o.Skipped {
		t.Fatalf("outgoing false: %+v", o)
	}
}

func TestConditionFunctions(t *testing.T) {
	msg := protocol.Message{Topic: "org.eclipse.ditto/thing-1/things/twin/events/modified", Path: "/features/lamp/properties/on",
		Headers: map[string]string{"response-required": "true", "device": "Lamp-7"}}
	lk := signalLookup(msg, testConfig())
	for cond, want := range map[string]bool{
		"fn:filter(header:response-required,'exists')":         true,
		"fn:filter(header:missing,'exists')":                   false,
		"fn:filter(header:missing,'exists','false')":           true,
		"fn:filter(header:device,'ne','Lamp-7')":               false,
		"fn:filter(header:device,'like','Lamp-*')":             true,
		"fn:filter(header:device,'like','Fan-*|Lamp-?')":       true,
		"fn:filter(thing:id,'eq','org.eclipse.ditto:thing-1')": true,
		"fn:filter(feature:id,'eq','lamp')":                    true,
		"fn:filter(topic:action,'eq','modified')":              true,
		"fn:filter(topic:channel,'eq','live')":                 false,
		"fn:filter(connection:id,'eq','conn-1')":               true,
		"fn:filter(header:device | fn:lower(),'eq','lamp-7')":  false, // pipelines are not arguments
		"fn:delete()": false,
	} {
		c := &Configured{cfg: testConfig()}
		if got := c.conditionsHold(compileConditions([]string{cond}, signalScope), lk); got != want {
			t.Errorf("%s = %v, want %v", cond, got, want)
		}
	}
}

func TestPlaceholderPipeline(t *testing.T) {
	lk := values{lk: func(prefix, name string) (string, bool) {
		if prefix == "header" && name == "device_id" {
			return "org.eclipse.ditto:Dev-1", true
		}
		return "", false
	}}
	for tmpl, want := range map[string]string{
		"{{ header:device_id }}":                                           "org.eclipse.ditto:Dev-1",
		"{{header:device_id|fn:substring-after(':')|fn:lower()}}":          "dev-1",
		"x-{{ header:device_id | fn:substring-before(\":\") }}-y":          "x-org.eclipse.ditto-y",
		"{{ header:nope | fn:default('fallback') }}":                       "fallback",
		"{{ header:nope | fn:default(header:device_id) }}":                 "org.eclipse.ditto:Dev-1",
		"{{ header:device_id | fn:replace('Dev','Lamp') | fn:upper() }}":   "ORG.ECLIPSE.DITTO:LAMP-1",
		"{{ header:device_id | fn:base64-encode() | fn:base64-decode() }}": "org.eclipse.ditto:Dev-1",
	} {
		got, ok, err := compileIn(headersOnly, tmpl, modeStrict).resolve(lk)
		if err != nil || !ok || got != want {
			t.Errorf("%s = %q, %v, %v; want %q", tmpl, got, ok, err, want)
		}
	}
	if _, _, err := compileIn(headersOnly, "{{ header:nope }}", modeStrict).resolve(lk); !errors.Is(err, errUnresolved) {
		t.Errorf("strict unresolved: %v", err)
	}
	for tmpl, want := range map[string]string{
		"a {{ header:nope }}":                                    "a {{ header:nope }}",
		"a {{ thing:id }}/{{ header:device_id }}":                "a {{ thing:id }}/org.eclipse.ditto:Dev-1",
		"{{ header:device_id | fn:nope() }}":                     "{{ header:device_id | fn:nope() }}",
		"{{header:device_id|fn:delete()}}-{{ fn:default('x') }}": "{{header:device_id|fn:delete()}}-x",
	} {
		if got, _, _ := compileIn(headersOnly, tmpl, modeKeep).resolve(lk); got != want {
			t.Errorf("keep %s: %q, want %q", tmpl, got, want)
		}
	}
	if _, ok, err := compileIn(headersOnly, "{{ time:now }}", modeOptional).resolve(lk); ok || err != nil {
		t.Errorf("time: outside the Set resolved: %v %v", ok, err)
	}
}

func TestContentTypeBlocklist(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	o := m.MapIncoming(textMsg(map[string]string{"content-type": "application/vnd.eclipse-hono-empty-notification"}, ""))
	if !o.Skipped || o.Err != nil {
		t.Fatalf("hono notification not skipped: %+v", o)
	}
	// A configured blocklist replaces the default one.
	m = mustNew(t, "Ditto", `{"content-type-blocklist":"text/plain"}`, nil, nil)
	if o := m.MapIncoming(textMsg(map[string]string{"content-type": "text/plain"}, twinEvent)); !o.Skipped {
		t.Fatalf("text/plain not skipped: %+v", o)
	}
	if o := m.MapIncoming(textMsg(map[string]string{"content-type": "application/vnd.eclipse-hono-empty-notification"}, twinEvent)); o.Skipped {
		t.Fatalf("default list still applied: %+v", o)
	}
}

func TestRegistryChains(t *testing.T) {
	defs := map[string]model.MappingDefinition{
		"onlyFlagged": {MappingEngine: "Ditto", IncomingConditions: map[string]string{"c": "fn:filter(header:flag,'exists')"}},
	}
	r, err := NewRegistry(defs, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if ch := r.Chain(nil); len(ch) != 1 || ch[0].ID != DefaultMapperID || ch[0].Engine != "Ditto" {
		t.Fatalf("default chain %+v", ch)
	}
	ch := r.Chain([]string{"Ditto", "onlyFlagged"})
	if len(ch) != 2 || ch[0].ID != "Ditto" || ch[1].ID != "onlyFlagged" {
		t.Fatalf("chain %+v", ch)
	}
	// Both mappers see the same message; the second only when flagged.
	outs := ch.MapIncoming(textMsg(nil, twinEvent))
	if len(outs) != 2 || len(outs[0].Messages) != 1 || !outs[1].Skipped {
		t.Fatalf("unflagged outcomes %+v", outs)
	}
	outs = ch.MapIncoming(textMsg(map[string]string{"flag": "1"}, twinEvent))
	if len(outs[0].Messages) != 1 || len(outs[1].Messages) != 1 {
		t.Fatalf("flagged outcomes %+v", outs)
	}
	if outs[0].Messages[0].Headers[HeaderInboundPayloadMapper] != "Ditto" || outs[1].Messages[0].Headers[HeaderInboundPayloadMapper] != "onlyFlagged" {
		t.Fatalf("mapper headers %v / %v", outs[0].Messages[0].Headers, outs[1].Messages[0].Headers)
	}
	// A failing mapper does not stop the others.
	outs = ch.MapIncoming(textMsg(map[string]string{"flag": "1"}, "garbage"))
	if outs[0].Err == nil || outs[1].Err == nil {
		t.Fatalf("garbage outcomes %+v", outs)
	}
	// Mandatory-configuration engines cannot be used by alias; unknown names fall back to the default mapper.
	if r.Known("JavaScript") || r.Known("ConnectionStatus") || !r.Known("Normalized") || !r.Known("onlyFlagged") {
		t.Fatal("Known")
	}
	if ch := r.Chain([]string{"nope"}); ch[0].ID != DefaultMapperID {
		t.Fatalf("unknown name: %+v", ch)
	}
}

func TestNewUnknownEngine(t *testing.T) {
	_, err := New("x", model.MappingDefinition{MappingEngine: "Protobuf"}, testConfig())
	if !errors.Is(err, ErrUnknownEngine) {
		t.Fatalf("err %v", err)
	}
	_, err = New("x", model.MappingDefinition{MappingEngine: "Ditto", Options: json.RawMessage(`[1]`)}, testConfig())
	if !errors.Is(err, ErrConfiguration) {
		t.Fatalf("err %v", err)
	}
}

// panicky proves that a panicking mapper becomes an error.
type panicky struct{}

func (panicky) MapIncoming(protocol.External) ([]protocol.Message, error) { panic("boom") }
func (panicky) MapOutgoing(protocol.Message) ([]protocol.External, error) { panic("boom") }

// many returns more messages than the limit.
type many struct{}

func (many) MapIncoming(protocol.External) ([]protocol.Message, error) {
	return make([]protocol.Message, 11), nil
}
func (many) MapOutgoing(protocol.Message) ([]protocol.External, error) {
	return make([]protocol.External, 11), nil
}

func TestPanicAndLimits(t *testing.T) {
	for name, m := range map[string]Mapper{"panic": panicky{}, "limit": many{}} {
		c := &Configured{ID: name, Mapper: m, cfg: testConfig()}
		if o := c.MapIncoming(textMsg(nil, "x")); !errors.Is(o.Err, ErrMappingFailed) {
			t.Errorf("%s incoming: %+v", name, o.Err)
		}
		if o := c.MapOutgoing(protocol.Message{Topic: "a/b/things/twin/events/created"}); !errors.Is(o.Err, ErrMappingFailed) {
			t.Errorf("%s outgoing: %+v", name, o.Err)
		}
	}
}

func FuzzIncoming(f *testing.F) {
	for _, s := range []string{twinEvent, modifyAttribute, "", "{}", `{"topic":"a/b/things/twin/commands/modify","path":"/"}`,
		`{"topic":"a/b/things/live/messages/x/y","path":"//","headers":{"a":[1,{"b":null}]},"status":200.5}`,
		`{"topic":"/b/policies/announcements/","path":"","revision":-1,"extra":{}}`, "\x00\xff", `{"topic":1}`} {
		f.Add(s, true)
	}
	m, err := New("f", model.MappingDefinition{MappingEngine: "Ditto"}, DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, payload string, isText bool) {
		ext := protocol.External{Text: payload, IsText: isText}
		if !isText {
			ext.Bytes = []byte(payload)
		}
		o := m.MapIncoming(ext)
		if o.Err != nil {
			if !errors.Is(o.Err, ErrMappingFailed) {
				t.Fatalf("unexpected error kind: %v", o.Err)
			}
			return
		}
		// What parses must survive a round trip unchanged.
		for _, msg := range o.Messages {
			ext, err := m.Mapper.MapOutgoing(msg)
			if err != nil {
				t.Fatal(err)
			}
			back, err := m.Mapper.MapIncoming(ext[0])
			if err != nil {
				t.Fatalf("re-parse of %s: %v", ext[0].Text, err)
			}
			ext2, _ := m.Mapper.MapOutgoing(back[0])
			if ext2[0].Text != ext[0].Text {
				t.Fatalf("unstable\n%s\n%s", ext[0].Text, ext2[0].Text)
			}
		}
	})
}

func BenchmarkDittoIncoming(b *testing.B) {
	m, _ := New("b", model.MappingDefinition{MappingEngine: "Ditto"}, DefaultConfig())
	ext := textMsg(map[string]string{"content-type": ContentTypeDitto}, modifyAttribute)
	b.ReportAllocs()
	for b.Loop() {
		if o := m.MapIncoming(ext); o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}

func BenchmarkDittoOutgoing(b *testing.B) {
	m, _ := New("b", model.MappingDefinition{MappingEngine: "Ditto"}, DefaultConfig())
	msgs, _ := m.Mapper.MapIncoming(textMsg(nil, modifyAttribute))
	b.ReportAllocs()
	for b.Loop() {
		if o := m.MapOutgoing(msgs[0]); o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}
