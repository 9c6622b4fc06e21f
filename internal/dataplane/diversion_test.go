package dataplane

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
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

// diversionSource diverts its sources' responses to connection c: the
// first source's responses only, the second source's errors only.
const diversionSource = `{"id":"a","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "specificConfig":{"is-diversion-source":"true"%s},
 "sources":[
  {"addresses":["cmd"],"authorizationContext":["a:b"],
   "headerMapping":{"divert-response-to-connection":"c","divert-expected-response-types":"response"}},
  {"addresses":["cmd-errors"],"authorizationContext":["a:b"],
   "headerMapping":{"divert-response-to-connection":"c","divert-expected-response-types":"error"}}]}`

// answering is the device's connection: it receives live messages and
// answers them.
const answering = `{"id":"b","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "sources":[{"addresses":["answers"],"authorizationContext":["a:b"]}],
 "targets":[{"address":"devices/{{ thing:id }}","topics":["_/_/things/live/messages"],"authorizationContext":["a:b"]}]}`

// diversionTarget publishes the responses diverted from the sources of
// the connections it authorizes, one target per source index.
const diversionTarget = `{"id":"c","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "specificConfig":{"is-diversion-target":"true","authorized-connections-as-sources":"%s"},
 "targets":[
  {"address":"diverted/0/{{ thing:id }}","topics":[],"authorizationContext":["x:y"],
   "headerMapping":{"from":"{{ header:diverted-response-from-connection }}","cid":"{{ header:correlation-id }}"}},
  {"address":"diverted/1","topics":[],"authorizationContext":["x:y"]}]}`

func liveRequest(cid string) []byte {
	return []byte(`{"topic":"org.acme/d1/things/live/messages/ask","headers":{"correlation-id":"` + cid +
		`","content-type":"text/plain"},"path":"/inbox/messages/ask","value":"?"}`)
}

func liveAnswer(cid string) []byte {
	return []byte(`{"topic":"org.acme/d1/things/live/messages/ask","headers":{"correlation-id":"` + cid +
		`","content-type":"text/plain"},"path":"/inbox/messages/ask","value":"42","status":200}`)
}

