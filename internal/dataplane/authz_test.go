package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// tenantConn consumes live messages under tenant:acme (and a second
// subject) and requests the labels of three other connections' targets.
const tenantConn = `{"id":"req","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["integration:acme","tenant:acme"],
   "acknowledgementRequests":{"includes":["same:ack","other:ack","filtered:ack"]},
   "replyTarget":{"enabled":true,"address":"replies","expectedResponseTypes":["nack"]}}]}`

// issuingTarget is a connection whose one target subscribes to live
// messages (topic suffix) under subject and issues {{connection:id}}:ack.
func issuingTarget(id, subject, topic string) string {
	return `{"id":"` + id + `","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"out/` + id + `","authorizationContext":["x:unrelated","` + subject + `"],
   "topics":["_/_/things/live/messages` + topic + `"],"issuedAcknowledgementLabel":"{{connection:id}}:ack"}]}`
}

// A target whose context shares a subject with the consuming source's gets
// the signal and acknowledges it; one whose context shares none never sees
// it: not published, not counted, and no acknowledgement, not even the weak
// one its filter would have produced; its requested label times out.
func TestStandaloneRoutingNeedsASharedSubject(t *testing.T) {
	b := bus.NewLocal()
	req, replies := start(t, b, tenantConn)
	_, same := start(t, b, issuingTarget("same", "tenant:acme", ""))
	other, leak := start(t, b, issuingTarget("other", "nobody:never-authorized", ""))
	_, _ = start(t, b, issuingTarget("filtered", "nobody:never-authorized", "?namespaces=org.elsewhere"))
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-auth", `,"timeout":"300ms"`)))

	if m := same.next(t); m.Address != "out/same" {
		t.Fatalf("published to %s", m.Address)
	}
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("settled %v, want redelivery (unanswered labels)", o)
	}
	answer := decode(t, replies.next(t))
	var entries map[string]struct {
		Status int `json:"status"`
	}
	if err := json.Unmarshal(answer.Value, &entries); err != nil {
		t.Fatal(err)
	}
	if entries["same:ack"].Status != 200 || entries["other:ack"].Status != 408 || entries["filtered:ack"].Status != 408 {
		t.Fatalf("answer %s", protocol.Encode(answer))
	}
	leak.none(t)
	if got := count(other, monitor.Outbound, monitor.Dispatched, "out/other", true); got != 0 {
		t.Fatalf("unauthorized target counted %d dispatched signals", got)
	}
}

// The target's subjects resolve against the signal before they are
// compared: tenant:{{ thing:namespace }} receives what was consumed under
// tenant:<that namespace> only; a subject that does not resolve matches
// nothing; a signal consumed without any context reaches no target.
func TestStandaloneRoutingResolvesTargetSubjects(t *testing.T) {
	const src = `{"id":"src","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["tenant:{{ header:tenant }}"]}]}`
	const tgt = `{"id":"tgt","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"ns/{{ thing:id }}","authorizationContext":["tenant:{{ thing:namespace }}"],
   "topics":["_/_/things/live/messages"]},
  {"address":"never","authorizationContext":["tenant:{{ header:missing }}"],"topics":["_/_/things/live/messages"]}]}`
	b := bus.NewLocal()
	p, _ := start(t, b, src)
	tp, rec := start(t, b, tgt)
	in := p.Inbound(0)
	msg := func(tenant, ns, subject string) client.Message {
		m := client.Message{Address: "in", Payload: liveMessage(ns, subject)}
		if tenant != "" {
			m.Headers = map[string]string{"tenant": tenant}
		}
		return m
	}
	in(msg("evil", "acme", "foreign")) // consumed as tenant:evil
	in(msg("", "acme", "anonymous"))   // no context at all
	in(msg("acme", "acme", "own"))     // consumed as tenant:acme
	m := rec.next(t)                   // same thing, same worker: in order
	if m.Address != "ns/acme:dev" || !strings.Contains(string(m.Payload), "/own") {
		t.Fatalf("first publish %s: %s", m.Address, m.Payload)
	}
	// The local bus delivers synchronously: the counts are final.
	if n, never := count(tp, monitor.Outbound, monitor.Dispatched, "ns/{{ thing:id }}", true),
		count(tp, monitor.Outbound, monitor.Dispatched, "never", true); n != 1 || never != 0 {
		t.Fatalf("dispatched %d to the namespace target, %d to the unresolvable one", n, never)
	}
	rec.none(t)
}

// DITTOCONN_STANDALONE_ROUTING=all: every subscribed target receives every
// signal, whatever the subjects, also one consumed without a context.
func TestStandaloneRoutingAll(t *testing.T) {
	const src = `{"id":"src","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["tenant:{{ header:tenant }}"]}]}`
	b := bus.NewLocal()
	p, _ := startWith(t, b, src, RoutingAll)
	_, rec := startWith(t, b, issuingTarget("open", "nobody:never-authorized", ""), RoutingAll)
	p.Inbound(0)(client.Message{Address: "in", Headers: map[string]string{"tenant": "acme"}, Payload: liveMessage("org.acme", "a")})
	p.Inbound(0)(client.Message{Address: "in", Payload: liveMessage("org.acme", "b")})
	for _, want := range []string{"/a", "/b"} {
		if m := rec.next(t); !strings.Contains(string(m.Payload), want) {
			t.Fatalf("want %s, got %s", want, m.Payload)
		}
	}
}

func TestParseRouting(t *testing.T) {
	for in, want := range map[string]Routing{"": RoutingSubjects, "subjects": RoutingSubjects, " ALL ": RoutingAll} {
		if got, err := ParseRouting(in); err != nil || got != want {
			t.Fatalf("ParseRouting(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseRouting("authorized"); err == nil || !strings.Contains(err.Error(), `"subjects"`) {
		t.Fatalf("unknown value: %v", err)
	}
	if _, err := New(parse(t, tenantConn), Config{Bus: bus.NewLocal(), Routing: "everything"}); err == nil {
		t.Fatal("New took an unknown routing")
	}
}

// A target subject whose placeholder does not compile is a configuration
// error of the plane (testConnection's check, the clients at open).
func TestTargetSubjectPlaceholderMustCompile(t *testing.T) {
	const js = `{"id":"bad","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"out","authorizationContext":["tenant:{{ nope:x }}"],"topics":["_/_/things/twin/events"]}]}`
	err := Check(parse(t, js), mapping.Config{})
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "authorization subject") {
		t.Fatalf("Check: %v", err)
	}
}

// A constant target context remembers its last answer per context header:
// alternating contexts still get each their own answer.
func TestStandaloneRoutingAlternatingContexts(t *testing.T) {
	const src = `{"id":"src","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["tenant:{{ header:tenant }}"]}]}`
	b := bus.NewLocal()
	p, _ := start(t, b, src)
	_, rec := start(t, b, issuingTarget("static", "tenant:acme", ""))
	for i, tenant := range []string{"evil", "acme", "", "acme", "evil", "acme"} {
		m := client.Message{Address: "in", Payload: liveMessage("org.acme", fmt.Sprintf("m%d-%s", i, tenant))}
		if tenant != "" {
			m.Headers = map[string]string{"tenant": tenant}
		}
		p.Inbound(0)(m)
	}
	for _, want := range []string{"m1-acme", "m3-acme", "m5-acme"} {
		if m := rec.next(t); !strings.Contains(string(m.Payload), want) {
			t.Fatalf("want %s, got %s", want, m.Payload)
		}
	}
}
