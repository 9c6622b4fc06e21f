package live

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// Ditto's response diversion through the whole service on Mosquitto:
// connection A (is-diversion-source, header mapping
// divert-response-to-connection: C) sends a live message, B's device
// answers it, C (is-diversion-target authorizing A) publishes the response
// on its target; A's reply target gets nothing.
func TestIntegrationResponsesAreDivertedToAnotherConnection(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprintf("div-%d", runID)
	a, b, c := run+"-a", run+"-b", run+"-c"
	mqtt := func(id string, specific map[string]any, sources, targets []any) map[string]any {
		specific["clientId"] = id
		return map[string]any{"id": id, "connectionType": "mqtt", "connectionStatus": "open",
			"uri": "tcp://127.0.0.1:1883", "specificConfig": specific, "sources": sources, "targets": targets}
	}
	auth := []string{"nginx:ditto"}
	conns := []map[string]any{
		mqtt(a, map[string]any{"is-diversion-source": "true"}, []any{map[string]any{
			"addresses": []string{run + "/a/in"}, "authorizationContext": auth, "qos": 1,
			"headerMapping": map[string]string{"divert-response-to-connection": c},
			"replyTarget": map[string]any{"enabled": true, "address": run + "/a/replies",
				"expectedResponseTypes": []string{"response", "error"}},
		}}, []any{}),
		mqtt(b, map[string]any{}, []any{map[string]any{
			"addresses": []string{run + "/b/answers"}, "authorizationContext": auth, "qos": 1,
		}}, []any{map[string]any{
			"address": run + "/b/devices/{{ thing:id }}", "topics": []string{"_/_/things/live/messages"},
			"authorizationContext": auth, "qos": 1,
		}}),
		mqtt(c, map[string]any{"is-diversion-target": "true", "authorized-connections-as-sources": a}, []any{},
			[]any{map[string]any{"address": run + "/c/diverted/{{ thing:id }}", "topics": []string{},
				"authorizationContext": auth, "qos": 1}}),
	}
	devices := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", run+"/b/devices/#")
	diverted := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", run+"/c/diverted/#")
	replies := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", run+"/a/replies")
	for _, conn := range conns {
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", conn)); r.Status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", conn["id"], r.Status, r.Payload)
		}
	}
	for _, id := range []string{a, b, c} {
		waitLive(t, n, id, "open", "succeeded", 10*time.Second)
	}
	pub := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, pub, run+"/a/in", `{"topic":"org.acme/d1/things/live/messages/ask","headers":{"correlation-id":"`+run+`",`+
		`"content-type":"text/plain"},"path":"/inbox/messages/ask","value":"?"}`)
	if m := devices.Next(t, 10*time.Second, "live message at the device"); m.Topic() != run+"/b/devices/org.acme:d1" {
		t.Fatalf("live message on %s", m.Topic())
	}
	blackbox.PublishMQTT(t, pub, run+"/b/answers", `{"topic":"org.acme/d1/things/live/messages/ask","headers":{"correlation-id":"`+run+`",`+
		`"content-type":"text/plain"},"path":"/inbox/messages/ask","value":"42","status":200}`)
	m := diverted.Next(t, 10*time.Second, "diverted response")
	if m.Topic() != run+"/c/diverted/org.acme:d1" {
		t.Fatalf("diverted response on %s", m.Topic())
	}
	var resp struct {
		Topic   string            `json:"topic"`
		Headers map[string]string `json:"headers"`
		Status  int               `json:"status"`
		Value   string            `json:"value"`
	}
	if err := json.Unmarshal(m.Payload(), &resp); err != nil {
		t.Fatalf("diverted response %s: %v", m.Payload(), err)
	}
	if resp.Topic != "org.acme/d1/things/live/messages/ask" || resp.Status != 200 || resp.Value != "42" ||
		resp.Headers["correlation-id"] != run || resp.Headers["diverted-response-from-connection"] != a {
		t.Errorf("diverted response %s", m.Payload())
	}
	if _, ok := resp.Headers["divert-response-to-connection"]; ok {
		t.Errorf("diverted response carries the internal header: %s", m.Payload())
	}
	select {
	case r := <-replies.Msgs:
		t.Errorf("A's reply target got %s", r.Payload())
	case <-time.After(300 * time.Millisecond):
	}
	for _, id := range []string{a, b, c} {
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
			t.Fatalf("delete %s: %d %s", id, r.Status, r.Payload)
		}
	}
}
