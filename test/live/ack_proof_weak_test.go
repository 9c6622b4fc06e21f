package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// A target whose namespaces drop a live message answers its issued label
// with a weak acknowledgement at once, so the requester's aggregated answer
// comes as soon as the device's live response does, long before the 20 s
// timeout (without the weak acknowledgement it would be a 424 after 20 s).
// The issuing connection's second target, without a label, publishes the
// message to the device, whose live response comes back through the
// issuing connection's source.
func TestIntegrationAckProofWeakAck(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	reqID, issID := dpID("apw-req"), dpID("apw-iss")
	auth := []string{"nginx:ditto"}
	in := "apw/" + run + "/in/#"
	dpOpen(t, n, map[string]any{"id": reqID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID, "cleanSession": true}, // leaves no unsettled message behind
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}},
			"replyTarget": map[string]any{"enabled": true, "address": "apw/" + run + "/reply",
				"expectedResponseTypes": []string{"response", "error", "nack"}}}}})
	dpOpen(t, n, map[string]any{"id": issID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": issID},
		"sources":        []any{map[string]any{"addresses": []string{"apw/" + run + "/answers"}, "authorizationContext": auth, "qos": 1}},
		"targets": []any{
			map[string]any{"address": "apw/" + run + "/filtered/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
				"topics": []string{"_/_/things/live/messages?namespaces=other.ns"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"},
			map[string]any{"address": "apw/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
				"topics": []string{"_/_/things/live/messages"}},
		}})
	filtered := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apw/"+run+"/filtered/#")
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apw/"+run+"/out/#")
	reply := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apw/"+run+"/reply")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, "apw/"+run+"/in/dev-1", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"apw-c1","content-type":"text/plain","timeout":"20s"},"path":"/inbox/messages/ask","value":"ping"}`)
	got := blackbox.Decode(t, out.Next(t, 10*time.Second, "the live message at the unfiltered target").Payload())
	blackbox.WantField(t, got, []any{issID + ":ack", "live-response"}, "headers", "requested-acks")
	sent := time.Now()
	blackbox.PublishMQTT(t, dev, "apw/"+run+"/answers", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"apw-c1","content-type":"text/plain"},"path":"/outbox/messages/ask","value":"pong","status":200}`)

	// well before the 20 s timeout: 10 s is the most Next waits
	a := blackbox.Decode(t, reply.Next(t, 10*time.Second, "the aggregated answer before the timeout").Payload())
	t.Logf("answer %v after the live response", time.Since(sent))
	blackbox.WantField(t, a, "org.acme/dev-1/things/live/acks", "topic")
	blackbox.WantField(t, a, float64(200), "status")
	blackbox.WantField(t, a, float64(200), "value", issID+":ack", "status")
	blackbox.WantField(t, a, true, "value", issID+":ack", "headers", "ditto-weak-ack")
	blackbox.WantField(t, a, float64(200), "value", "live-response", "status")
	dpWaitCount(t, n, reqID, "source", in, "acknowledged", "success", 1)
	select {
	case m := <-filtered.Msgs:
		t.Errorf("the filtered target published %s", m.Payload())
	default:
	}
}
