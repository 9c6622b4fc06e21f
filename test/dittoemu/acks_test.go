package dittoemu

import (
	"encoding/json"
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func ackMsg(label, corr string, status int, extra ...string) *protocol.Message {
	m := msg("org.acme/t1/things/twin/acks/"+label, "/", "", append([]string{"correlation-id", corr}, extra...)...)
	m.Status = status
	return m
}

func acksValue(t *testing.T, m *protocol.Message) map[string]struct {
	Status  int             `json:"status"`
	Payload json.RawMessage `json:"payload"`
	Headers map[string]any  `json:"headers"`
} {
	t.Helper()
	var v map[string]struct {
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
		Headers map[string]any  `json:"headers"`
	}
	if err := json.Unmarshal(m.Value, &v); err != nil {
		t.Fatalf("acks value %s: %v", m.Value, err)
	}
	return v
}

func TestAcknowledgementMatrix(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:sub", true, false)
	e.Grant(thingID, "pre:other", true, false)
	cmd := dial(t, e, "pre:owner", "conn-cmd")
	sub := dial(t, e, "pre:sub", "conn-sub", "conn-sub:done")
	sub.subscribe("START-SEND-EVENTS")
	weak := dial(t, e, "pre:sub", "conn-weak", "conn-weak:done")
	weak.subscribe("START-SEND-EVENTS?filter=" + queryEscape("eq(attributes/never,true)"))
	other := dial(t, e, "pre:other", "conn-other", "conn-other:x")
	other.subscribe("START-SEND-EVENTS")

	// default: twin-persisted only → the plain response
	cmd.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "a1"))
	expect(t, cmd.readMsg(), thingTopic+"create", 201)
	if ev := sub.readMsg(); ev.Headers["requested-acks"] != "" {
		t.Errorf("event without custom acks carries %q", ev.Headers["requested-acks"])
	}
	other.readMsg()

	// twin-persisted + a custom label answered by its subscriber + a weak one → aggregated 200
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `1`, "correlation-id", "a2",
		"requested-acks", `["twin-persisted","conn-sub:done","conn-weak:done"]`, "timeout", "5s"))
	ev := sub.readMsg()
	if ev.Headers["requested-acks"] != `["conn-sub:done"]` {
		t.Errorf("requested-acks on the subscriber's event: %q", ev.Headers["requested-acks"])
	}
	// an ack for the same label from a session that did not get the event is not taken
	if oe := other.readMsg(); oe.Headers["requested-acks"] != "" {
		t.Errorf("other got requested-acks %q", oe.Headers["requested-acks"])
	}
	other.sendMsg(ackMsg("conn-sub:done", "a2", 500))
	m := other.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 400)
	if errorCode(t, m) != "acknowledgement:label.not.declared" {
		t.Errorf("undeclared: %s", encode(m))
	}
	sub.sendMsg(ackMsg("conn-sub:done", "a2", 200))
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/acks", 200)
	v := acksValue(t, m)
	if len(v) != 3 || v["twin-persisted"].Status != 201 || v["conn-sub:done"].Status != 200 ||
		v["conn-weak:done"].Status != 200 || v["conn-weak:done"].Headers["ditto-weak-ack"] != true {
		t.Errorf("aggregated: %s", m.Value)
	}

	// a custom label nobody answers → 408 inside a 424 aggregate
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `2`, "correlation-id", "a3",
		"requested-acks", `["twin-persisted","conn-sub:done"]`, "timeout", "300ms"))
	if ev := sub.readMsg(); ev.Headers["correlation-id"] != "a3" {
		t.Fatalf("%s", encode(ev))
	}
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/acks", 424)
	v = acksValue(t, m)
	jsonEq(t, v["conn-sub:done"].Payload, `{"status":408,"error":"acknowledgement:request.timeout","message":"The acknowledgement request reached the specified timeout of 300ms.","description":"Try increasing the timeout and make sure that the requested acknowledgement is sent back in time."}`)
	if v["conn-sub:done"].Status != 408 || v["twin-persisted"].Status != 204 {
		t.Errorf("timeout aggregate: %s", m.Value)
	}

	// only a custom label: the aggregate has one entry and its status
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `3`, "correlation-id", "a4",
		"requested-acks", `["conn-sub:done"]`))
	sub.readMsg()
	sub.sendMsg(ackMsg("conn-sub:done", "a4", 202, "ditto-weak-ack", "false"))
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/acks", 202)
	if v = acksValue(t, m); len(v) != 1 {
		t.Errorf("one ack: %s", m.Value)
	}

	// requested-acks with response-required false: refused on a WebSocket
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `4`, "correlation-id", "a5",
		"requested-acks", `["twin-persisted"]`, "response-required", "false"))
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 400)
	jsonEq(t, m.Value, `{"status":400,"error":"header.invalid","message":"For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.","description":"Please set 'requested-acks' to [] or 'response-required' to true.","invalidHeaderKey":"requested-acks"}`)

	// requested-acks [] with a response: the plain response, no waiting
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `5`, "correlation-id", "a6", "requested-acks", `[]`))
	expect(t, cmd.readMsg(), thingTopic+"modify", 204)
}

