package durability

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// piggyOK sends command to p and fails unless its answer has status want;
// it returns the answer.
func piggyOK(t *testing.T, p *blackbox.Proc, command map[string]any, want float64) map[string]any {
	t.Helper()
	st, m := p.Piggyback(t, kit.Envelope(blackbox.Shard, command, nil))
	if st != 200 || m["status"] != want {
		t.Fatalf("%v: HTTP %d %v", command["type"], st, m)
	}
	return m
}

// waitOpen waits until connection id's client is connected on p.
func waitOpen(t *testing.T, p *blackbox.Proc, id string) {
	t.Helper()
	var last map[string]any
	poll.Check(t, 30*time.Second, func() error {
		_, last = p.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id), nil))
		if blackbox.Field(last, "liveStatus") == "open" {
			return nil
		}
		return fmt.Errorf("%s not open: %v", id, last)
	})
}

// TestAckKillRedelivery (#13): a device's QoS 1 live messages, consumed by a
// source with a persistent MQTT session (cleanSession false, as Ditto
// defaults) that requests the label another connection's MQTT target
// issues, are in flight (the target's broker cut, so no acknowledgement
// comes) when dittoconn is SIGKILLed; more are published while it is down.
// After a restart on the same data every message reaches the target at
// least once: the broker kept the unacknowledged ones in the session.
func TestAckKillRedelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the real binary")
	}
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	const n = 50
	bin := blackbox.BuildBinary(t)
	run := fmt.Sprint(time.Now().UnixNano() % 1e9)
	dir := t.TempDir()
	env := []string{"INSTANCE_INDEX=ackkill-1", "DITTOCONN_DATA_DIR=" + dir, "MONGO_DB_URI="}
	proxy := blackbox.StartProxy(t, "127.0.0.1:1883")

	got := blackbox.NewArrivals()
	got.CountFrom(t, blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "ackkill/"+run+"/out/#"))

	p := blackbox.StartBinary(t, bin, env...)
	reqID, issID := "ackkill-req-"+run, "ackkill-iss-"+run
	auth := []string{"nginx:ditto"}
	in := "ackkill/" + run + "/in/#"
	piggyOK(t, p, blackbox.Cmd(ditto.CreateConnection, "connection", map[string]any{
		"id": issID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://" + proxy.Addr(),
		"specificConfig": map[string]any{"clientId": issID},
		"targets": []any{map[string]any{"address": "ackkill/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}}), 201)
	piggyOK(t, p, blackbox.Cmd(ditto.CreateConnection, "connection", map[string]any{
		"id": reqID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID, "cleanSession": false,
			"reconnectForRedelivery": true, "reconnectForRedeliveryDelay": "1s"},
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}}}}}), 201)
	waitOpen(t, p, issID)
	waitOpen(t, p, reqID)

	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			blackbox.PublishMQTT(t, dev, "ackkill/"+run+"/in/dev", fmt.Sprintf(
				`{"topic":"org.acme/dev-%s/things/live/messages/tick","headers":{"correlation-id":"k-%s-%d",`+
					`"content-type":"application/json","response-required":"false","timeout":"10s"},`+
					`"path":"/inbox/messages/tick","value":%d}`, run, run, i, i))
		}
	}
	pub(0, 10)
	got.WaitAll(t, 10, 15*time.Second)
	proxy.Down() // the target's acknowledgements stop: what is consumed now stays in flight
	pub(10, 30)
	poll.Check(t, 15*time.Second, func() error {
		_, m := p.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnectionMetrics, "connectionId", reqID), nil))
		c, _ := blackbox.Field(m, "sourceMetrics", "addressMetrics", in, "consumed", "success", "PT1M").(float64)
		if c >= 30 {
			return nil
		}
		return fmt.Errorf("the source consumed %v of 30: %v", c, m)
	})
	if err := p.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.Done
	proxy.Up()
	pub(30, 40) // while dittoconn is down: queued in the persistent session
	p = blackbox.StartBinary(t, bin, env...)
	waitOpen(t, p, reqID)
	pub(40, n)
	total := got.WaitAll(t, n, 30*time.Second)
	t.Logf("%d messages: %d arrivals at the target (%d duplicates)", n, total, total-n)
	p.Stop(t)
}
