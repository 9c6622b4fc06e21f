package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

func jsOptions(t *testing.T, in, out string) string {
	t.Helper()
	b, err := json.Marshal(map[string]string{"incomingScript": in, "outgoingScript": out})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func newJS(t *testing.T, in, out string, cfg Config) (*Configured, error) {
	t.Helper()
	return New("js", model.MappingDefinition{MappingEngine: "JavaScript", Options: json.RawMessage(jsOptions(t, in, out))}, cfg)
}

func mustJS(t *testing.T, in, out string) *Configured {
	t.Helper()
	c, err := newJS(t, in, out, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// The text payload example of Ditto's connectivity-mapping.md.
const docTextScript = `
function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  if (contentType !== 'application/json') return null;

  let jsonData = JSON.parse(textPayload);
  let value = {
    temperature: { properties: { value: parseFloat(jsonData.temp.split(" ")[0]) } },
    pressure: { properties: { value: jsonData.pres.value } },
    humidity: { properties: { value: jsonData.hum } }
  };

  return Ditto.buildDittoProtocolMsg(
    'org.eclipse.ditto', headers['device_id'],
    'things', 'twin', 'commands', 'modify',
    '/features', headers, value
  );
}`

func TestJavaScriptDocTextExample(t *testing.T) {
	m := mustJS(t, docTextScript, "")
	ext := textMsg(map[string]string{"content-type": "application/json", "device_id": "sensor1"},
		`{"temp": "23.42 °C", "hum": 78, "pres": {"value": 760, "unit": "mmHg"}}`)
	o := m.MapIncoming(ext)
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	got := o.Messages[0]
	if got.Topic != "org.eclipse.ditto/sensor1/things/twin/commands/modify" || got.Path != "/features" {
		t.Fatalf("message %+v", got)
	}
	jsonEqual(t, string(got.Value), `{"temperature":{"properties":{"value":23.42}},"pressure":{"properties":{"value":760}},"humidity":{"properties":{"value":78}}}`)
	if got.Headers["device_id"] != "sensor1" || got.Headers["content-type"] != "application/json" {
		t.Fatalf("headers %v", got.Headers)
	}
	// Another content type is dropped (null), not failed.
	o = m.MapIncoming(textMsg(map[string]string{"content-type": "text/plain"}, "x"))
	if o.Err != nil || len(o.Messages) != 0 || o.Skipped {
		t.Fatalf("drop: %+v", o)
	}
}

// The binary payload example of Ditto's connectivity-mapping.md.
const docBinaryScript = `
function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  if (contentType !== 'application/octet-stream') return null;

  let view = new DataView(bytePayload);
  let value = {
    temperature: { properties: { value: view.getInt16(0) / 100.0 } },
    pressure: { properties: { value: view.getInt16(2) } },
    humidity: { properties: { value: view.getUint8(4) } }
  };

  return Ditto.buildDittoProtocolMsg(
    'org.eclipse.ditto', headers['device_id'],
    'things', 'twin', 'commands', 'modify',
    '/features', headers, value
  );
}`

func TestJavaScriptDocBinaryExample(t *testing.T) {
	m := mustJS(t, docBinaryScript, "")
	ext := protocol.External{Headers: map[string]string{"content-type": "application/octet-stream", "device_id": "sensor1"},
		Bytes: []byte{0x09, 0xEF, 0x03, 0xF7, 0x2A}}
	o := m.MapIncoming(ext)
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	jsonEqual(t, string(o.Messages[0].Value), `{"temperature":{"properties":{"value":25.43}},"pressure":{"properties":{"value":1015}},"humidity":{"properties":{"value":42}}}`)
}

func TestJavaScriptDefaultFunctions(t *testing.T) {
	// A script that only adds a helper keeps the default mapToDittoProtocolMsg:
	// Ditto Protocol text, or Ditto Protocol JSON as octet-stream bytes.
	m := mustJS(t, "var unused = 1;", "var unused2 = 2;")
	o := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto}, twinEvent))
	if o.Err != nil || len(o.Messages) != 1 || o.Messages[0].Path != "/features/lamp/properties/on" {
		t.Fatalf("ditto text: %+v", o)
	}
	o = m.MapIncoming(protocol.External{Headers: map[string]string{"content-type": "application/octet-stream"}, Bytes: []byte(twinEvent)})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("octet-stream: %+v", o)
	}
	o = m.MapIncoming(protocol.External{Headers: map[string]string{"content-type": "application/octet-stream"}, Bytes: []byte("not json")})
	if o.Err != nil || len(o.Messages) != 0 {
		t.Fatalf("octet-stream garbage is dropped: %+v", o)
	}
	// Default outgoing: the Ditto Protocol JSON built by the scope helpers, headers = Ditto headers.
	msg := protocol.Message{Topic: "org.eclipse.ditto/thing-1/things/twin/events/modified", Headers: map[string]string{"correlation-id": "c-1"},
		Path: "/attributes/a", Value: json.RawMessage(`42`), Revision: 3}
	out := m.MapOutgoing(msg)
	if out.Err != nil || len(out.Messages) != 1 {
		t.Fatalf("outgoing %+v", out)
	}
	ext := out.Messages[0]
	if ext.Text != `{"topic":"org.eclipse.ditto/thing-1/things/twin/events/modified","path":"/attributes/a","headers":{"correlation-id":"c-1"},"value":42}` {
		t.Fatalf("text %s", ext.Text)
	}
	if !reflect.DeepEqual(ext.Headers, map[string]string{"correlation-id": "c-1", "content-type": ContentTypeDitto}) {
		t.Fatalf("headers %v", ext.Headers)
	}
}

