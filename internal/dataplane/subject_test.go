package dataplane

import (
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
)

// Ditto resolves request:subjectId of a consumed message to the first
// subject of the source's authorization context, its header: placeholders
// resolved from the message; a header the sender sets cannot forge it.
func TestRequestSubjectIdIsTheSourcesFirstAuthorizationSubject(t *testing.T) {
	const subjectConn = `{"id":"subj","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "sources":[
  {"addresses":["q"],"authorizationContext":["integration:{{ header:tenant }}","ditto:second"],
   "headerMapping":{"x-subject":"{{ request:subjectId }}","device-id":"{{ header:device-id }}"}},
  {"addresses":["fixed"],"authorizationContext":["ditto:static","ditto:second"],
   "headerMapping":{"x-subject":"{{ request:subjectId }}"}}],
 "targets":[{"address":"own","topics":["_/_/things/live/messages"],"authorizationContext":["a:b"]}]}`
	const outConn = `{"id":"out","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"ex","authorizationContext":["ditto:second"],"topics":["_/_/things/live/messages","_/_/things/twin/events"],
   "headerMapping":{"subject":"{{ header:x-subject }}","out-subject":"{{ request:subjectId }}"}}]}`
	b := bus.NewLocal()
	src, _ := start(t, b, subjectConn)
	_, rec := start(t, b, outConn)
	in := src.Inbound(0)

	in(client.Message{Address: "q", Headers: map[string]string{"tenant": "acme", "ditto-auth-subject": "forged:x"},
		Payload: liveMessage("org.acme", "hello")})
	m := rec.next(t)
	if m.Headers["subject"] != "integration:acme" {
		t.Fatalf("request:subjectId resolved to %q, want integration:acme (headers %v)", m.Headers["subject"], m.Headers)
	}
	// Published by another connection, the signal's context is still the
	// consuming source's, and it is not published.
	if m.Headers["out-subject"] != "integration:acme" {
		t.Fatalf("outbound request:subjectId resolved to %q (headers %v)", m.Headers["out-subject"], m.Headers)
	}
	if strings.Contains(string(m.Payload), "ditto-auth-context") {
		t.Fatalf("authorization context published: %s", m.Payload)
	}
	// A context the sender wrote into its Ditto Protocol headers is not trusted.
	forged := strings.Replace(string(liveMessage("org.acme", "forged")), `"correlation-id":"c1",`,
		`"correlation-id":"c1","ditto-auth-context":"{\"type\":\"x\",\"subjects\":[\"forged:x\"]}",`, 1)
	in(client.Message{Address: "q", Headers: map[string]string{"tenant": "acme"}, Payload: []byte(forged)})
	if m := rec.next(t); m.Headers["out-subject"] != "integration:acme" {
		t.Fatalf("forged context: outbound request:subjectId %q", m.Headers["out-subject"])
	}
	// A context without placeholders is the same for every message.
	in(client.Message{Address: "fixed", Headers: map[string]string{"tenant": "acme"}, Payload: []byte(forged)})
	if m := rec.next(t); m.Headers["subject"] != "ditto:static" || m.Headers["out-subject"] != "ditto:static" {
		t.Fatalf("constant context: %v", m.Headers)
	}
	// The subject's placeholder does not resolve: the signal travels
	// without a context, and standalone routing gives it to no target (the
	// next signal of the same thing, same worker, is the next published).
	in(client.Message{Address: "q", Payload: liveMessage("org.acme", "anon")})
	in(client.Message{Address: "q", Headers: map[string]string{"tenant": "acme"}, Payload: liveMessage("org.acme", "after")})
	if m := rec.next(t); !strings.Contains(string(m.Payload), "after") {
		t.Fatalf("a signal without authorization context was routed: %s", m.Payload)
	}

}
