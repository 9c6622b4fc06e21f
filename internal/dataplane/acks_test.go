package dataplane

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// requester consumes live messages, requests the label its peer's target
// issues and answers on its reply target.
const requesterConn = `{"id":"req","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["a:b"],
   "acknowledgementRequests":{"includes":["iss:ack"]},
   "replyTarget":{"enabled":true,"address":"replies","expectedResponseTypes":["response","error","nack"]}},
  {"addresses":["dev-acks"],"authorizationContext":["a:b"],
   "acknowledgementRequests":{"includes":["iss:dev-ack"]}}]}`

// issuer publishes live messages of org.acme with the issued label
// iss:ack; its source takes devices' acknowledgements and responses.
const issuerConn = `{"id":"iss","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["device/answers"],"authorizationContext":["a:b"],"declaredAcks":["{{connection:id}}:dev-ack"],
   "replyTarget":{"enabled":true,"address":"device/errors","expectedResponseTypes":["error"]}}],
 "targets":[{"address":"device/{{ thing:id }}","authorizationContext":["a:b"],
   "topics":["_/_/things/live/messages?namespaces=org.acme"],"issuedAcknowledgementLabel":"{{connection:id}}:ack"}]}`

func liveMsg(ns, cid string, headers string) []byte {
	return []byte(`{"topic":"` + ns + `/dev/things/live/messages/ask","headers":{"correlation-id":"` + cid + `",` +
		`"content-type":"text/plain"` + headers + `},"path":"/inbox/messages/ask","value":"hi"}`)
}

// settled records the one settlement of a consumed message.
type settled chan client.Outcome

func (s settled) msg(address string, payload []byte) client.Message {
	return client.Message{Address: address, Payload: payload, Settle: func(o client.Outcome) { s <- o }}
}

func (s settled) wait(t *testing.T, within time.Duration) client.Outcome {
	t.Helper()
	select {
	case o := <-s:
		select {
		case again := <-s:
			t.Fatalf("settled twice: %v then %v", o, again)
		case <-time.After(20 * time.Millisecond):
		}
		return o
	case <-time.After(within):
		t.Fatalf("not settled within %v", within)
		return 0
	}
}

func decode(t *testing.T, m client.Message) *protocol.Message {
	t.Helper()
	pm, err := protocol.Decode(m.Payload)
	if err != nil {
		t.Fatalf("decode %s: %v", m.Payload, err)
	}
	return pm
}

// A live message requesting a label another connection's target issues,
// answered with a live response: one aggregated answer with both entries,
// published to the reply target; the message is accepted.
func TestIssuedAckAndLiveResponseAggregated(t *testing.T) {
	b := bus.NewLocal()
	req, replies := start(t, b, requesterConn)
	iss, device := start(t, b, issuerConn)
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-1", `,"timeout":"5s"`)))

	out := device.next(t)
	if out.Address != "device/org.acme:dev" {
		t.Fatalf("published to %s", out.Address)
	}
	sent := decode(t, out)
	if got := sent.Headers["requested-acks"]; got != `["iss:ack","live-response"]` {
		t.Fatalf("requested-acks %q", got)
	}
	select {
	case o := <-s:
		t.Fatalf("settled %v before the live response", o)
	case <-time.After(50 * time.Millisecond):
	}
	// the device responds through the issuer's source
	resp := `{"topic":"org.acme/dev/things/live/messages/ask","headers":{"correlation-id":"c-1","content-type":"application/json"},` +
		`"path":"/outbox/messages/ask","value":{"answer":42},"status":200}`
	ds := make(settled, 1)
	iss.Inbound(0)(ds.msg("device/answers", []byte(resp)))
	if o := ds.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("device response settled %v", o)
	}
	if o := s.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("settled %v", o)
	}
	answer := decode(t, replies.next(t))
	if answer.Topic != "org.acme/dev/things/live/acks" || answer.Status != 200 || answer.Headers["correlation-id"] != "c-1" {
		t.Fatalf("answer %s", protocol.Encode(answer))
	}
	var entries map[string]struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(answer.Value, &entries); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || entries["iss:ack"].Status != 200 || entries["live-response"].Status != 200 ||
		string(entries["live-response"].Payload) != `{"answer":42}` {
		t.Fatalf("entries %s", answer.Value)
	}
	if got := count(iss, monitor.Outbound, monitor.Acknowledged, "device/{{ thing:id }}", true); got != 1 {
		t.Errorf("target acknowledged %d", got)
	}
	if got := count(req, monitor.Inbound, monitor.Acknowledged, "in", true); got != 1 {
		t.Errorf("source acknowledged %d", got)
	}
}

