package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Proofs of issue #13 (at least once through acknowledgements): a device's
// messages, consumed by a source whose acknowledgementRequests include a
// label another connection's target issues, reach that target at least
// once although its broker or endpoint is unavailable for a while. Every
// duplicate at the target comes from a redelivery, so duplicates are
// bounded by the source's consumptions beyond the first of each message.

// ackProofMessage is live message number i of the device thing, asking for
// no live response (only the source's label is awaited).
func ackProofMessage(run string, i int, timeout string) string {
	return fmt.Sprintf(`{"topic":"org.acme/dev-%s/things/live/messages/tick","headers":{"correlation-id":"p-%s-%d",`+
		`"content-type":"application/json","response-required":"false","timeout":"%s"},`+
		`"path":"/inbox/messages/tick","value":%d}`, run, run, i, timeout, i)
}

// waitSourceAcks waits until the source counted at least want successful
// acknowledgements (a redelivered message may count twice) and returns the
// metrics.
func waitSourceAcks(t *testing.T, n *kit.Node, id, address string, want int) map[string]any {
	t.Helper()
	var m map[string]any
	poll.Check(t, 15*time.Second, func() error {
		m = dpMetrics(t, n, id)
		if c := dpCount(m, "source", address, "acknowledged", "success"); c < want {
			return fmt.Errorf("%s source %s: %d acknowledged, want %d", id, address, c, want)
		}
		return nil
	})
	return m
}

// wantDuplicatesBounded checks that the target's duplicates (total - n) do
// not exceed the source's redeliveries (consumed - n), and that the outage
// really caused redeliveries.
func wantDuplicatesBounded(t *testing.T, n, total, consumed int) {
	t.Helper()
	t.Logf("%d messages: %d arrivals at the target (%d duplicates), %d consumptions (%d redeliveries)",
		n, total, total-n, consumed, consumed-n)
	if consumed <= n {
		t.Errorf("consumed %d times for %d messages: the outage caused no redelivery", consumed, n)
	}
	if total-n > consumed-n {
		t.Errorf("%d duplicates at the target, more than the %d redeliveries", total-n, consumed-n)
	}
}

// MQTT source (persistent session, reconnectForRedelivery) → MQTT target
// issuing the requested label, its broker cut for 5 s.
func TestIntegrationAckProofMQTTToMQTT(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	const n = 50
	n0 := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	// ids and topics of this invocation only: the persistent session must
	// not resume one of an earlier run (go test -count)
	run := fmt.Sprintf("%d-%d", runID, time.Now().UnixNano()%1e9)
	reqID, issID := dpID("apm-req-"+run), dpID("apm-iss-"+run)
	auth := []string{"nginx:ditto"}
	in := "apm/" + run + "/in/#"
	proxy := blackbox.StartProxy(t, "127.0.0.1:1883")

	got := blackbox.NewArrivals()
	got.CountFrom(t, blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "apm/"+run+"/out/#"))

	dpOpen(t, n0, map[string]any{"id": reqID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": reqID, "cleanSession": false,
			"reconnectForRedelivery": true, "reconnectForRedeliveryDelay": "1s"},
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}}}}})
	dpOpen(t, n0, map[string]any{"id": issID, "connectionType": "mqtt", "uri": "tcp://" + proxy.Addr(),
		"specificConfig": map[string]any{"clientId": issID},
		"targets": []any{map[string]any{"address": "apm/" + run + "/out/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			blackbox.PublishMQTT(t, dev, "apm/"+run+"/in/dev", ackProofMessage(run, i, "2s"))
		}
	}

	pub(0, 10)
	got.WaitAll(t, 10, 15*time.Second)
	proxy.Down()
	cut := time.Now()
	pub(10, 40)
	time.Sleep(time.Until(cut.Add(5 * time.Second))) // the outage lasts 5 s whatever the publishing took
	proxy.Up()
	pub(40, n)

	total := got.WaitAll(t, n, 25*time.Second)
	m := waitSourceAcks(t, n0, reqID, in, n)
	consumed := dpCount(m, "source", in, "consumed", "success")
	if f := dpCount(m, "source", in, "acknowledged", "failure"); f == 0 {
		t.Errorf("no acknowledged failure at the source during the outage")
	}
	wantDuplicatesBounded(t, n, total, consumed)
}
