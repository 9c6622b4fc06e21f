package live

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Acknowledgements end to end through Mosquitto: a device's live message,
// consumed by one connection whose source requests the label another
// connection's MQTT target issues, is published by that target (the broker
// confirms: 200), answered by the device through the issuing connection's
// source (live-response), and the requester's reply target gets Ditto's
// aggregated answer. With the issuing connection closed nobody answers: the
// labels time out and the message is settled for redelivery (the source's
// acknowledged failure).
func TestIntegrationAcknowledgementsMQTT(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	reqID, issID := dpID("ack-req"), dpID("ack-iss")
	auth := []string{"nginx:ditto"}
	in := "ack/" + run + "/in/#"
	dpOpen(t, n, map[string]any{"id": reqID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID},
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}},
			"replyTarget": map[string]any{"enabled": true, "address": "ack/" + run + "/reply",
				"expectedResponseTypes": []string{"response", "error", "nack"}}}}})
	dpOpen(t, n, map[string]any{"id": issID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": issID},
		"sources":        []any{map[string]any{"addresses": []string{"ack/" + run + "/answers"}, "authorizationContext": auth, "qos": 1}},
		"targets": []any{map[string]any{"address": "ack/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "ack/"+run+"/out/#")
	reply := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "ack/"+run+"/reply")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	msg := func(cid, timeout string) string {
		return `{"topic":"org.acme/dev-1/things/live/messages/ask","headers":{"correlation-id":"` + cid + `",` +
			`"content-type":"text/plain","timeout":"` + timeout + `"},"path":"/inbox/messages/ask","value":"ping"}`
	}
	blackbox.PublishMQTT(t, dev, "ack/"+run+"/in/dev-1", msg("ack-c1", "10s"))
	m := out.Next(t, 10*time.Second, "the live message at the issuing target")
	got := blackbox.Decode(t, m.Payload())
	blackbox.WantField(t, got, []any{issID + ":ack", "live-response"}, "headers", "requested-acks")
	blackbox.PublishMQTT(t, dev, "ack/"+run+"/answers", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"ack-c1","content-type":"text/plain"},"path":"/outbox/messages/ask","value":"pong","status":200}`)

	a := blackbox.Decode(t, reply.Next(t, 10*time.Second, "the aggregated answer").Payload())
	blackbox.WantField(t, a, "org.acme/dev-1/things/live/acks", "topic")
	blackbox.WantField(t, a, float64(200), "status")
	blackbox.WantField(t, a, "ack-c1", "headers", "correlation-id")
	blackbox.WantField(t, a, float64(200), "value", issID+":ack", "status")
	blackbox.WantField(t, a, float64(200), "value", "live-response", "status")
	blackbox.WantField(t, a, "pong", "value", "live-response", "payload")
	dpWaitCount(t, n, reqID, "source", in, "acknowledged", "success", 1)
	dpWaitCount(t, n, issID, "target", "ack/"+run+"/out/{{ thing:id }}", "acknowledged", "success", 1)

	// The issuing connection closed: nobody answers within the timeout.
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", issID)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("close: %v", r)
	}
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.EnableConnectionLogs, "connectionId", reqID)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("enable logs: %v", r)
	}
	blackbox.PublishMQTT(t, dev, "ack/"+run+"/in/dev-1", msg("ack-c2", "1s"))
	a = blackbox.Decode(t, reply.Next(t, 10*time.Second, "the timed-out answer").Payload())
	blackbox.WantField(t, a, float64(424), "status")
	blackbox.WantField(t, a, float64(408), "value", issID+":ack", "status")
	blackbox.WantField(t, a, "acknowledgement:request.timeout", "value", issID+":ack", "payload", "error")
	poll.Until(t, 15*time.Second, "the source's acknowledged failure", func() bool {
		return dpCount(dpMetrics(t, n, reqID), "source", in, "acknowledged", "failure") >= 1
	})
	if c := dpLogCount(dpLogs(t, n, reqID), "source", "acknowledged", "failure", in); c < 1 {
		t.Errorf("no acknowledged failure logged (%d)", c)
	}
}