func TestAckOnlyOnDeliveringSession(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:sub", true, false)
	cmd := dial(t, e, "pre:owner", "conn-cmd")
	cmd.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "c0"))
	cmd.readMsg()
	// the declaring session does not subscribe: Ditto answers the label weakly
	decl := dial(t, e, "pre:sub", "conn-d", "conn-d:ok")
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `1`, "correlation-id", "c1", "requested-acks", `["conn-d:ok"]`, "timeout", "5s"))
	m := cmd.readMsg()
	v := acksValue(t, m)
	if v["conn-d:ok"].Headers["ditto-weak-ack"] != true || m.Status != 200 {
		t.Errorf("not subscribed: %s", encode(m))
	}
	// an ack for a signal never delivered on the session is dropped: the
	// request times out although the label's owner sent an ack for its correlation-id
	decl.subscribe("START-SEND-EVENTS")
	decl.sendMsg(ackMsg("conn-d:ok", "c2", 200))
	decl.sendMsg(msg(thingTopic+"retrieve", "/thingId", "", "correlation-id", "sync"))
	if m := decl.readMsg(); m.Headers["correlation-id"] != "sync" { // the early ack was handled before
		t.Fatalf("%s", encode(m))
	}
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `2`, "correlation-id", "c2", "requested-acks", `["conn-d:ok","twin-persisted"]`, "timeout", "300ms"))
	if ev := decl.readMsg(); ev.Headers["correlation-id"] != "c2" || ev.Headers["requested-acks"] != `["conn-d:ok"]` {
		t.Fatalf("event %s", encode(ev))
	}
	m = cmd.readMsg()
	v = acksValue(t, m)
	if m.Status != 424 || v["conn-d:ok"].Status != 408 || v["twin-persisted"].Status != 204 {
		t.Errorf("%s", encode(m))
	}
}

