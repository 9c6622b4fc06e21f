package clienttest

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// The settlement tests hold the client to Message.Settle (the outcomes of
// client.Outcome) against the real broker. Protocol differences:
//   - MQTT redelivers a message whose PUBACK was withheld only when the
//     client reconnects with its persistent session (Harness.Redelivery sets
//     cleanSession false and reconnectForRedelivery);
//   - Kafka redelivers by seeking back in the same consumer, AMQP by the
//     broker's requeue (0.9.1 nack with requeue, 1.0 modified).
// Sources consume with qos 1 (MQTT, Kafka: at-least-once).

// settleConnection is a connection with one source of one consumer (qos 1)
// and the harness's redelivery settings.
func settleConnection(t *testing.T, h *Harness) (conn *model.Connection, source string) {
	t.Helper()
	if h.Send == nil {
		t.Skip("the protocol has no sources")
	}
	source, target := h.Addresses(t)
	one := 1
	conn = h.Connection(h.Broker, []model.Source{{Addresses: []string{source}, ConsumerCount: 1, QoS: &one}},
		[]model.Target{{Address: target}})
	if h.Redelivery != nil {
		h.Redelivery(conn)
	}
	return conn, source
}

// connectHolding connects a client of conn whose messages stay unsettled.
func connectHolding(t *testing.T, h *Harness, conn *model.Connection) (client.Client, *Recorder) {
	t.Helper()
	rec := &Recorder{Hold: true}
	c := NewClientRecording(t, h.Factory, conn, rec)
	if err := c.Connect(Context(t, 15*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, rec
}

// count is how many inbound messages of rec carry payload.
func count(rec *Recorder, payload string) int {
	n := 0
	for _, m := range rec.Messages() {
		if string(m.Payload) == payload {
			n++
		}
	}
	return n
}

// testSettledForGood: a message settled with Accept or Reject is not
// delivered again, neither to the same client nor to the next client of
// the connection (same client id, group or queue).
func testSettledForGood(t *testing.T, h *Harness, o client.Outcome) {
	conn, source := settleConnection(t, h)
	c, rec := connectHolding(t, h, conn)
	payload := fmt.Sprintf("settled-%s-%d", o, time.Now().UnixNano())
	h.Send(t, source, []byte(payload))
	m := rec.WaitMessage(t, payload, 10*time.Second)
	if m.Settle == nil {
		t.Fatal("a consumed message carries no Settle")
	}
	m.Settle(o)
	m.Settle(client.Redeliver) // a second call is ignored
	if err := c.Close(Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}

	c2 := &Recorder{}
	next := NewClientRecording(t, h.Factory, conn, c2)
	if err := next.Connect(Context(t, 15*time.Second)); err != nil {
		t.Fatalf("Connect again: %v", err)
	}
	marker := fmt.Sprintf("marker-%d", time.Now().UnixNano())
	h.Send(t, source, []byte(marker))
	c2.WaitMessage(t, marker, 10*time.Second)
	if n := count(rec, payload) + count(c2, payload); n != 1 {
		t.Fatalf("a message settled with %s was delivered %d times", o, n)
	}
}

// testSettleRedeliver: a message settled with Redeliver comes again, with
// its payload; settled with Accept then, it stays settled.
func testSettleRedeliver(t *testing.T, h *Harness) {
	conn, source := settleConnection(t, h)
	_, rec := connectHolding(t, h, conn)
	payload := fmt.Sprintf("redeliver-%d", time.Now().UnixNano())
	h.Send(t, source, []byte(payload))
	rec.WaitMessage(t, payload, 10*time.Second).Settle(client.Redeliver)
	var again client.Message
	poll.Check(t, 15*time.Second, func() error {
		ms := rec.Messages()
		n := 0
		for _, m := range ms {
			if string(m.Payload) == payload {
				n++
				again = m
			}
		}
		if n < 2 {
			return fmt.Errorf("delivered %d times, want a redelivery", n)
		}
		return nil
	})
	again.Settle(client.Accept)
}

// testUnsettledBound: a consumer holds at most the bound of unsettled
// messages (DITTOCONN_CONSUMER_MAX_UNSETTLED); it consumes again once
// settlements free room.
func testUnsettledBound(t *testing.T, h *Harness) {
	const bound, total = 3, 6
	client.UseSettings(map[string]string{"DITTOCONN_CONSUMER_MAX_UNSETTLED": fmt.Sprint(bound)})
	t.Cleanup(func() { client.UseSettings(nil) })
	conn, source := settleConnection(t, h)
	_, rec := connectHolding(t, h, conn)
	prefix := fmt.Sprintf("bound-%d-", time.Now().UnixNano())
	for i := range total {
		h.Send(t, source, []byte(fmt.Sprintf("%s%d", prefix, i)))
	}
	unique := func() []client.Message {
		seen := map[string]bool{}
		var out []client.Message
		for _, m := range rec.Messages() {
			if !seen[string(m.Payload)] {
				seen[string(m.Payload)] = true
				out = append(out, m)
			}
		}
		return out
	}
	poll.Check(t, 10*time.Second, func() error {
		if n := len(unique()); n != bound {
			return fmt.Errorf("%d messages consumed, want the bound %d", n, bound)
		}
		return nil
	})
	// Nothing beyond the bound arrives while the messages stay unsettled.
	// (A wrong client fails this only sometimes; a right one never does.)
	hold := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(hold) {
		if n := len(rec.Messages()); n > bound {
			t.Fatalf("%d messages consumed while %d were unsettled", n, bound)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Settle from other goroutines, twice each at once: the first call
	// counts, the client must take both without a race.
	var wg sync.WaitGroup
	for _, m := range unique() {
		for _, o := range []client.Outcome{client.Accept, client.Reject} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m.Settle(o)
			}()
		}
	}
	wg.Wait()
	poll.Check(t, 10*time.Second, func() error {
		ms := unique()
		for _, m := range ms {
			m.Settle(client.Accept) // idempotent for the settled ones
		}
		if len(ms) != total {
			return fmt.Errorf("%d of %d messages consumed after settling", len(ms), total)
		}
		return nil
	})
}
