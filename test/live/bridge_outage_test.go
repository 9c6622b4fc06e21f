package live

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/poll"
)

// numbered counts the attributes n0…n<total-1> of the emulator's thing that
// hold their own number, and lists the first few missing.
func numbered(emu *dittoemu.Emulator, thingID string, total int) (have int, missing []int) {
	doc, ok := emu.Thing(thingID)
	if !ok {
		return 0, []int{0}
	}
	var th struct {
		Attributes map[string]any `json:"attributes"`
	}
	if json.Unmarshal(doc, &th) != nil {
		return 0, []int{0}
	}
	for i := 0; i < total; i++ {
		if v, ok := th.Attributes[fmt.Sprintf("n%d", i)]; ok && v == float64(i) {
			have++
		} else if len(missing) < 10 {
			missing = append(missing, i)
		}
	}
	return have, missing
}

// dittoSessionEntries are the client entries of a status answer that
// describe the bridge's sessions with Ditto.
func dittoSessionEntries(st map[string]any) []map[string]any {
	var out []map[string]any
	list, _ := st["clientStatus"].([]any)
	for _, e := range list {
		em, _ := e.(map[string]any)
		if d, _ := em["statusDetails"].(string); strings.HasPrefix(d, "ditto session [") {
			out = append(out, em)
		}
	}
	return out
}

// probeEvents modifies attributes/probe as another client of Ditto and
// waits for the twin event at sub.
func probeEvents(t *testing.T, emu *dittoemu.Emulator, thing string, sub *blackbox.Subscriber, v int) {
	t.Helper()
	ns, name, _ := strings.Cut(thing, ":")
	ans := emu.Apply("test:admin", &protocol.Message{Topic: ns + "/" + name + "/things/twin/commands/modify",
		Path: "/attributes/probe", Value: []byte(fmt.Sprint(v)),
		Headers: map[string]string{"correlation-id": fmt.Sprintf("probe-%d", v), "response-required": "true"}})
	if ans == nil || ans.Status/100 != 2 {
		t.Fatalf("probe %d in the emulator: %+v", v, ans)
	}
	e := blackbox.Decode(t, sub.Next(t, 15*time.Second, fmt.Sprintf("the twin event of probe %d", v)).Payload())
	blackbox.WantField(t, e, "/attributes/probe", "path")
	blackbox.WantField(t, e, float64(v), "value")
}