func TestJavaScriptWithoutScripts(t *testing.T) {
	m := mustJS(t, "", "")
	o := m.MapIncoming(textMsg(nil, twinEvent))
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("incoming %+v", o)
	}
	if o := m.MapIncoming(protocol.External{}); o.Err != nil || len(o.Messages) != 0 {
		t.Fatalf("no payload %+v", o)
	}
	out := m.MapOutgoing(o.Messages[0])
	if out.Err != nil || out.Messages[0].Headers["content-type"] != ContentTypeDitto || out.Messages[0].Headers["correlation-id"] != "c-1" {
		t.Fatalf("outgoing %+v", out)
	}
}

func TestJavaScriptOutgoing(t *testing.T) {
	out := `
function mapFromDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders, value, status, extra) {
  if (action !== 'modified') { return null; }
  let headers = { 'thing': namespace + ':' + name, 'channel': channel, 'n': 5, 'flag': true };
  if (path === '/attributes/bytes') {
    return Ditto.buildExternalMsg(headers, null, Ditto.stringToArrayBuffer('\x01\x02\xff'), 'application/octet-stream');
  }
  return [
    Ditto.buildExternalMsg(headers, JSON.stringify(value), null, 'application/json'),
    Ditto.buildExternalMsg({}, 'second', null, 'text/plain')
  ];
}`
	m := mustJS(t, "", out)
	msg := protocol.Message{Topic: "ns/thing/things/live/events/modified", Path: "/attributes/a", Value: json.RawMessage(`{"x":1}`)}
	o := m.MapOutgoing(msg)
	if o.Err != nil || len(o.Messages) != 2 {
		t.Fatalf("outcome %+v", o)
	}
	want := protocol.External{Headers: map[string]string{"thing": "ns:thing", "channel": "live", "n": "5", "flag": "true", "content-type": "application/json"},
		Text: `{"x":1}`, IsText: true}
	if !reflect.DeepEqual(o.Messages[0], want) {
		t.Fatalf("first %+v", o.Messages[0])
	}
	if o.Messages[1].Text != "second" || o.Messages[1].Headers["content-type"] != "text/plain" {
		t.Fatalf("second %+v", o.Messages[1])
	}
	msg.Path = "/attributes/bytes"
	o = m.MapOutgoing(msg)
	if o.Err != nil || len(o.Messages) != 1 || !reflect.DeepEqual(o.Messages[0].Bytes, []byte{1, 2, 0xff}) || o.Messages[0].IsText {
		t.Fatalf("bytes %+v", o)
	}
	msg.Topic = "ns/thing/things/twin/events/created"
	if o = m.MapOutgoing(msg); o.Err != nil || len(o.Messages) != 0 {
		t.Fatalf("null result %+v", o)
	}
	// Policies have no channel: 'none' is passed and the criterion shifts.
	m = mustJS(t, "", `function mapFromDittoProtocolMsg(ns, n, g, ch, crit, act) { return Ditto.buildExternalMsg({}, [g, ch, crit, act].join(','), null, 'text/plain'); }`)
	o = m.MapOutgoing(protocol.Message{Topic: "ns/p/policies/announcements/subjectDeletion", Path: "/"})
	if o.Err != nil || o.Messages[0].Text != "policies,none,announcements,subjectDeletion" {
		t.Fatalf("policy %+v", o)
	}
}