func TestTimeoutZeroAndSameOriginDeclarer(t *testing.T) {
	e := start(t, Options{})
	cmd := dial(t, e, "pre:owner", "conn-1", "conn-1:mine")
	cmd.subscribe("START-SEND-EVENTS")
	cmd.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "c0"))
	expect(t, cmd.readMsg(), thingTopic+"create", 201)
	// timeout 0 with a response required: Ditto's header.invalid on "timeout"
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `1`, "correlation-id", "z1", "timeout", "0", "response-required", "true"))
	m := cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 400)
	jsonEq(t, m.Value, `{"status":400,"error":"header.invalid","message":"The value of the header 'timeout' must not be zero if response or acknowledgements are requested.","description":"Please provide a positive timeout.","invalidHeaderKey":"timeout"}`)
	// timeout 0 alone: no response required, none comes; the next answer is the retrieve's
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `2`, "correlation-id", "z2", "timeout", "0s"))
	cmd.sendMsg(msg(thingTopic+"retrieve", "/attributes/a", "", "correlation-id", "z3"))
	m = cmd.readMsg()
	if m.Headers["correlation-id"] != "z3" || string(m.Value) != "2" {
		t.Fatalf("%s", encode(m))
	}
	// a label declared by a session of the command's own origin: that session never gets
	// the event, its forwarder waits, the label times out (no weak ack)
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `3`, "correlation-id", "z4",
		"requested-acks", `["conn-1:mine"]`, "timeout", "200ms"))
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/acks", 408)
	// a weak ack for a built-in label from a client is dropped (StreamingSessionActor)
	cmd.sendMsg(ackMsg("twin-persisted", "z5", 200, "ditto-weak-ack", "true"))
	cmd.sendMsg(msg(thingTopic+"retrieve", "/attributes/a", "", "correlation-id", "z6"))
	if m = cmd.readMsg(); m.Headers["correlation-id"] != "z6" {
		t.Fatalf("weak built-in ack answered: %s", encode(m))
	}
}

func TestLiveEventsFromSession(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:app", true, false)
	e.Grant(thingID, "pre:dev", true, true)
	app := dial(t, e, "pre:app", "conn-app")
	app.subscribe("START-SEND-LIVE-EVENTS?filter=" + queryEscape("eq(topic:action,\"modified\")"))
	dev := dial(t, e, "pre:dev", "conn-dev")
	dev.sendMsg(msg("org.acme/t1/things/live/events/created", "/attributes/x", `1`, "correlation-id", "e1"))
	dev.sendMsg(msg("org.acme/t1/things/live/events/modified", "/attributes/x", `2`, "correlation-id", "e2"))
	m := app.readMsg()
	expect(t, m, "org.acme/t1/things/live/events/modified", 0)
	if m.Headers["correlation-id"] != "e2" || string(m.Value) != "2" {
		t.Errorf("%s", encode(m))
	}
}

func TestWeakAckFromSubscriberAndRevoke(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:sub", true, false)
	cmd := dial(t, e, "pre:owner", "conn-cmd")
	sub := dial(t, e, "pre:sub", "conn-sub", "conn-sub:ok")
	sub.subscribe("START-SEND-EVENTS")
	cmd.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "c0"))
	expect(t, cmd.readMsg(), thingTopic+"create", 201)
	sub.readMsg()
	// a subscriber's own weak ack counts as the answer
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `1`, "correlation-id", "w1", "requested-acks", `["conn-sub:ok"]`))
	sub.readMsg()
	sub.sendMsg(ackMsg("conn-sub:ok", "w1", 200, "ditto-weak-ack", "true"))
	m := cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/acks", 200)
	if v := acksValue(t, m); v["conn-sub:ok"].Headers["ditto-weak-ack"] != true {
		t.Errorf("%s", m.Value)
	}
	// revoked: no more events; the label is answered weakly (no authorized subscriber)
	e.Revoke(thingID, "pre:sub")
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `2`, "correlation-id", "w2", "requested-acks", `["conn-sub:ok"]`, "timeout", "5s"))
	m = cmd.readMsg()
	if v := acksValue(t, m); m.Status != 200 || v["conn-sub:ok"].Headers["ditto-weak-ack"] != true {
		t.Errorf("after revoke: %s", encode(m))
	}
	e.Grant(thingID, "pre:sub", true, false)
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `3`, "correlation-id", "w3"))
	cmd.readMsg()
	if ev := sub.readMsg(); ev.Headers["correlation-id"] != "w3" {
		t.Errorf("revoked subscriber got %s", encode(ev))
	}
	// a timeout above Ditto's 60 s maximum
	cmd.sendMsg(msg(thingTopic+"modify", "/attributes/a", `4`, "correlation-id", "w4", "timeout", "61s"))
	m = cmd.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 400)
	if errorCode(t, m) != "gateway:timeout.invalid" {
		t.Errorf("%s", encode(m))
	}
}