// A target whose namespaces drop the signal answers its label at once with
// a weak acknowledgement: settled long before the 60 s timeout. With
// response-required false nothing is published.
func TestWeakAckArrivesBeforeTheTimeout(t *testing.T) {
	b := bus.NewLocal()
	req, replies := start(t, b, requesterConn)
	_, device := start(t, b, issuerConn)
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("other", "c-weak", `,"timeout":"60s","response-required":false`)))
	if o := s.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("settled %v", o)
	}
	device.none(t)
	replies.none(t)
	if got := count(req, monitor.Inbound, monitor.Acknowledged, "in", true); got != 1 {
		t.Errorf("source acknowledged %d", got)
	}
}

// failing is a connected client whose broker refuses every publish.
type failing struct{ recorder }

func (f *failing) Publish(context.Context, client.Message) error {
	return errors.New("broker unavailable")
}

// The target's broker fails the publish: 503 acknowledgement, the message
// is to be redelivered, the answer (a nack) reaches the reply target.
func TestFailedPublishRedelivers(t *testing.T) {
	b := bus.NewLocal()
	req, replies := start(t, b, requesterConn)
	iss, err := New(parse(t, issuerConn), Config{Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	iss.Connected(0, &failing{})
	t.Cleanup(func() { iss.Close(); iss.Wait() })
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-fail", `,"response-required":"false"`)))
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v", o)
	}
	replies.none(t) // response-required false: nothing published
	if got := count(iss, monitor.Outbound, monitor.Acknowledged, "device/{{ thing:id }}", false); got != 1 {
		t.Errorf("target acknowledged failures %d", got)
	}

	// response required: the 503 answer is a nack on the reply target; the
	// live response never comes, so its entry times out.
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-fail2", `,"timeout":"300ms"`)))
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v", o)
	}
	answer := decode(t, replies.next(t))
	if answer.Status != 424 || !strings.Contains(string(answer.Value), `"iss:ack":{"status":503`) ||
		!strings.Contains(string(answer.Value), `"live-response":{"status":408`) ||
		!strings.Contains(string(answer.Value), "acknowledgement:request.timeout") {
		t.Fatalf("answer %s", protocol.Encode(answer))
	}
}

// A device acknowledges through a source that declared the label: the
// requester gets it. An undeclared label is refused and rejected.
func TestDeclaredAndUndeclaredDeviceAcks(t *testing.T) {
	b := bus.NewLocal()
	req, _ := start(t, b, requesterConn)
	iss, device := start(t, b, issuerConn)
	s := make(settled, 2)
	req.Inbound(0)(s.msg("dev-acks", liveMsg("org.acme", "c-dev", `,"response-required":false,"timeout":"10s"`)))
	sent := decode(t, device.next(t))
	if got := sent.Headers["requested-acks"]; got != `["iss:dev-ack"]` {
		t.Fatalf("requested-acks %q", got)
	}
	// undeclared first: refused with Ditto's error on the issuer's reply target
	bad := `{"topic":"org.acme/dev/things/live/acks/iss:other","headers":{"correlation-id":"c-dev"},"path":"/","status":200}`
	ds := make(settled, 1)
	iss.Inbound(0)(ds.msg("device/answers", []byte(bad)))
	if o := ds.wait(t, 5*time.Second); o != client.Reject {
		t.Fatalf("undeclared ack settled %v", o)
	}
	refusal := decode(t, device.next(t))
	if refusal.Status != 400 || !strings.Contains(string(refusal.Value), "acknowledgement:label.not.declared") ||
		!strings.Contains(string(refusal.Value), "Cannot send acknowledgement with label <iss:other>, which is not declared.") {
		t.Fatalf("refusal %s", protocol.Encode(refusal))
	}
	select {
	case o := <-s:
		t.Fatalf("requester settled %v by an undeclared ack", o)
	case <-time.After(50 * time.Millisecond):
	}
	good := `{"topic":"org.acme/dev/things/live/acks/iss:dev-ack","headers":{"correlation-id":"c-dev"},"path":"/","status":204}`
	iss.Inbound(0)(ds.msg("device/answers", []byte(good)))
	if o := ds.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("declared ack settled %v", o)
	}
	if o := s.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("requester settled %v", o)
	}
}

