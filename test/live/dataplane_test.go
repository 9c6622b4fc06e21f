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
	"github.com/dittoconn/dittoconn/test/poll"
)

// Data plane: messages consumed by one connection's source are
// mapped and routed by Ditto topic to other connections' targets.

// dpID is a connection id unique to this test run.
func dpID(name string) string { return fmt.Sprintf("dp-%s-%d", name, runID) }

// dpOpen creates c with status open and waits until it is live.
func dpOpen(t *testing.T, n *kit.Node, c map[string]any) {
	t.Helper()
	c["connectionStatus"] = "open"
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", c))
	if r == nil || r.Status != http.StatusCreated {
		t.Fatalf("create %v: %v", c["id"], r)
	}
	waitLive(t, n, c["id"].(string), "open", "succeeded", 30*time.Second)
}

// dpMetrics retrieves the connection metrics as a decoded map.
func dpMetrics(t *testing.T, n *kit.Node, id string) map[string]any {
	t.Helper()
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionMetrics, "connectionId", id))
	if r == nil || r.Status != http.StatusOK {
		t.Fatalf("metrics of %s: %v", id, r)
	}
	return blackbox.Decode(t, r.Payload)
}

// count reads one PT1M count of a metrics answer: dir "source"/"target",
// the address, the metric type and "success"/"failure".
func dpCount(m map[string]any, dir, address, typ, level string) int {
	v, _ := blackbox.Field(m, dir+"Metrics", "addressMetrics", address, typ, level, "PT1M").(float64)
	return int(v)
}

// dpWaitCount waits until the count reaches want (it must never exceed it).
func dpWaitCount(t *testing.T, n *kit.Node, id, dir, address, typ, level string, want int) map[string]any {
	t.Helper()
	var m map[string]any
	poll.Until(t, 15*time.Second, fmt.Sprintf("%s %s %s %s %s = %d", id, dir, address, typ, level, want), func() bool {
		m = dpMetrics(t, n, id)
		return dpCount(m, dir, address, typ, level) >= want
	})
	if got := dpCount(m, dir, address, typ, level); got != want {
		t.Fatalf("%s %s %s %s %s = %d, want %d", id, dir, address, typ, level, got, want)
	}
	return m
}

// dpLogs retrieves the connection log entries.
func dpLogs(t *testing.T, n *kit.Node, id string) []map[string]any {
	t.Helper()
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id))
	if r == nil || r.Status != http.StatusOK {
		t.Fatalf("logs of %s: %v", id, r)
	}
	var body struct {
		ConnectionLogs []map[string]any `json:"connectionLogs"`
	}
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		t.Fatal(err)
	}
	return body.ConnectionLogs
}

// dpLogCount counts entries of category, type, level (and address, if not empty).
func dpLogCount(entries []map[string]any, category, typ, level, address string) int {
	n := 0
	for _, e := range entries {
		if e["category"] == category && e["type"] == typ && e["level"] == level && (address == "" || e["address"] == address) {
			n++
		}
	}
	return n
}

