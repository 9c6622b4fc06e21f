package dataplane

import (
	"encoding/json"
	"testing"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
)

// Ditto's HeaderTranslator leaves the headers it keeps for itself
// (writeToExternalHeaders false: divert-response-to-connection,
// divert-expected-response-types, if-match, …) out of every Ditto Protocol
// message it publishes; target placeholders still resolve them.
func TestResponseDiversionHeadersNeverLeakIntoPublishedMessages(t *testing.T) {
	const diverting = `{"id":"div","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "specificConfig":{"is-diversion-source":"true"},
 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],
   "headerMapping":{"divert-response-to-connection":"other","divert-expected-response-types":"response,error",
     "If-Match":"*","x-kept":"{{ header:k }}"}}]}`
	const out = `{"id":"out","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"ex","authorizationContext":["a:b"],"topics":["_/_/things/live/messages"],
   "headerMapping":{"resolved-divert":"{{ header:divert-response-to-connection }}"}}]}`
	b := bus.NewLocal()
	src, _ := start(t, b, diverting)
	_, rec := start(t, b, out)
	src.Inbound(0)(client.Message{Address: "q", Headers: map[string]string{"k": "v"}, Payload: liveMessage("org.acme", "hi")})
	m := rec.next(t)

	var env struct {
		Headers map[string]any `json:"headers"`
	}
	if err := json.Unmarshal(m.Payload, &env); err != nil {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	for _, internal := range []string{"divert-response-to-connection", "divert-expected-response-types", "if-match"} {
		if _, ok := env.Headers[internal]; ok {
			t.Errorf("Ditto Protocol headers carry %s: %v", internal, env.Headers)
		}
		if _, ok := m.Headers[internal]; ok {
			t.Errorf("external headers carry %s: %v", internal, m.Headers)
		}
	}
	if env.Headers["x-kept"] != "v" {
		t.Errorf("custom header lost: %v", env.Headers)
	}
	if m.Headers["resolved-divert"] != "other" {
		t.Errorf("target placeholder does not see the internal header: %v", m.Headers)
	}
}