// ask sends a live message through source address of a, lets b answer it,
// and returns nothing: the answer goes where diversion says.
func ask(t *testing.T, a, b *Plane, bRec *recorder, address, cid string) {
	t.Helper()
	a.Inbound(0)(client.Message{Address: address, Payload: liveRequest(cid),
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": cid}})
	if m := bRec.next(t); m.Address != "devices/org.acme:d1" {
		t.Fatalf("live message published to %s", m.Address)
	}
	b.Inbound(0)(client.Message{Address: "answers", Payload: liveAnswer(cid)})
}

func protocolMessage(t *testing.T, m client.Message) (env struct {
	Topic   string            `json:"topic"`
	Headers map[string]string `json:"headers"`
	Status  int               `json:"status"`
	Value   any               `json:"value"`
}) {
	t.Helper()
	if err := json.Unmarshal(m.Payload, &env); err != nil {
		t.Fatalf("payload %s: %v", m.Payload, err)
	}
	return env
}

// Ditto's ResponseDiversionInterceptor: the response to a diversion
// source's live message goes to the diversion target connection's target of
// the source's index, carrying diverted-response-from-connection, and never
// to the source's reply target; a type outside divert-expected-response-types
// takes its normal way.
func TestResponsesOfADiversionSourceArePublishedByTheDiversionTarget(t *testing.T) {
	bs := bus.NewLocal()
	a, aRec := start(t, bs, fmt.Sprintf(diversionSource, ""))
	b, bRec := start(t, bs, answering)
	c, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "a"))

	// a response of the first source: diverted to c's first target
	ask(t, a, b, bRec, "cmd", "r1")
	m := cRec.next(t)
	if m.Address != "diverted/0/org.acme:d1" || m.Headers["from"] != "a" || m.Headers["cid"] != "r1" {
		t.Fatalf("diverted response published as %+v", m)
	}
	env := protocolMessage(t, m)
	if env.Topic != "org.acme/d1/things/live/messages/ask" || env.Status != 200 || env.Value != "42" {
		t.Errorf("diverted response %s", m.Payload)
	}
	if env.Headers[HeaderDivertedFrom] != "a" {
		t.Errorf("diverted-response-from-connection missing: %v", env.Headers)
	}
	for _, internal := range []string{HeaderDivertTo, HeaderDivertTypes, headerReplyTarget} {
		if _, ok := env.Headers[internal]; ok {
			t.Errorf("published response carries %s: %s", internal, m.Payload)
		}
	}
	aRec.none(t)
	if n := count(c, monitor.Outbound, monitor.Published, "diverted/0/{{ thing:id }}", true); n != 1 {
		t.Errorf("c published %d", n)
	}
	if n := count(a, monitor.Outbound, monitor.Published, monitor.ResponsesAddress, true); n != 0 {
		t.Errorf("a published %d responses", n)
	}

	// the second source diverts errors only: its response goes to a's reply target
	ask(t, a, b, bRec, "cmd-errors", "r2")
	m = aRec.next(t)
	if m.Address != "a-replies" || m.Headers["correlation-id"] != "r2" {
		t.Fatalf("response published as %+v", m)
	}
	if env := protocolMessage(t, m); env.Status != 200 || env.Headers[HeaderDivertedFrom] != "" {
		t.Errorf("normal response %s", m.Payload)
	}
	cRec.none(t)

	// …and its errors to c's second target
	twin := []byte(`{"topic":"org.acme/d1/things/twin/commands/modify","headers":{"correlation-id":"r3"},"path":"/attributes/x","value":1}`)
	a.Inbound(0)(client.Message{Address: "cmd-errors", Payload: twin,
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": "r3"}})
	m = cRec.next(t)
	if env := protocolMessage(t, m); m.Address != "diverted/1" || env.Topic != "org.acme/d1/things/twin/errors" ||
		env.Status != 501 || env.Headers[HeaderDivertedFrom] != "a" {
		t.Fatalf("diverted error published to %s: %s", m.Address, m.Payload)
	}
	aRec.none(t)

	// the first source does not divert errors: a's reply target has it
	a.Inbound(0)(client.Message{Address: "cmd", Payload: twin,
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": "r4"}})
	if m = aRec.next(t); m.Address != "a-replies" || protocolMessage(t, m).Status != 501 {
		t.Fatalf("error published to %s: %s", m.Address, m.Payload)
	}
	cRec.none(t)
}

// authorized-connections-as-sources: a diversion target drops the
// responses of connections it does not name (the source has given them up).
func TestDiversionTargetDropsResponsesOfUnauthorizedSources(t *testing.T) {
	bs := bus.NewLocal()
	a, aRec := start(t, bs, fmt.Sprintf(diversionSource, ""))
	b, bRec := start(t, bs, answering)
	_, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "other, x"))
	ask(t, a, b, bRec, "cmd", "r1")
	cRec.none(t)
	aRec.none(t)
}

// preserve-normal-response-via-source: the diverted response reaches the
// source's reply target too.
func TestPreservedResponsesGoToBothConnections(t *testing.T) {
	bs := bus.NewLocal()
	a, aRec := start(t, bs, fmt.Sprintf(diversionSource, `,"preserve-normal-response-via-source":"true"`))
	b, bRec := start(t, bs, answering)
	_, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "a"))
	ask(t, a, b, bRec, "cmd", "r1")
	if m := cRec.next(t); m.Address != "diverted/0/org.acme:d1" {
		t.Fatalf("diverted to %s", m.Address)
	}
	if m := aRec.next(t); m.Address != "a-replies" || protocolMessage(t, m).Headers[HeaderDivertedFrom] != "" {
		t.Fatalf("normal response %s: %s", m.Address, m.Payload)
	}
}

// Without is-diversion-source (nor -target) Ditto builds no interceptor:
// the header mapping's divert-response-to-connection changes nothing.
func TestDiversionNeedsADiversionConnection(t *testing.T) {
	bs := bus.NewLocal()
	js := strings.Replace(fmt.Sprintf(diversionSource, ""), `"is-diversion-source":"true"`, `"is-diversion-source":"false"`, 1)
	a, aRec := start(t, bs, js)
	b, bRec := start(t, bs, answering)
	_, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "a"))
	ask(t, a, b, bRec, "cmd", "r1")
	if m := aRec.next(t); m.Address != "a-replies" {
		t.Fatalf("response published to %s", m.Address)
	}
	cRec.none(t)
}

func TestDivertExpectedResponseTypes(t *testing.T) {
	for _, tc := range []struct {
		header string
		want   []string // diverted types
	}{
		{"", []string{"response", "error"}},
		{"  ", []string{"response", "error"}},
		{"nack", []string{"nack"}},
		{" response , nack ", []string{"response", "nack"}},
		{"bogus", []string{"response", "error", "nack"}}, // none valid: Ditto diverts every type
	} {
		types := divertTypes(tc.header)
		for _, typ := range []string{"response", "error", "nack"} {
			diverted := types == nil || types[typ]
			if diverted != slices.Contains(tc.want, typ) {
				t.Errorf("%q: %s diverted %v", tc.header, typ, diverted)
			}
		}
	}
}

