package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// fixedNow is the clock of all tests.
var fixedNow = time.Date(2019, 10, 29, 14, 16, 18, 0, time.UTC)

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return fixedNow }
	cfg.ConnectionID = "conn-1"
	return cfg
}

func mustNew(t *testing.T, engine string, options string, in, out map[string]string) *Configured {
	t.Helper()
	def := model.MappingDefinition{MappingEngine: engine, IncomingConditions: in, OutgoingConditions: out}
	if options != "" {
		def.Options = json.RawMessage(options)
	}
	c, err := New("m1", def, testConfig())
	if err != nil {
		t.Fatalf("New(%s): %v", engine, err)
	}
	return c
}

func textMsg(headers map[string]string, text string) protocol.External {
	return protocol.External{Address: "src", Headers: headers, Text: text, IsText: true}
}

// jsonEqual compares two JSON texts semantically.
func jsonEqual(t *testing.T, got, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("got invalid JSON %q: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %q: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON differs\n got: %s\nwant: %s", got, want)
	}
}

// A twin command as in Ditto's protocol examples (protocol-examples-modifyattribute).
const modifyAttribute = `{
  "topic": "org.eclipse.ditto/fancy-car/things/twin/commands/modify",
  "headers": {"correlation-id": "<command-correlation-id>", "response-required": true},
  "path": "/attributes/location",
  "value": {"latitude": 47.68, "longitude": 9.3858}
}`

