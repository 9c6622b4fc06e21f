package dittoemu

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

const (
	thingTopic = "org.acme/t1/things/twin/commands/"
	thingID    = "org.acme:t1"
)

func TestTwinCommandsResponsesAndErrors(t *testing.T) {
	e := start(t, Options{})
	c := dial(t, e, "pre:owner", "conn-owner")
	c.sendMsg(msg(thingTopic+"retrieve", "/", "", "correlation-id", "r0"))
	m := c.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 404)
	jsonEq(t, m.Value, `{"status":404,"error":"things:thing.notfound","message":"The Thing with ID 'org.acme:t1' could not be found or requester had insufficient permissions to access it.","description":"Check if the ID of your requested Thing was correct and you have sufficient permissions."}`)
	if m.Headers["correlation-id"] != "r0" {
		t.Errorf("correlation-id %q", m.Headers["correlation-id"])
	}

	c.sendMsg(msg(thingTopic+"create", "/", `{"attributes":{"counter":1}}`, "correlation-id", "c1"))
	m = c.readMsg()
	expect(t, m, thingTopic+"create", 201)
	jsonEq(t, m.Value, `{"thingId":"org.acme:t1","policyId":"org.acme:t1","attributes":{"counter":1}}`)

	c.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "c2"))
	m = c.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 409)
	if errorCode(t, m) != "things:thing.conflict" {
		t.Errorf("conflict: %s", encode(m))
	}

	c.sendMsg(msg(thingTopic+"modify", "/attributes/location", `{"lat":1}`, "correlation-id", "m1"))
	m = c.readMsg()
	expect(t, m, thingTopic+"modify", 201)
	jsonEq(t, m.Value, `{"lat":1}`)
	if m.Path != "/attributes/location" || m.Headers["correlation-id"] != "m1" {
		t.Errorf("created attribute: %s", encode(m))
	}
	c.sendMsg(msg(thingTopic+"modify", "/attributes/location", `{"lat":2}`, "correlation-id", "m2"))
	m = c.readMsg()
	expect(t, m, thingTopic+"modify", 204)
	if len(m.Value) != 0 {
		t.Errorf("204 with a value: %s", encode(m))
	}
	c.sendMsg(msg(thingTopic+"retrieve", "/attributes/location/lat", "", "correlation-id", "r1"))
	m = c.readMsg()
	expect(t, m, thingTopic+"retrieve", 200)
	jsonEq(t, m.Value, `2`)
	c.sendMsg(&protocol.Message{Topic: thingTopic + "retrieve", Headers: map[string]string{"correlation-id": "r2"}, Path: "/", Fields: "thingId,attributes(location)"})
	m = c.readMsg()
	jsonEq(t, m.Value, `{"thingId":"org.acme:t1","attributes":{"location":{"lat":2}}}`)

	c.sendMsg(msg(thingTopic+"retrieve", "/attributes/nope", "", "correlation-id", "r3"))
	m = c.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 404)
	if errorCode(t, m) != "things:attribute.notfound" {
		t.Errorf("attribute: %s", encode(m))
	}
	c.sendMsg(msg(thingTopic+"modify", "/features/f/properties/x", `1`, "correlation-id", "f1"))
	m = c.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 404)
	if errorCode(t, m) != "things:feature.notfound" {
		t.Errorf("feature: %s", encode(m))
	}
	c.sendMsg(msg(thingTopic+"modify", "/", `{"thingId":"org.acme:other"}`, "correlation-id", "id1"))
	m = c.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 400)
	if errorCode(t, m) != "things:id.notsettable" {
		t.Errorf("id: %s", encode(m))
	}

	// READ without WRITE: not modifiable; nothing: not found
	e.Grant(thingID, "pre:reader", true, false)
	r := dial(t, e, "pre:reader", "conn-reader")
	r.sendMsg(msg(thingTopic+"modify", "/attributes/counter", `5`, "correlation-id", "w1"))
	m = r.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 403)
	if errorCode(t, m) != "things:attribute.notmodifiable" {
		t.Errorf("reader: %s", encode(m))
	}
	r.sendMsg(msg(thingTopic+"delete", "/", "", "correlation-id", "d1"))
	m = r.readMsg()
	if errorCode(t, m) != "things:thing.notdeletable" || m.Status != 403 {
		t.Errorf("reader delete: %s", encode(m))
	}
	x := dial(t, e, "pre:stranger", "conn-x")
	x.sendMsg(msg(thingTopic+"modify", "/attributes/counter", `5`, "correlation-id", "w2"))
	m = x.readMsg()
	expect(t, m, "org.acme/t1/things/twin/errors", 404)
	if errorCode(t, m) != "things:thing.notfound" {
		t.Errorf("stranger: %s", encode(m))
	}
	// response-required false: no answer at all; the next command's answer comes first
	c.sendMsg(msg(thingTopic+"modify", "/attributes/counter", `7`, "correlation-id", "q1", "response-required", "false"))
	c.sendMsg(msg(thingTopic+"retrieve", "/attributes/counter", "", "correlation-id", "q2"))
	m = c.readMsg()
	if m.Headers["correlation-id"] != "q2" {
		t.Fatalf("fire and forget answered: %s", encode(m))
	}
	jsonEq(t, m.Value, `7`)
	raw, ok := e.Thing(thingID)
	if !ok {
		t.Fatal("no thing")
	}
	jsonEq(t, raw, `{"thingId":"org.acme:t1","policyId":"org.acme:t1","attributes":{"counter":7,"location":{"lat":2}}}`)
	c.sendMsg(msg(thingTopic+"delete", "/", "", "correlation-id", "d2"))
	expect(t, c.readMsg(), thingTopic+"delete", 204)
	if _, ok := e.Thing(thingID); ok {
		t.Error("deleted thing still there")
	}
}