// The connections of the tests above are valid as Ditto's validator sees
// them: a diversion target's targets have no topics.
func TestDiversionConnectionsAreValid(t *testing.T) {
	for _, js := range []string{fmt.Sprintf(diversionSource, `,"preserve-normal-response-via-source":"true"`),
		fmt.Sprintf(diversionTarget, "a, other")} {
		if err := model.Validate(parse(t, js), model.DefaultValidationConfig(), anyType{}); err != nil {
			t.Errorf("%s: %v", js, err)
		}
	}
}

// anyType knows every connection type, without rules of its own.
type anyType struct{}

func (anyType) Protocol(string) (model.Protocol, bool) {
	return model.Protocol{NoHost: true, Rules: func(*model.Check) error { return nil }}, true
}

// Ditto's dynamic diversion: a payload mapper sets
// divert-response-to-connection among the Ditto headers it builds.
func TestAPayloadMapperChoosesTheDiversionTarget(t *testing.T) {
	bs := bus.NewLocal()
	a, aRec := start(t, bs, `{"id":"a","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "specificConfig":{"is-diversion-source":"true"},
 "mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"outgoingScript":"",
   "incomingScript":"function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) { let p = JSON.parse(textPayload); return Ditto.buildDittoProtocolMsg('org.acme', 'd1', 'things', 'live', 'messages', 'ask', '/inbox/messages/ask', {'correlation-id': headers['correlation-id'], 'content-type': 'text/plain', 'divert-response-to-connection': p.to}, '?'); }"}}},
 "sources":[{"addresses":["cmd"],"authorizationContext":["a:b"],"payloadMapping":["js"]}]}`)
	b, bRec := start(t, bs, answering)
	_, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "a"))
	a.Inbound(0)(client.Message{Address: "cmd", Payload: []byte(`{"to":"c"}`),
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": "d1", "content-type": "application/json"}})
	if m := bRec.next(t); m.Address != "devices/org.acme:d1" {
		t.Fatalf("live message published to %s", m.Address)
	}
	b.Inbound(0)(client.Message{Address: "answers", Payload: liveAnswer("d1")})
	if m := cRec.next(t); m.Address != "diverted/0/org.acme:d1" || m.Headers["from"] != "a" {
		t.Fatalf("diverted response published as %+v", m)
	}
	aRec.none(t)
}

// Ditto's interceptor drops a response that says it was diverted from a
// connection this one does not authorize, on the source's side too.
func TestAResponseClaimingADiversionFromAnUnauthorizedConnectionIsDropped(t *testing.T) {
	bs := bus.NewLocal()
	a, aRec := start(t, bs, fmt.Sprintf(diversionSource, ""))
	b, bRec := start(t, bs, answering)
	a.Inbound(0)(client.Message{Address: "cmd-errors", Payload: liveRequest("x1"),
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": "x1"}})
	bRec.next(t)
	claim := strings.Replace(string(liveAnswer("x1")), `"correlation-id":"x1"`,
		`"correlation-id":"x1","diverted-response-from-connection":"mallory"`, 1)
	b.Inbound(0)(client.Message{Address: "answers", Payload: []byte(claim)})
	aRec.none(t)

	// without the claim the same response is published
	a.Inbound(0)(client.Message{Address: "cmd-errors", Payload: liveRequest("x2"),
		Headers: map[string]string{"reply-to": "a-replies", "correlation-id": "x2"}})
	bRec.next(t)
	b.Inbound(0)(client.Message{Address: "answers", Payload: liveAnswer("x2")})
	if m := aRec.next(t); m.Headers["correlation-id"] != "x2" {
		t.Fatalf("response %+v", m)
	}
}

// Acknowledgements that failed are Ditto's response type nack: diverted
// when divert-expected-response-types names it.
func TestNacksAreDivertedWhenExpected(t *testing.T) {
	bs := bus.NewLocal()
	js := strings.Replace(requesterConn, `"sources":[{"addresses":["in"],`,
		`"specificConfig":{"is-diversion-source":"true"},
 "sources":[{"addresses":["in"],"headerMapping":{"divert-response-to-connection":"c","divert-expected-response-types":"nack"},`, 1)
	req, replies := start(t, bs, js)
	iss, err := New(parse(t, issuerConn), Config{Bus: bs})
	if err != nil {
		t.Fatal(err)
	}
	iss.Connected(0, &failing{})
	t.Cleanup(func() { iss.Close(); iss.Wait() })
	_, cRec := start(t, bs, fmt.Sprintf(diversionTarget, "req"))

	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "n-1", `,"timeout":"300ms"`)))
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v", o)
	}
	m := cRec.next(t)
	answer := decode(t, m)
	if m.Address != "diverted/0/org.acme:dev" || answer.Topic != "org.acme/dev/things/live/acks" || answer.Status != 424 ||
		answer.Headers[HeaderDivertedFrom] != "req" {
		t.Fatalf("diverted nack to %s: %s", m.Address, m.Payload)
	}
	replies.none(t)
}
