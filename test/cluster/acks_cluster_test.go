package cluster

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationClusterAcknowledgements: the requesting connection's grain
// lives on one member, the issuing connection's on the other; the issued
// acknowledgement and the device's live response cross the members on the
// requester's response stream and the aggregated answer reaches the reply
// target.
func TestIntegrationClusterAcknowledgements(t *testing.T) {
	blackbox.NeedBroker(t, "mosquitto", "127.0.0.1:1883")
	c := startCluster(t, 2)
	run := fmt.Sprint(time.Now().UnixNano())
	var reqID, issID, reqHost string
	for i := 0; i < 40 && issID == ""; i++ {
		id := fmt.Sprintf("xack-%d", i)
		status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(id, "closed")))
		if status != http.StatusOK || m["status"] != float64(201) {
			t.Fatalf("create %s: %d %v", id, status, m)
		}
		h := hostOf(t, c.nodes[0], id)
		switch {
		case reqID == "":
			reqID, reqHost = id, h
		case h != reqHost:
			issID = id
		}
	}
	if issID == "" {
		t.Fatal("no two connections on different nodes")
	}
	auth := []string{"nginx:ditto"}
	requester := map[string]any{
		"id": reqID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID + run},
		"sources": []any{map[string]any{"addresses": []string{"xa/" + run + "/in/#"}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}},
			"replyTarget": map[string]any{"enabled": true, "address": "xa/" + run + "/reply",
				"expectedResponseTypes": []string{"response", "error", "nack"}}}},
	}
	issuer := map[string]any{
		"id": issID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": issID + run},
		"sources":        []any{map[string]any{"addresses": []string{"xa/" + run + "/answers"}, "authorizationContext": auth, "qos": 1}},
		"targets": []any{map[string]any{"address": "xa/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}},
	}
	for _, conn := range []map[string]any{requester, issuer} {
		status, m := c.nodes[1].command(t, blackbox.Cmd("connectivity.commands:modifyConnection", "connection", conn))
		if status != http.StatusOK || m["status"] != float64(204) {
			t.Fatalf("modify %v: %d %v", conn["id"], status, m)
		}
	}
	for _, id := range []string{reqID, issID} {
		poll.Until(t, 20*time.Second, id+" open", func() bool {
			_, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			return m["liveStatus"] == "open"
		})
	}
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "xa/"+run+"/out/#")
	reply := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "xa/"+run+"/reply")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, dev, "xa/"+run+"/in/dev-1", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"xa-c1","content-type":"text/plain","timeout":"10s"},"path":"/inbox/messages/ask","value":"ping"}`)
	out.Next(t, 10*time.Second, "the live message at the issuer on the other member")
	blackbox.PublishMQTT(t, dev, "xa/"+run+"/answers", `{"topic":"org.acme/dev-1/things/live/messages/ask",`+
		`"headers":{"correlation-id":"xa-c1","content-type":"text/plain"},"path":"/outbox/messages/ask","value":"pong","status":200}`)
	a := blackbox.Decode(t, reply.Next(t, 15*time.Second, "the aggregated answer across members").Payload())
	blackbox.WantField(t, a, "org.acme/dev-1/things/live/acks", "topic")
	blackbox.WantField(t, a, float64(200), "status")
	blackbox.WantField(t, a, float64(200), "value", issID+":ack", "status")
	blackbox.WantField(t, a, "pong", "value", "live-response", "payload")
}
