package live

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationBridgeResolvedSourceContext: a source whose
// authorizationContext holds a header placeholder sends each device's
// command to Ditto on a session with the subject resolved from that
// device's message (one session per resolved subject), so Ditto's policy
// decides per device: the device whose subject may WRITE changes the twin
// (its event reaches another connection's target, and not the target of
// the connection itself: Ditto delivers no connection its own signals),
// the one that may only READ gets Ditto's 403 on the reply target.
func TestIntegrationBridgeResolvedSourceContext(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := bridgeNode(t, emu)
	thing := fmt.Sprintf("org.acme:door-%d", runID)
	ns, name, _ := strings.Cut(thing, ":")
	createThing(t, emu, thing, map[string]any{}, map[string][2]bool{
		"integration:alice": {true, true}, "integration:bob": {true, false}, "integration:reader": {true, false}})
	id, run := dpID("bridge-context"), fmt.Sprint(runID)
	prefix := "bridge/" + run + "/context"
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"sources": []any{map[string]any{"addresses": []string{prefix + "/in/+"}, "qos": 1,
			"authorizationContext": []string{"integration:{{ header:mqtt.topic | fn:substring-after('/in/') }}"},
			"replyTarget": map[string]any{"enabled": true, "address": prefix + "/reply",
				"expectedResponseTypes": []string{"response", "error"}}}},
		"targets": []any{map[string]any{"address": prefix + "/events", "qos": 1,
			"authorizationContext": []string{"integration:reader"}, "topics": []string{"_/_/things/twin/events"}}},
	})
	watcher := dpID("bridge-context-watch")
	dpOpen(t, n, map[string]any{
		"id": watcher, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": watcher},
		"targets": []any{map[string]any{"address": prefix + "/watched", "qos": 1,
			"authorizationContext": []string{"integration:reader"}, "topics": []string{"_/_/things/twin/events"}}},
	})
	replies := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", prefix+"/reply")
	events := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", prefix+"/events")
	watched := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", prefix+"/watched")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, prefix+"/in/alice", twinCommand(thing, "modify", "/attributes/openedBy", "ctx-alice", "alice", nil))
	r := blackbox.Decode(t, replies.Next(t, 15*time.Second, "Ditto's response to alice").Payload())
	blackbox.WantField(t, r, "ctx-alice", "headers", "correlation-id")
	blackbox.WantField(t, r, float64(201), "status") // a new attribute
	blackbox.WantField(t, r, ns+"/"+name+"/things/twin/commands/modify", "topic")
	if v, _ := attribute(emu, thing, "openedBy"); v != "alice" {
		t.Fatalf("attribute openedBy = %v after alice's command, want alice", v)
	}
	e := blackbox.Decode(t, watched.Next(t, 15*time.Second, "the event of alice's command").Payload())
	blackbox.WantField(t, e, ns+"/"+name+"/things/twin/events/created", "topic")
	blackbox.WantField(t, e, "/attributes/openedBy", "path")

	blackbox.PublishMQTT(t, dev, prefix+"/in/bob", twinCommand(thing, "modify", "/attributes/openedBy", "ctx-bob", "bob", nil))
	r = blackbox.Decode(t, replies.Next(t, 15*time.Second, "Ditto's error to bob").Payload())
	blackbox.WantField(t, r, "ctx-bob", "headers", "correlation-id")
	blackbox.WantField(t, r, ns+"/"+name+"/things/twin/errors", "topic")
	blackbox.WantField(t, r, float64(403), "status")
	blackbox.WantField(t, r, "things:attribute.notmodifiable", "value", "error")
	if v, _ := attribute(emu, thing, "openedBy"); v != "alice" {
		t.Fatalf("attribute openedBy = %v after bob's refused command, want alice", v)
	}

	// one session per resolved subject, each with the connection as origin
	poll.Check(t, 5*time.Second, func() error {
		var subjects []string
		for _, s := range emu.Sessions() {
			if s.Origin == id {
				subjects = append(subjects, strings.Join(s.Subjects, ","))
			}
		}
		slices.Sort(subjects)
		if want := []string{"integration:alice", "integration:bob", "integration:reader"}; !slices.Equal(subjects, want) {
			return fmt.Errorf("sessions of %s at Ditto: %v, want %v", id, subjects, want)
		}
		return nil
	})
	// the connection's status lists them too
	var got []string
	for _, e := range dittoSessionEntries(status(t, n, id)) {
		got = append(got, e["statusDetails"].(string))
	}
	slices.Sort(got)
	var want []string
	for _, s := range []string{"alice", "bob", "reader"} {
		want = append(want, "ditto session [integration:"+s+"] "+emu.URL()+": open")
	}
	if !slices.Equal(got, want) {
		t.Errorf("Ditto session entries %v, want %v", got, want)
	}
	select {
	case m := <-events.Msgs:
		t.Errorf("the connection's own target got an event of its own source's command: %s", m.Payload())
	default:
	}
	select {
	case m := <-watched.Msgs:
		t.Errorf("an event of bob's refused command: %s", m.Payload())
	default:
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