// Nothing requested: settled at once, as before acknowledgements; a
// message that cannot be mapped or enforced is rejected.
func TestSettleWithoutRequestsAndOnFailures(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, sourceConn)
	s := make(settled, 2)
	ev := `{"topic":"org.acme/dev/things/twin/events/modified","headers":{"correlation-id":"e"},"path":"/attributes/on","value":true}`
	src.Inbound(0)(client.Message{Address: "q", Headers: map[string]string{"device-id": "org.acme:dev"}, Payload: []byte(ev),
		Settle: func(o client.Outcome) { s <- o }})
	if o := s.wait(t, time.Second); o != client.Accept {
		t.Fatalf("event settled %v", o)
	}
	src.Inbound(0)(client.Message{Address: "q", Headers: map[string]string{"device-id": "other:dev"}, Payload: []byte(ev),
		Settle: func(o client.Outcome) { s <- o }})
	if o := s.wait(t, time.Second); o != client.Reject {
		t.Fatalf("enforcement failure settled %v", o)
	}
	src.Inbound(0)(client.Message{Address: "q", Payload: []byte(`not json`), Settle: func(o client.Outcome) { s <- o }})
	if o := s.wait(t, time.Second); o != client.Reject {
		t.Fatalf("mapping failure settled %v", o)
	}
}