// TestIntegrationDataPlaneMQTTToMQTT: a twin event consumed by one MQTT
// connection (Ditto mapper) reaches another connection's MQTT target under
// its resolved address, and never the source connection's own target.
func TestIntegrationDataPlaneMQTTToMQTT(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	srcID, tgtID := dpID("mqtt-src"), dpID("mqtt-tgt")
	dpOpen(t, n, map[string]any{
		"id": srcID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": srcID},
		"sources": []any{map[string]any{"addresses": []string{"dp/" + run + "/in/#"},
			"authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
		// its own target subscribes to twin events too: it must not get its own signals
		"targets": []any{map[string]any{"address": "dp/" + run + "/self/{{ thing:id }}",
			"topics": []string{"_/_/things/twin/events"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	})
	dpOpen(t, n, map[string]any{
		"id": tgtID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": tgtID},
		"targets": []any{map[string]any{"address": "dp/" + run + "/out/{{ thing:id }}",
			"topics": []string{"_/_/things/twin/events"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	})
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "dp/"+run+"/out/#")
	self := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "dp/"+run+"/self/#")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, "dp/"+run+"/in/dev-1", blackbox.TwinEvent("org.acme:dev-1", 21))
	m := out.Next(t, 10*time.Second, "routed twin event")
	if m.Topic() != "dp/"+run+"/out/org.acme:dev-1" {
		t.Errorf("published to %q", m.Topic())
	}
	got := blackbox.Decode(t, m.Payload())
	blackbox.WantField(t, got, "org.acme/dev-1/things/twin/events/modified", "topic")
	blackbox.WantField(t, got, "/features/temp/properties/value", "path")
	blackbox.WantField(t, got, float64(21), "value")
	blackbox.WantField(t, got, "c-dev-1-21", "headers", "correlation-id")
	if h, _ := got["headers"].(map[string]any); h["ditto-inbound-payload-mapper"] != nil || h["ditto-origin"] != nil {
		t.Errorf("internal headers published: %v", h)
	}
	select {
	case m := <-self.Msgs:
		t.Errorf("the source connection received its own signal on %s", m.Topic())
	case <-time.After(500 * time.Millisecond):
	}

	src := "dp/" + run + "/in/#"
	sm := dpWaitCount(t, n, srcID, "source", src, "consumed", "success", 1)
	if dpCount(sm, "source", src, "mapped", "success") != 1 {
		t.Errorf("source metrics: %v", sm["sourceMetrics"])
	}
	if c := dpCount(sm, "target", "dp/"+run+"/self/{{ thing:id }}", "dispatched", "success"); c != 0 {
		t.Errorf("own target dispatched %d", c)
	}
	tgt := "dp/" + run + "/out/{{ thing:id }}"
	tm := dpWaitCount(t, n, tgtID, "target", tgt, "published", "success", 1)
	for _, typ := range []string{"dispatched", "filtered", "mapped"} {
		if c := dpCount(tm, "target", tgt, typ, "success"); c != 1 {
			t.Errorf("target %s = %d, want 1", typ, c)
		}
	}
	if tm["containsFailures"] != false {
		t.Errorf("containsFailures = %v", tm["containsFailures"])
	}

	// reset clears the counts, not lastMessageAt
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.ResetConnectionMetrics, "connectionId", tgtID)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("reset: %v", r)
	}
	tm = dpMetrics(t, n, tgtID)
	if c := dpCount(tm, "target", tgt, "published", "success"); c != 0 {
		t.Errorf("published after reset = %d", c)
	}
	if at := blackbox.Field(tm, "targetMetrics", "addressMetrics", tgt, "published", "success", "lastMessageAt"); at == nil {
		t.Error("reset cleared lastMessageAt")
	}
	// and closing the connection answers Ditto's "no client" metrics
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", tgtID)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("close: %v", r)
	}
	tm = dpMetrics(t, n, tgtID)
	if blackbox.Field(tm, "connectionMetrics", "inbound") != nil || blackbox.Field(tm, "targetMetrics", "addressMetrics") != nil {
		t.Errorf("metrics of a closed connection: %v", tm)
	}
}

// TestDataPlaneTestConnectionInitialisesMappers: testConnection instantiates
// the payload mappers first, so a script that does not compile is a 400.
func TestDataPlaneTestConnectionInitialisesMappers(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	c := map[string]any{"id": dpID("badjs"), "connectionType": "mqtt", "connectionStatus": "closed",
		"uri": "tcp://127.0.0.1:1", "mappingDefinitions": map[string]any{"js": map[string]any{
			"mappingEngine": "JavaScript", "options": map[string]any{"incomingScript": "function ("}}},
		"sources": []any{map[string]any{"addresses": []string{"a"}, "authorizationContext": []string{"x:y"}, "qos": 0,
			"payloadMapping": []string{"js"}}}}
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", c))
	if r == nil || r.Status != http.StatusBadRequest {
		t.Fatalf("test with a broken script: %d %s", r.Status, r.Payload)
	}
	if m := blackbox.Decode(t, r.Payload); m["error"] != ditto.CodeConfigurationInvalid {
		t.Fatalf("answer %s", r.Payload)
	}
}