func TestTwinEventsDelivery(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:sub", true, false)
	e.Grant("org.other:t2", "pre:sub", true, false)
	owner := dial(t, e, "pre:owner", "conn-owner")
	owner.subscribe("START-SEND-EVENTS") // same origin as the commands below: never gets them
	sameOrigin := dial(t, e, "pre:sub", "conn-owner")
	sameOrigin.subscribe("START-SEND-EVENTS")
	sub := dial(t, e, "pre:sub", "conn-sub")
	sub.subscribe("START-SEND-EVENTS?namespaces=org.acme&extraFields=" + queryEscape("attributes/color"))
	filtered := dial(t, e, "pre:sub", "conn-f")
	filtered.subscribe("START-SEND-EVENTS?filter=" + queryEscape("gt(attributes/counter,5)"))
	stranger := dial(t, e, "pre:stranger", "conn-x")
	stranger.subscribe("START-SEND-EVENTS")

	owner.sendMsg(msg(thingTopic+"create", "/", `{"attributes":{"counter":1,"color":"red"}}`, "correlation-id", "c1"))
	expect(t, owner.readMsg(), thingTopic+"create", 201)
	ev := sub.readMsg()
	expect(t, ev, "org.acme/t1/things/twin/events/created", 0)
	if ev.Revision != 1 || ev.Timestamp == "" || ev.Headers["correlation-id"] != "c1" || ev.Headers["ditto-originator"] != "pre:owner" {
		t.Errorf("created event: %s", encode(ev))
	}
	jsonEq(t, ev.Extra, `{"attributes":{"color":"red"}}`)

	owner.sendMsg(msg(thingTopic+"modify", "/attributes/counter", `6`, "correlation-id", "m1"))
	expect(t, owner.readMsg(), thingTopic+"modify", 204)
	ev = sub.readMsg()
	expect(t, ev, "org.acme/t1/things/twin/events/modified", 0)
	if ev.Path != "/attributes/counter" || string(ev.Value) != "6" || ev.Revision != 2 {
		t.Errorf("modified event: %s", encode(ev))
	}
	// the filter subscriber saw only the event matching gt(attributes/counter,5)
	ev = filtered.readMsg()
	if ev.Headers["correlation-id"] != "m1" {
		t.Errorf("filtered subscriber got %s", encode(ev))
	}

	// another namespace: not for sub (namespaces=org.acme); via Apply (another client, no origin)
	if a := e.Apply("pre:owner", msg("org.other/t2/things/twin/commands/modify", "/", `{}`, "correlation-id", "o1")); a == nil || a.Status != 201 {
		t.Fatalf("apply: %v", a)
	}
	ev = sameOrigin.readMsg() // another client's signal reaches the same-origin session
	if ev.Headers["correlation-id"] != "o1" {
		t.Errorf("same origin session got %s", encode(ev))
	}
	if a := e.Apply("pre:owner", msg(thingTopic+"delete", "/attributes/color", "", "correlation-id", "o2")); a == nil || a.Status != 204 {
		t.Fatalf("apply delete: %v", a)
	}
	ev = sub.readMsg()
	expect(t, ev, "org.acme/t1/things/twin/events/deleted", 0)
	if ev.Headers["correlation-id"] != "o2" || ev.Path != "/attributes/color" || ev.Revision != 3 {
		t.Errorf("deleted: %s", encode(ev))
	}
	if ev = owner.readMsg(); ev.Headers["correlation-id"] != "o1" {
		t.Errorf("owner's first event is %s, want another client's o1 (its own c1/m1 never come)", encode(ev))
	}
	// the stranger (no READ) got nothing: its first frame is an event of a thing it may read
	e.Grant("org.x:t3", "pre:stranger", true, true)
	if a := e.Apply("pre:stranger", msg("org.x/t3/things/twin/commands/create", "/", `{}`, "correlation-id", "s1")); a.Status != 201 {
		t.Fatalf("%s", encode(a))
	}
	if ev = stranger.readMsg(); ev.Headers["correlation-id"] != "s1" {
		t.Errorf("stranger got %s", encode(ev))
	}
}
