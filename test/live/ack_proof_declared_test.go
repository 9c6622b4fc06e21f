package live

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// A device acknowledges a live message through a source declaring the
// label (declaredAcks): the requester's aggregated answer holds the
// device's acknowledgement beside its live response. An acknowledgement
// with a label the source did not declare is refused with Ditto's 400
// acknowledgement:label.not.declared at the source's reply target and
// never reaches the requester.
func TestIntegrationAckProofDeclaredAcks(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	reqID, issID := dpID("apd-req"), dpID("apd-iss")
	auth := []string{"nginx:ditto"}
	in := "apd/" + run + "/in/#"
	expect := []string{"response", "error", "nack"}
	dpOpen(t, n, map[string]any{"id": reqID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID, "cleanSession": true}, // leaves no unsettled message behind
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":dev-ack"}},
			"replyTarget":             map[string]any{"enabled": true, "address": "apd/" + run + "/reply", "expectedResponseTypes": expect}}}})
	dpOpen(t, n, map[string]any{"id": issID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": issID},
		"sources": []any{map[string]any{"addresses": []string{"apd/" + run + "/answers"}, "authorizationContext": auth, "qos": 1,
			"declaredAcks": []string{"{{connection:id}}:dev-ack"},
			"replyTarget":  map[string]any{"enabled": true, "address": "apd/" + run + "/refused", "expectedResponseTypes": expect}}},
		"targets": []any{map[string]any{"address": "apd/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}}}})
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apd/"+run+"/out/#")
	reply := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apd/"+run+"/reply")
	refused := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apd/"+run+"/refused")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, "apd/"+run+"/in/dev-1", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"apd-c1","content-type":"text/plain","timeout":"20s"},"path":"/inbox/messages/ask","value":"ping"}`)
	got := blackbox.Decode(t, out.Next(t, 10*time.Second, "the live message at the device").Payload())
	blackbox.WantField(t, got, []any{issID + ":dev-ack", "live-response"}, "headers", "requested-acks")

	ackOf := func(label string, status int) string {
		return fmt.Sprintf(`{"topic":"org.acme/dev-1/things/live/acks/%s","headers":{"correlation-id":"apd-c1"},`+
			`"path":"/","value":{"seen":true},"status":%d}`, label, status)
	}
	blackbox.PublishMQTT(t, dev, "apd/"+run+"/answers", ackOf(issID+":other", 200))
	r := blackbox.Decode(t, refused.Next(t, 10*time.Second, "the refusal of the undeclared label").Payload())
	blackbox.WantField(t, r, float64(400), "status")
	blackbox.WantField(t, r, "acknowledgement:label.not.declared", "value", "error")
	if msg, _ := blackbox.Field(r, "value", "message").(string); !strings.Contains(msg, "<"+issID+":other>") {
		t.Errorf("refusal message %q", msg)
	}

	blackbox.PublishMQTT(t, dev, "apd/"+run+"/answers", ackOf(issID+":dev-ack", 204))
	blackbox.PublishMQTT(t, dev, "apd/"+run+"/answers", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"apd-c1","content-type":"text/plain"},"path":"/outbox/messages/ask","value":"pong","status":200}`)
	a := blackbox.Decode(t, reply.Next(t, 10*time.Second, "the aggregated answer").Payload())
	blackbox.WantField(t, a, "org.acme/dev-1/things/live/acks", "topic")
	blackbox.WantField(t, a, float64(200), "status")
	blackbox.WantField(t, a, float64(204), "value", issID+":dev-ack", "status")
	blackbox.WantField(t, a, float64(200), "value", "live-response", "status")
	if blackbox.Field(a, "value", issID+":other") != nil {
		t.Errorf("the undeclared acknowledgement reached the requester: %v", a)
	}
	dpWaitCount(t, n, reqID, "source", in, "acknowledged", "success", 1)
}