func TestJavaScriptWrapperOverrideAndHelpers(t *testing.T) {
	in := `
function mapToDittoProtocolMsgWrapper(externalMsg) {
  let s = Ditto.arrayBufferToString(externalMsg.bytePayload);
  let back = Ditto.arrayBufferToString(Ditto.stringToArrayBuffer(s));
  return [1, 2].map(function (i) {
    return Ditto.buildDittoProtocolMsg('ns', 'dev' + i, 'things', 'live', 'messages', 'm', '/inbox/messages/m',
      { 'correlation-id': 'c' + i }, back, 200, { 'a': i });
  });
}`
	m := mustJS(t, in, "")
	o := m.MapIncoming(protocol.External{Bytes: []byte("h\xe9")})
	if o.Err != nil || len(o.Messages) != 2 {
		t.Fatalf("outcome %+v", o)
	}
	got := o.Messages[1]
	want := protocol.Message{Topic: "ns/dev2/things/live/messages/m", Path: "/inbox/messages/m", Status: 200,
		Headers: map[string]string{"correlation-id": "c2", HeaderInboundPayloadMapper: "js"},
		Value:   json.RawMessage(`"hé"`), Extra: json.RawMessage(`{"a":2}`)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
}

func TestJavaScriptFailures(t *testing.T) {
	cfg := testConfig()
	// A runtime's set-up (the prelude, the guards) runs under the same
	// limit: under -race on a busy machine it once took over 100 ms.
	cfg.JavaScript.MaxScriptExecutionTime = 300 * time.Millisecond
	cases := []struct {
		name   string
		script string
		want   error
	}{
		{"endless loop", `function mapToDittoProtocolMsg() { while (true) {} }`, ErrTimeout},
		{"recursion", `function f(n) { return f(n + 1) + 1; } function mapToDittoProtocolMsg() { return f(0); }`, ErrMappingFailed},
		{"throw", `function mapToDittoProtocolMsg() { throw new Error('device payload unknown'); }`, ErrMappingFailed},
		{"not a message", `function mapToDittoProtocolMsg() { return {topic: 'x'}; }`, ErrMappingFailed},
		{"reference error", `function mapToDittoProtocolMsg() { return notDefined.x; }`, ErrMappingFailed},
		{"asByteBuffer", `function mapToDittoProtocolMsg(h, t, b) { return Ditto.asByteBuffer(b); }`, ErrMappingFailed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := newJS(t, c.script, c.script, cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			o := m.MapIncoming(textMsg(nil, "x"))
			if !errors.Is(o.Err, c.want) {
				t.Fatalf("want %v, got %+v", c.want, o)
			}
			if d := time.Since(start); d > 2*time.Second {
				t.Fatalf("took %v", d)
			}
			// The runtime stays usable after a failure (interrupt cleared).
			ok, err := newJS(t, `function mapToDittoProtocolMsg(h, t) { return JSON.parse(t); }`, "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			if o := ok.MapIncoming(textMsg(nil, twinEvent)); o.Err != nil {
				t.Fatal(o.Err)
			}
		})
	}
	t.Run("outgoing endless loop then success", func(t *testing.T) {
		m, err := newJS(t, "", `var calls = 0; function mapFromDittoProtocolMsg() { calls++; if (calls === 1) { for (;;) {} } return Ditto.buildExternalMsg({}, 'ok', null, 'text/plain'); }`, cfg)
		if err != nil {
			t.Fatal(err)
		}
		msg := protocol.Message{Topic: "ns/n/things/twin/events/created", Path: "/"}
		start := time.Now()
		if o := m.MapOutgoing(msg); !errors.Is(o.Err, ErrTimeout) {
			t.Fatalf("first: %+v", o)
		}
		if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
			t.Fatalf("interrupted after %v", d)
		}
		if o := m.MapOutgoing(msg); o.Err != nil || o.Messages[0].Text != "ok" {
			t.Fatalf("second: %+v", o)
		}
	})
	t.Run("no payload fields", func(t *testing.T) {
		m, _ := newJS(t, "", `function mapFromDittoProtocolMsg() { return {headers: {}}; }`, cfg)
		if o := m.MapOutgoing(protocol.Message{Topic: "ns/n/things/twin/events/created", Path: "/"}); !errors.Is(o.Err, ErrMappingFailed) {
			t.Fatalf("%+v", o)
		}
	})
}

