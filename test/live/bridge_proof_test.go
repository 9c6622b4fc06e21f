package live

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// The proofs of working next to Ditto (#14): a node whose bridge talks to
// the Ditto gateway emulator (or a real Ditto: ditto_under_test.go), real
// Mosquitto for the devices.

// bridgeNode starts a node working next to emu, reconnecting fast.
func bridgeNode(t *testing.T, emu dittoUnderTest) *kit.Node {
	t.Helper()
	return kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Ditto: &bridge.Config{
		URI: emu.URL(), Auth: bridge.AuthPreAuthenticated, ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond, PingInterval: 5 * time.Second, MaxInFlight: 200,
	}})
}

// twinCommand is a Ditto Protocol twin command as a device sends it.
func twinCommand(thingID, action, path, cid string, value any, headers map[string]string) string {
	ns, name, _ := strings.Cut(thingID, ":")
	h := map[string]string{"correlation-id": cid}
	for k, v := range headers {
		h[k] = v
	}
	b, _ := json.Marshal(map[string]any{"topic": ns + "/" + name + "/things/twin/commands/" + action,
		"headers": h, "path": path, "value": value})
	return string(b)
}

// attribute reads one attribute of the thing in Ditto.
func attribute(emu dittoUnderTest, thingID, name string) (any, bool) {
	doc, ok := emu.Thing(thingID)
	if !ok {
		return nil, false
	}
	var th struct {
		Attributes map[string]any `json:"attributes"`
	}
	if json.Unmarshal(doc, &th) != nil {
		return nil, false
	}
	v, ok := th.Attributes[name]
	return v, ok
}

// createThing creates thingID in Ditto as adminSubject, granting grants.
func createThing(t *testing.T, emu dittoUnderTest, thingID string, attrs map[string]any, grants map[string][2]bool) {
	t.Helper()
	for subject, rw := range grants {
		emu.Grant(thingID, subject, rw[0], rw[1])
	}
	ns, name, _ := strings.Cut(thingID, ":")
	value, _ := json.Marshal(map[string]any{"thingId": thingID, "attributes": attrs})
	ans := emu.Apply(adminSubject, &protocol.Message{Topic: ns + "/" + name + "/things/twin/commands/create",
		Path: "/", Value: value, Headers: map[string]string{"correlation-id": "create-" + name, "response-required": "true"}})
	if ans == nil || ans.Status != 201 {
		t.Fatalf("create %s in the emulator: %+v", thingID, ans)
	}
}

// TestIntegrationBridgeTwinCommandPersistedAndAnswered: a device's MQTT
// modifyAttribute requesting twin-persisted changes the twin in Ditto, the
// device's reply topic gets Ditto's response, and a message sent while
// Ditto is down is redelivered by the broker and reaches the twin once
// Ditto is back: not lost.
func TestIntegrationBridgeTwinCommandPersistedAndAnswered(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	d := startDitto(t)
	n := bridgeNode(t, d)
	thing := fmt.Sprintf("org.acme:lamp-%d", runID)
	createThing(t, d, thing, map[string]any{"on": false}, map[string][2]bool{"integration:device": {true, true}})
	id, run := dpID("bridge-twin"), fmt.Sprint(runID)
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		// Ditto's MQTT clients redeliver a withheld message only on a new
		// session; the test does not wait for Ditto's default 10 s
		"specificConfig": map[string]any{"clientId": id, "reconnectForRedelivery": true,
			"reconnectForRedeliveryDelay": "500ms"},
		"sources": []any{map[string]any{"addresses": []string{"bridge/" + run + "/twin/in"}, "qos": 1,
			"authorizationContext":    []string{"integration:device"},
			"acknowledgementRequests": map[string]any{"includes": []string{"twin-persisted"}},
			"replyTarget": map[string]any{"enabled": true, "address": "bridge/" + run + "/twin/reply",
				"expectedResponseTypes": []string{"response", "error", "nack"}}}},
	})
	replies := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "bridge/"+run+"/twin/reply")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, "bridge/"+run+"/twin/in",
		twinCommand(thing, "modify", "/attributes/on", "c-1", true, map[string]string{"timeout": "10s"}))
	r := blackbox.Decode(t, replies.Next(t, 15*time.Second, "Ditto's response").Payload())
	blackbox.WantField(t, r, float64(204), "status")
	blackbox.WantField(t, r, "c-1", "headers", "correlation-id")
	blackbox.WantField(t, r, thing[:strings.Index(thing, ":")]+"/"+thing[strings.Index(thing, ":")+1:]+"/things/twin/commands/modify", "topic")
	if v, _ := attribute(d, thing, "on"); v != true {
		t.Fatalf("attribute on = %v after the response, want true", v)
	}
	if v := d.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}

	// Ditto away: the message waits for twin-persisted, is answered 503 and
	// redelivered by the broker until Ditto is back.
	emu := faulty(t, d)
	emu.Stop()
	blackbox.PublishMQTT(t, dev, "bridge/"+run+"/twin/in",
		twinCommand(thing, "modify", "/attributes/level", "c-2", 7, map[string]string{"timeout": "2s"}))
	poll.Until(t, 20*time.Second, "a 503 for the command sent while Ditto was away", func() bool {
		select {
		case m := <-replies.Msgs:
			return strings.Contains(string(m.Payload()), `"status":503`)
		default:
			return false
		}
	})
	emu.Restart()
	poll.Until(t, 60*time.Second, "the redelivered command reaching the twin", func() bool {
		v, _ := attribute(emu, thing, "level")
		return v == float64(7)
	})
}

