package live

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// Ditto's aggregation of two requested labels, issued by an MQTT target
// (Mosquitto's PUBACK: 200) and an HTTP push target (the endpoint's
// status), plus the device's live response: all successful → 200 with each
// entry's status; the endpoint answering 503 → 424 with the 503 entry.
func TestIntegrationAckProofAggregatedStatuses(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	var status atomic.Int64
	status.Store(http.StatusOK)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(int(status.Load()))
	}))
	t.Cleanup(srv.Close)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	reqID, mqttID, httpID := dpID("apg-req"), dpID("apg-mqtt"), dpID("apg-http")
	auth := []string{"nginx:ditto"}
	in := "apg/" + run + "/in/#"
	dpOpen(t, n, map[string]any{"id": reqID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID, "cleanSession": true}, // leaves no unsettled message behind
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{mqttID + ":ack", httpID + ":ack"}},
			"replyTarget": map[string]any{"enabled": true, "address": "apg/" + run + "/reply",
				"expectedResponseTypes": []string{"response", "error", "nack"}}}}})
	dpOpen(t, n, map[string]any{"id": mqttID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": mqttID},
		"sources":        []any{map[string]any{"addresses": []string{"apg/" + run + "/answers"}, "authorizationContext": auth, "qos": 1}},
		"targets": []any{map[string]any{"address": "apg/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	dpOpen(t, n, map[string]any{"id": httpID, "connectionType": "http-push", "uri": srv.URL,
		"targets": []any{map[string]any{"address": "POST:/ticks", "authorizationContext": auth,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apg/"+run+"/out/#")
	reply := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apg/"+run+"/reply")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	ask := func(cid string) map[string]any {
		t.Helper()
		blackbox.PublishMQTT(t, dev, "apg/"+run+"/in/dev-1", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
			`"headers":{"correlation-id":"`+cid+`","content-type":"text/plain","timeout":"20s"},"path":"/inbox/messages/ask","value":"ping"}`)
		out.Next(t, 10*time.Second, "the live message at the device")
		blackbox.PublishMQTT(t, dev, "apg/"+run+"/answers", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
			`"headers":{"correlation-id":"`+cid+`","content-type":"text/plain"},"path":"/outbox/messages/ask","value":"pong","status":200}`)
		a := blackbox.Decode(t, reply.Next(t, 10*time.Second, "the aggregated answer of "+cid).Payload())
		blackbox.WantField(t, a, "org.acme/dev-1/things/live/acks", "topic")
		blackbox.WantField(t, a, cid, "headers", "correlation-id")
		blackbox.WantField(t, a, float64(200), "value", mqttID+":ack", "status")
		blackbox.WantField(t, a, float64(200), "value", "live-response", "status")
		return a
	}

	a := ask("apg-ok")
	blackbox.WantField(t, a, float64(200), "status")
	blackbox.WantField(t, a, float64(200), "value", httpID+":ack", "status")

	status.Store(http.StatusServiceUnavailable)
	a = ask("apg-503")
	blackbox.WantField(t, a, float64(424), "status")
	blackbox.WantField(t, a, float64(503), "value", httpID+":ack", "status")
}