// TestIntegrationBridgeOutageUnderLoad: while a device sends 1,000 QoS 1
// modifyAttribute commands requesting twin-persisted, Ditto's sockets are
// killed and later the whole gateway stops and restarts. Every command
// ends at the twin at least once (the broker redelivers what Ditto did not
// persist), the target's twin-event subscription comes back, and the
// connection status shows the outage on the Ditto session entries and the
// recovery.
func TestIntegrationBridgeOutageUnderLoad(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	const total = 1000
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := bridgeNode(t, emu)
	thing := fmt.Sprintf("org.acme:meter-%d", runID)
	createThing(t, emu, thing, map[string]any{}, map[string][2]bool{
		"integration:device": {true, true}, "integration:reader": {true, false}})
	id, run := dpID("bridge-outage"), fmt.Sprint(runID)
	in, events := "bridge/"+run+"/outage/in", "bridge/"+run+"/outage/events"
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id, "reconnectForRedelivery": true,
			"reconnectForRedeliveryDelay": "500ms"},
		"sources": []any{map[string]any{"addresses": []string{in}, "qos": 1,
			"authorizationContext":    []string{"integration:device"},
			"acknowledgementRequests": map[string]any{"includes": []string{"twin-persisted"}}}},
		// only the probes' events: the 1,000 commands' events would flood the test's subscriber
		"targets": []any{map[string]any{"address": events, "qos": 1, "authorizationContext": []string{"integration:reader"},
			"topics": []string{"_/_/things/twin/events?filter=exists(attributes/probe)"}}},
	})
	sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", events)
	probeEvents(t, emu, thing, sub, 1)
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	start := time.Now()

	// the device publishes from a goroutine of its own, at most 400
	// commands ahead of the twin (Mosquitto queues 1,000 per session)
	published := make(chan error, 1)
	go func() {
		var toks []paho.Token
		for i := 0; i < total; i++ {
			if i%50 == 0 {
				deadline := time.Now().Add(30 * time.Second)
				for have, _ := numbered(emu, thing, i); have < i-400; have, _ = numbered(emu, thing, i) {
					if time.Now().After(deadline) {
						published <- fmt.Errorf("the twin stays at %d commands after %d published", have, i)
						return
					}
					time.Sleep(poll.Interval)
				}
			}
			toks = append(toks, dev.Publish(in, 1, false,
				twinCommand(thing, "modify", fmt.Sprintf("/attributes/n%d", i), fmt.Sprintf("o-%s-%d", run, i), i,
					map[string]string{"timeout": "2s"})))
		}
		for i, tok := range toks {
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				published <- fmt.Errorf("publish %d: %v", i, tok.Error())
				return
			}
		}
		published <- nil
	}()
	atTwin := func(want int) {
		t.Helper()
		poll.Check(t, 30*time.Second, func() error {
			if have, missing := numbered(emu, thing, total); have < want {
				return fmt.Errorf("%d of %d commands at the twin, waiting for %d; missing %v", have, total, want, missing)
			}
			return nil
		})
	}
	// fault strikes while commands wait for Ditto's answer: answers are
	// slowed until at least 10 more commands arrived, so those are in
	// flight when the sockets go
	inFlight := func(fault func()) {
		t.Helper()
		before := len(emu.Received())
		emu.SetAnswerDelay(time.Second)
		poll.Check(t, 10*time.Second, func() error {
			if got := len(emu.Received()) - before; got < 10 {
				return fmt.Errorf("%d commands reached Ditto with answers slowed", got)
			}
			return nil
		})
		fault()
		emu.SetAnswerDelay(0)
	}

	atTwin(250)
	inFlight(emu.KillSessions) // crashed sockets: the sessions reconnect at once
	atTwin(550)
	inFlight(emu.Stop) // the gateway goes: dials fail until it is back
	var outage map[string]any
	poll.Check(t, 15*time.Second, func() error {
		outage = status(t, n, id)
		entries := dittoSessionEntries(outage)
		for _, e := range entries {
			if e["status"] == "failed" && strings.Contains(e["statusDetails"].(string), ": failed (") {
				return nil
			}
		}
		return fmt.Errorf("no failed Ditto session in the status while Ditto is down: %v", entries)
	})
	if outage["liveStatus"] != "failed" {
		t.Errorf("liveStatus %v while Ditto is down, want failed: %v", outage["liveStatus"], outage)
	}
	emu.Restart()
	select {
	case err := <-published:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("the device did not get to publish all commands")
	}

	poll.Check(t, 40*time.Second, func() error {
		if have, missing := numbered(emu, thing, total); have < total {
			return fmt.Errorf("%d of %d commands at the twin; missing %v", have, total, missing)
		}
		return nil
	})
	t.Logf("%d commands at the twin %v after the first", total, time.Since(start).Round(time.Millisecond))

	// the recovery: every session open again, the target subscribed again
	back := waitLive(t, n, id, "open", "succeeded", 15*time.Second)
	entries := dittoSessionEntries(back)
	if len(entries) != 2 { // the target's session and the source's command session
		t.Fatalf("Ditto session entries %v, want the target's and the source's", entries)
	}
	for _, e := range entries {
		if e["status"] != "open" || e["recoveryStatus"] != "succeeded" || !strings.HasSuffix(e["statusDetails"].(string), ": open") {
			t.Errorf("Ditto session entry after the recovery: %v", e)
		}
	}
	poll.Check(t, 15*time.Second, func() error {
		for _, s := range emu.Sessions() {
			if strings.Join(s.Subjects, ",") == "integration:reader" && s.Origin == id {
				for _, sb := range s.Subscriptions {
					if sb.Type == "EVENTS" && sb.Filter == "exists(attributes/probe)" {
						return nil
					}
				}
			}
		}
		return fmt.Errorf("no START-SEND-EVENTS of the target's session: %+v", emu.Sessions())
	})
	probeEvents(t, emu, thing, sub, 2)

	m := dpMetrics(t, n, id)
	failed := dpCount(m, "source", in, "acknowledged", "failure")
	consumed := dpCount(m, "source", in, "consumed", "success")
	t.Logf("source: %d consumed, %d acknowledged failure (redelivered)", consumed, failed)
	if failed == 0 || consumed <= total {
		t.Errorf("the outage caused no redelivery (%d consumed, %d failures): it was not exercised", consumed, failed)
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