func TestJavaScriptConfiguration(t *testing.T) {
	big := "var x = '" + strings.Repeat("a", 50000) + "';"
	if _, err := newJS(t, big, "", testConfig()); !errors.Is(err, ErrConfiguration) || !strings.Contains(err.Error(), "<50000> bytes") {
		t.Fatalf("huge script: %v", err)
	}
	if _, err := newJS(t, "", big, testConfig()); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("huge outgoing script: %v", err)
	}
	if _, err := newJS(t, "function (", "", testConfig()); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("syntax error: %v", err)
	}
	cfg := testConfig()
	cfg.JavaScript.MaxScriptExecutionTime = 50 * time.Millisecond
	if _, err := newJS(t, "while(true){}", "", cfg); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("endless top level: %v", err)
	}
	// Limits are configurable.
	cfg = testConfig()
	cfg.JavaScript.MaxScriptSizeBytes = 10
	if _, err := newJS(t, "var abcdef = 1;", "", cfg); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("size limit 10: %v", err)
	}
	cfg = testConfig()
	cfg.JavaScript.MaxScriptStackDepth = 200
	deep := `function f(n) { return n === 0 ? 0 : f(n - 1) + 1; }
function mapToDittoProtocolMsg() { return Ditto.buildDittoProtocolMsg('a','b','things','twin','commands','modify','/', {}, f(100)); }`
	m, err := newJS(t, deep, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o := m.MapIncoming(textMsg(nil, "x")); o.Err != nil || string(o.Messages[0].Value) != "100" {
		t.Fatalf("depth 200: %+v", o)
	}
	m, _ = newJS(t, deep, "", testConfig())
	if o := m.MapIncoming(textMsg(nil, "x")); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("depth 25: %+v", o)
	}
}

func TestJavaScriptConcurrent(t *testing.T) {
	m := mustJS(t, docTextScript, "")
	ext := textMsg(map[string]string{"content-type": "application/json", "device_id": "s"}, `{"temp": "1 C", "hum": 2, "pres": {"value": 3}}`)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if o := m.MapIncoming(ext); o.Err != nil || len(o.Messages) != 1 {
					t.Errorf("outcome %+v", o)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func BenchmarkJavaScriptIncoming(b *testing.B) {
	opts, _ := json.Marshal(map[string]string{"incomingScript": docTextScript})
	m, err := New("b", model.MappingDefinition{MappingEngine: "JavaScript", Options: opts}, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	ext := textMsg(map[string]string{"content-type": "application/json", "device_id": "sensor1"},
		`{"temp": "23.42 °C", "hum": 78, "pres": {"value": 760, "unit": "mmHg"}}`)
	b.ReportAllocs()
	for b.Loop() {
		if o := m.MapIncoming(ext); o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}

func BenchmarkJavaScriptOutgoing(b *testing.B) {
	opts, _ := json.Marshal(map[string]string{"outgoingScript": "var x;"}) // the default mapFromDittoProtocolMsg, in JS
	m, err := New("b", model.MappingDefinition{MappingEngine: "JavaScript", Options: opts}, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	msg := protocol.Message{Topic: "org.eclipse.ditto/fancy-car/things/twin/events/modified", Headers: map[string]string{"correlation-id": "c"},
		Path: "/attributes/location", Value: json.RawMessage(`{"latitude":47.68,"longitude":9.3858}`)}
	b.ReportAllocs()
	for b.Loop() {
		if o := m.MapOutgoing(msg); o.Err != nil {
			b.Fatal(o.Err)
		}
	}
}