// A label nobody issues times out: 408 entry, redelivery.
func TestUnansweredLabelTimesOut(t *testing.T) {
	const conn = `{"id":"lonely","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["a:b"],"acknowledgementRequests":{"includes":["nobody:declared"]},
   "replyTarget":{"enabled":true,"address":"replies","expectedResponseTypes":["nack"]}}]}`
	b := bus.NewLocal()
	req, replies := start(t, b, conn)
	_, _ = start(t, b, issuerConn)
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-late", `,"timeout":"200ms","requested-acks":"[\"iss:ack\"]"`)))
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v", o)
	}
	answer := decode(t, replies.next(t))
	var entries map[string]struct {
		Status int `json:"status"`
	}
	_ = json.Unmarshal(answer.Value, &entries)
	if answer.Status != 424 || entries["iss:ack"].Status != 200 || entries["nobody:declared"].Status != 408 ||
		entries["live-response"].Status != 408 {
		t.Fatalf("answer %s", protocol.Encode(answer))
	}
}

// The source's filter (a placeholder pipeline) decides per message whether
// its labels are requested, as Ditto's RequestedAcksFilter does.
func TestAckRequestFilter(t *testing.T) {
	const conn = `{"id":"req","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["a:b"],
   "acknowledgementRequests":{"includes":["iss:ack"],"filter":"fn:filter(header:qos,'ne','0')"}}]}`
	b := bus.NewLocal()
	req, _ := start(t, b, conn)
	_, device := start(t, b, issuerConn)
	for _, tc := range []struct{ qos, want string }{{"0", `[]`}, {"1", `["iss:ack"]`}} {
		s := make(settled, 2)
		m := s.msg("in", liveMsg("org.acme", "c-f"+tc.qos, `,"response-required":false`))
		m.Headers = map[string]string{"qos": tc.qos}
		req.Inbound(0)(m)
		if got := decode(t, device.next(t)).Headers["requested-acks"]; got != tc.want {
			t.Fatalf("qos %s: requested-acks %q, want %q", tc.qos, got, tc.want)
		}
		if o := s.wait(t, 5*time.Second); o != client.Accept {
			t.Fatalf("qos %s: settled %v", tc.qos, o)
		}
	}
}

// An asynchronous client's acknowledgement is issued when the broker
// answers: not before, and with the broker's failure as a 503.
func TestAsyncPublishIssuesOnTheBrokersAnswer(t *testing.T) {
	b := bus.NewLocal()
	req, _ := start(t, b, requesterConn)
	iss, err := New(parse(t, issuerConn), Config{Bus: b, Workers: 1})
	if err != nil {
		t.Fatal(err)
	}
	ac := &asyncClient{got: make(chan *fakePending, 4)}
	iss.Connected(0, ac)
	t.Cleanup(func() { iss.Close(); iss.Wait() })
	for _, tc := range []struct {
		err  error
		want client.Outcome
	}{{nil, client.Accept}, {errors.New("no PUBACK"), client.Redeliver}} {
		s := make(settled, 2)
		req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-async", `,"response-required":false`)))
		var f *fakePending
		select {
		case f = <-ac.got:
		case <-time.After(5 * time.Second):
			t.Fatal("not published")
		}
		select {
		case o := <-s:
			t.Fatalf("settled %v before the broker answered", o)
		case <-time.After(50 * time.Millisecond):
		}
		f.settle(tc.err)
		if o := s.wait(t, 5*time.Second); o != tc.want {
			t.Fatalf("broker answered %v: settled %v, want %v", tc.err, o, tc.want)
		}
	}
}

// Closing the plane settles what still waits for acknowledgements for
// redelivery at once.
func TestCloseRedeliversWaitingMessages(t *testing.T) {
	b := bus.NewLocal()
	p, err := New(parse(t, requesterConn), Config{Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	p.Connected(0, newRecorder())
	s := make(settled, 2)
	p.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-close", `,"timeout":"60s","response-required":false`)))
	select {
	case o := <-s:
		t.Fatalf("settled %v while waiting", o)
	case <-time.After(50 * time.Millisecond):
	}
	p.Close()
	p.Wait()
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v on close", o)
	}
}

// Acknowledgements requested with a timeout of zero are a client error:
// rejected, not published.
func TestZeroTimeoutWithRequestsIsRejected(t *testing.T) {
	b := bus.NewLocal()
	req, _ := start(t, b, requesterConn)
	_, device := start(t, b, issuerConn)
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-zero", `,"timeout":"0s","response-required":false`)))
	if o := s.wait(t, 5*time.Second); o != client.Reject {
		t.Fatalf("settled %v", o)
	}
	device.none(t)
}

// resulting is a connected client whose broker reports on each publish
// (client.ResultPublisher, Kafka with debugEnabled).
type resulting struct{ *recorder }

func (r resulting) PublishResult(ctx context.Context, m client.Message) (client.Result, error) {
	if err := r.Publish(ctx, m); err != nil {
		return client.Result{}, err
	}
	return client.Result{Status: 200, Payload: json.RawMessage(`{"topic":"t","partition":0,"offset":7}`)}, nil
}

// A client reporting on its publishes makes the issued acknowledgement:
// its status and payload replace the default 200 without payload.
func TestResultPublisherMakesTheIssuedAck(t *testing.T) {
	b := bus.NewLocal()
	req, replies := start(t, b, requesterConn)
	iss, err := New(parse(t, issuerConn), Config{Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	device := resulting{newRecorder()}
	iss.Connected(0, device)
	t.Cleanup(func() { iss.Close(); iss.Wait() })
	s := make(settled, 2)
	// the live response never comes: the answer aggregates the issued
	// acknowledgement with the live response's timeout
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-res", `,"timeout":"300ms"`)))
	device.next(t)
	s.wait(t, 5*time.Second)
	answer := decode(t, replies.next(t))
	var entries map[string]struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(answer.Value, &entries); err != nil {
		t.Fatalf("answer %s: %v", protocol.Encode(answer), err)
	}
	if e := entries["iss:ack"]; e.Status != 200 || string(e.Payload) != `{"topic":"t","partition":0,"offset":7}` {
		t.Fatalf("issued acknowledgement %d %s in %s", e.Status, e.Payload, answer.Value)
	}
}