// TestIntegrationBridgeTwinEventsEnforcedByDitto: a twin event produced in
// Ditto by another client reaches the MQTT target whose subject may READ
// the thing, with extraFields from the twin, and not a target whose subject
// may not; after the READ is revoked, no more events.
func TestIntegrationBridgeTwinEventsEnforcedByDitto(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := startDitto(t)
	n := bridgeNode(t, emu)
	thing := fmt.Sprintf("org.acme:sensor-%d", runID)
	createThing(t, emu, thing, map[string]any{"room": "kitchen"},
		map[string][2]bool{"integration:reader": {true, false}})
	id, run := dpID("bridge-events"), fmt.Sprint(runID)
	allowed, denied := "bridge/"+run+"/events/allowed", "bridge/"+run+"/events/denied"
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"targets": []any{
			map[string]any{"address": allowed, "qos": 1, "authorizationContext": []string{"integration:reader"},
				"topics": []string{"_/_/things/twin/events?namespaces=org.acme&extraFields=attributes/room"}},
			map[string]any{"address": denied, "qos": 1, "authorizationContext": []string{"integration:stranger"},
				"topics": []string{"_/_/things/twin/events"}},
		},
	})
	allowedSub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", allowed)
	deniedSub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", denied)
	ns, name, _ := strings.Cut(thing, ":")
	modify := func(v int) {
		ans := emu.Apply(adminSubject, &protocol.Message{Topic: ns + "/" + name + "/things/twin/commands/modify",
			Path: "/attributes/temperature", Value: []byte(fmt.Sprint(v)),
			Headers: map[string]string{"correlation-id": fmt.Sprintf("t-%d", v), "response-required": "true"}})
		if ans == nil || ans.Status/100 != 2 {
			t.Fatalf("modify in the emulator: %+v", ans)
		}
	}
	modify(21)
	e := blackbox.Decode(t, allowedSub.Next(t, 15*time.Second, "the event for the reader").Payload())
	blackbox.WantField(t, e, ns+"/"+name+"/things/twin/events/created", "topic")
	blackbox.WantField(t, e, "/attributes/temperature", "path")
	blackbox.WantField(t, e, float64(21), "value")
	blackbox.WantField(t, e, "kitchen", "extra", "attributes", "room")

	emu.Revoke(thing, "integration:reader")
	modify(22)
	modify(23)
	// the stranger never reads; the revoked reader no longer does. The
	// admin's own later grant proves events still flow: the stranger
	// gets READ and sees the next one.
	emu.Grant(thing, "integration:stranger", true, false)
	modify(24)
	d := blackbox.Decode(t, deniedSub.Next(t, 15*time.Second, "the event after the grant").Payload())
	blackbox.WantField(t, d, float64(24), "value")
	select {
	case m := <-allowedSub.Msgs:
		t.Errorf("the revoked reader got %s", m.Payload())
	default:
	}
	select {
	case m := <-deniedSub.Msgs:
		t.Errorf("the stranger got an event from before its grant: %s", m.Payload())
	default:
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}

// TestIntegrationBridgeImplicitThingCreation: a device's first message
// through an ImplicitThingCreation source creates its thing in Ditto.
func TestIntegrationBridgeImplicitThingCreation(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := startDitto(t)
	n := bridgeNode(t, emu)
	id, run := dpID("bridge-implicit"), fmt.Sprint(runID)
	device := fmt.Sprintf("org.acme:dev-%d", runID)
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"mappingDefinitions": map[string]any{"implicit": map[string]any{
			"mappingEngine": "ImplicitThingCreation",
			"options": map[string]any{"thing": map[string]any{
				"thingId":    "{{ header:mqtt.topic | fn:substring-after('/implicit/') }}",
				"attributes": map[string]any{"createdBy": "dittoconn"},
				// the proof reads the thing as adminSubject (a real Ditto's
				// default policy would grant the provisioner only)
				"_policy": map[string]any{"entries": map[string]any{
					"admin": entry(adminSubject, true, true), "provisioner": entry("integration:provisioner", true, true)}},
			}},
		}},
		"sources": []any{map[string]any{"addresses": []string{"bridge/" + run + "/implicit/#"}, "qos": 1,
			"authorizationContext": []string{"integration:provisioner"},
			"payloadMapping":       []string{"implicit"}}},
	})
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, dev, "bridge/"+run+"/implicit/"+device, `{"hello":"world"}`)
	poll.Check(t, 15*time.Second, func() error {
		if v, _ := attribute(emu, device, "createdBy"); v != "dittoconn" {
			return fmt.Errorf("thing %s not created in Ditto; logs %v", device, dpLogs(t, n, id))
		}
		return nil
	})
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