func TestDittoIncoming(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	out := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto, "mqtt.topic": "t"}, modifyAttribute))
	if out.Err != nil || out.Skipped || len(out.Messages) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	got := out.Messages[0]
	want := protocol.Message{
		Topic: "org.eclipse.ditto/fancy-car/things/twin/commands/modify",
		Headers: map[string]string{"correlation-id": "<command-correlation-id>", "response-required": "true",
			HeaderInboundPayloadMapper: "m1"},
		Path:  "/attributes/location",
		Value: json.RawMessage(`{"latitude":47.68,"longitude":9.3858}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestDittoIncomingBytesAndCharset(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	ext := protocol.External{Headers: map[string]string{"content-type": "application/json; charset=ISO-8859-1"},
		Bytes: []byte(`{"topic":"a/b/things/live/messages/hi","path":"/inbox/messages/hi","value":"gr` + "\xfc" + `n"}`)}
	out := m.MapIncoming(ext)
	if out.Err != nil || len(out.Messages) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	if string(out.Messages[0].Value) != `"grün"` {
		t.Fatalf("value %s", out.Messages[0].Value)
	}
}

func TestDittoIncomingFailures(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	for name, payload := range map[string]string{
		"empty":         "",
		"not JSON":      "hello",
		"array":         `[1]`,
		"no topic":      `{"path":"/"}`,
		"no path":       `{"topic":"a/b/things/twin/commands/modify"}`,
		"unknown group": `{"topic":"a/b/cars/twin/commands/modify","path":"/"}`,
		"bad action":    `{"topic":"a/b/things/twin/commands/jump","path":"/"}`,
		"short topic":   `{"topic":"a/b","path":"/"}`,
		"bad status":    `{"topic":"a/b/things/twin/commands/modify","path":"/","status":"x"}`,
		"extra array":   `{"topic":"a/b/things/twin/commands/modify","path":"/","extra":[]}`,
	} {
		t.Run(name, func(t *testing.T) {
			out := m.MapIncoming(textMsg(nil, payload))
			if !errors.Is(out.Err, ErrMappingFailed) {
				t.Fatalf("want ErrMappingFailed, got %+v", out)
			}
		})
	}
}

func TestDittoOutgoing(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	msg := protocol.Message{
		Topic:     "org.eclipse.ditto/fancy-car/things/twin/events/modified",
		Headers:   map[string]string{"correlation-id": "c-1", "response-required": "false", "requested-acks": `["twin-persisted"]`, "x": "1"},
		Path:      "/attributes/location",
		Value:     json.RawMessage(`{"latitude": 47.68, "longitude": 9.3858}`),
		Revision:  7,
		Timestamp: "2019-10-29T14:16:18.123Z",
	}
	out := m.MapOutgoing(msg)
	if out.Err != nil || len(out.Messages) != 1 {
		t.Fatalf("outcome %+v", out)
	}
	ext := out.Messages[0]
	wantText := `{"topic":"org.eclipse.ditto/fancy-car/things/twin/events/modified","headers":{"correlation-id":"c-1","requested-acks":["twin-persisted"],"response-required":false,"x":"1"},"path":"/attributes/location","value":{"latitude":47.68,"longitude":9.3858},"revision":7,"timestamp":"2019-10-29T14:16:18.123Z"}`
	if ext.Text != wantText || !ext.IsText {
		t.Fatalf("text\n got: %s\nwant: %s", ext.Text, wantText)
	}
	wantHeaders := map[string]string{"content-type": ContentTypeDitto, "correlation-id": "c-1"}
	if !reflect.DeepEqual(ext.Headers, wantHeaders) {
		t.Fatalf("headers %v", ext.Headers)
	}
}

func TestDittoRoundTrip(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	in := `{"topic":"ns/name/things/live/messages/ask/deep","headers":{"content-type":"text/plain"},"path":"/features/f/inbox/messages/ask/deep","value":"x","extra":{"attributes":{"a":1}},"status":200,"revision":3,"timestamp":"2020-01-01T00:00:00Z","metadata":{"m":1},"fields":"a,b"}`
	msgs, err := m.Mapper.MapIncoming(textMsg(nil, in))
	if err != nil {
		t.Fatal(err)
	}
	exts, err := m.Mapper.MapOutgoing(msgs[0])
	if err != nil {
		t.Fatal(err)
	}
	if exts[0].Text != in {
		t.Fatalf("round trip\n got: %s\nwant: %s", exts[0].Text, in)
	}
}

func TestTopicParse(t *testing.T) {
	for s, want := range map[string]topic{
		"ns/n/things/twin/commands/modify":           {Namespace: "ns", Name: "n", Group: "things", Channel: "twin", Criterion: "commands", Action: "modify"},
		"ns/n/things/live/messages/a/b":              {Namespace: "ns", Name: "n", Group: "things", Channel: "live", Criterion: "messages", Subject: "a/b"},
		"ns/n/policies/announcements/deleted":        {Namespace: "ns", Name: "n", Group: "policies", Channel: "none", Criterion: "announcements", Subject: "deleted"},
		"_/c/connections/announcements/opened":       {Namespace: "_", Name: "c", Group: "connections", Channel: "none", Criterion: "announcements", Subject: "opened"},
		"ns/n/things/twin/errors":                    {Namespace: "ns", Name: "n", Group: "things", Channel: "twin", Criterion: "errors"},
		"_/_/things/twin/search/subscribe":           {Namespace: "_", Name: "_", Group: "things", Channel: "twin", Criterion: "search", Action: "subscribe"},
		"ns/n/things/twin/acks/twin-persisted":       {Namespace: "ns", Name: "n", Group: "things", Channel: "twin", Criterion: "acks", Subject: "twin-persisted"},
		"ns/n/things/none/commands/checkPermissions": {Namespace: "ns", Name: "n", Group: "things", Channel: "none", Criterion: "commands", Action: "checkPermissions"},
	} {
		got, err := parseTopic(s)
		if err != nil || got != want {
			t.Errorf("parseTopic(%q) = %+v, %v", s, got, err)
		}
	}
	for _, s := range []string{"", "ns", "ns/n", "ns/n/things", "ns/n/things/twin", "ns/n/things/mirror/commands/modify", "ns/n/things/twin/commands", "ns/n/things/twin/rumours/x"} {
		if _, err := parseTopic(s); err == nil {
			t.Errorf("parseTopic(%q) accepted", s)
		}
	}
}

func defOf(engine, options string) model.MappingDefinition {
	return model.MappingDefinition{MappingEngine: engine, Options: json.RawMessage(options)}
}
