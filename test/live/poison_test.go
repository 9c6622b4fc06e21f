package live

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Payloads and scripts that, without the mapping bounds, end the process (a
// fatal stack overflow or out-of-memory, not a recoverable panic) and,
// because the QoS 1 message is then never acknowledged, end it again on
// every restart. Each must be a mapping failure, counted, while the service
// keeps answering.

// TestIntegrationPoisonPayloadsThroughMQTT: an 8 MB array nested 4,000,000
// deep and a 200 kB one nested 100,000 deep, both QoS 1 through a real MQTT
// source with the default Ditto mapping, are mapping failures; a good
// message after them is mapped; the service keeps answering.
func TestIntegrationPoisonPayloadsThroughMQTT(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	id := dpID("poison")
	src := "dp/" + run + "/poison/#"
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"sources": []any{map[string]any{"addresses": []string{src},
			"authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	})
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	deep := func(levels int) string {
		return `{"topic":"org.acme/dev-1/things/twin/events/modified","path":"/","value":` +
			strings.Repeat("[", levels) + strings.Repeat("]", levels) + `}`
	}
	blackbox.PublishMQTT(t, dev, "dp/"+run+"/poison/big", deep(4_000_000))
	blackbox.PublishMQTT(t, dev, "dp/"+run+"/poison/deep", deep(100_000))
	blackbox.PublishMQTT(t, dev, "dp/"+run+"/poison/good", blackbox.TwinEvent("org.acme:dev-1", 1))

	dpWaitCount(t, n, id, "source", src, "consumed", "success", 3)
	// Topics are consumed in parallel lanes: the good message may be mapped
	// before the poison ones are refused.
	var m map[string]any
	poll.Until(t, 15*time.Second, "two mapping failures and the good message mapped", func() bool {
		m = dpMetrics(t, n, id)
		return dpCount(m, "source", src, "mapped", "success") == 1 && dpCount(m, "source", src, "mapped", "failure") == 2
	})
	// The counter is recorded just before the log entry is added: poll the
	// logs too.
	poll.Check(t, 15*time.Second, func() error {
		var reasons []string
		for _, e := range dpLogs(t, n, id) {
			if e["type"] == "mapped" && e["level"] == "failure" {
				reasons = append(reasons, fmt.Sprint(e["message"]))
			}
		}
		joined := strings.Join(reasons, " | ")
		if !strings.Contains(joined, "exceeds the limit of 250000 bytes") || !strings.Contains(joined, "nested deeper than 512 levels") {
			return fmt.Errorf("mapping failure logs: %s", joined)
		}
		return nil
	})
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("the service stopped answering: %v", r)
	}
}

// TestIntegrationGreedyScripts: a script that asks for 200 GB at load
// fails testConnection with Ditto's mapper error and persists nothing; a
// script that sizes a typed array from the device's payload fails that
// message only; the service answers throughout.
func TestIntegrationGreedyScripts(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	withScript := func(id, addr, script string) map[string]any {
		return map[string]any{"id": id, "connectionType": "mqtt", "connectionStatus": "closed",
			"uri": "tcp://127.0.0.1:1883", "specificConfig": map[string]any{"clientId": id},
			"mappingDefinitions": map[string]any{"js": map[string]any{
				"mappingEngine": "JavaScript", "options": map[string]any{"incomingScript": script}}},
			"sources": []any{map[string]any{"addresses": []string{addr}, "authorizationContext": []string{"nginx:ditto"},
				"qos": 1, "payloadMapping": []string{"js"}}}}
	}

	greedy := withScript(dpID("greedy"), "dp/"+run+"/greedy", `var s = 'x'.repeat(1e11);`)
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", greedy))
	if r == nil || r.Status != http.StatusBadRequest {
		t.Fatalf("testConnection with a greedy script: %v", r)
	}
	if e := blackbox.Decode(t, r.Payload); e["error"] != ditto.CodeConfigurationInvalid {
		t.Fatalf("answer %s", r.Payload)
	}
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", greedy["id"])); r == nil || r.Status != http.StatusNotFound {
		t.Fatalf("testConnection persisted the connection: %v", r)
	}

	id := dpID("frame")
	addr := "dp/" + run + "/frame"
	dpOpen(t, n, withScript(id, addr, `function mapToDittoProtocolMsg(headers, textPayload) {
  var frame = JSON.parse(textPayload);
  var buf = new Uint8Array(frame.len);
  return Ditto.buildDittoProtocolMsg('org.acme', 'dev-1', 'things', 'twin', 'events', 'modified', '/attributes/len', headers, buf.length);
}`))
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, dev, addr, `{"len":1e11}`)
	blackbox.PublishMQTT(t, dev, addr, `{"len":16}`)
	dpWaitCount(t, n, id, "source", addr, "consumed", "success", 2)
	poll.Until(t, 15*time.Second, "one frame mapped, one failed", func() bool {
		m := dpMetrics(t, n, id)
		return dpCount(m, "source", addr, "mapped", "success") == 1 && dpCount(m, "source", addr, "mapped", "failure") == 1
	})
}
