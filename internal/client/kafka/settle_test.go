package kafka

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// settleFixture is a one-partition topic with records a, b, c and a qos 1
// connection consuming it.
func settleFixture(t *testing.T) (conn *model.Connection, send func(string)) {
	t.Helper()
	cluster := newCluster(t, kfake.NumBrokers(1))
	admin := adminClient(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kadm.NewClient(admin).CreateTopics(ctx, 1, 1, nil, "in"); err != nil {
		t.Fatalf("create topic: %v", err)
	}
	one := 1
	conn = testConnection("settle", "tcp://"+cluster.ListenAddrs()[0], cluster.ListenAddrs(),
		[]model.Source{{Addresses: []string{"in"}, ConsumerCount: 1, QoS: &one}}, nil)
	send = func(v string) { produce(t, admin, &kgo.Record{Topic: "in", Value: []byte(v)}) }
	for _, v := range []string{"a", "b", "c"} {
		send(v)
	}
	return conn, send
}

func connectHolding(t *testing.T, conn *model.Connection) *clienttest.Recorder {
	t.Helper()
	rec := &clienttest.Recorder{Hold: true}
	c := clienttest.NewClientRecording(t, New, conn, rec)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(clienttest.Context(t, 10*time.Second)) })
	return rec
}

// payloads waits until rec holds n messages and returns their payloads.
func payloads(t *testing.T, rec *clienttest.Recorder, n int) ([]string, []client.Message) {
	t.Helper()
	var ms []client.Message
	poll.Check(t, 10*time.Second, func() error {
		ms = rec.Messages()
		if len(ms) < n {
			return fmt.Errorf("%d of %d messages", len(ms), n)
		}
		return nil
	})
	var ps []string
	for _, m := range ms {
		ps = append(ps, string(m.Payload))
	}
	return ps, ms
}

// Redeliver of the first record seeks back to it: the records after it
// that were settled meanwhile come again too, and nothing is committed
// past it.
func TestIntegrationSettleRedeliverSeeksBack(t *testing.T) {
	conn, _ := settleFixture(t)
	rec := connectHolding(t, conn)
	_, ms := payloads(t, rec, 3)
	ms[1].Settle(client.Accept)
	ms[2].Settle(client.Accept)
	ms[0].Settle(client.Redeliver)
	ps, ms := payloads(t, rec, 6)
	if want := []string{"a", "b", "c", "a", "b", "c"}; !slices.Equal(ps[:6], want) {
		t.Fatalf("deliveries %q, want %q", ps, want)
	}
	for _, m := range ms[3:] {
		m.Settle(client.Accept)
	}
}

// A record settled after an unsettled one is not committed: the next
// client of the group gets both again.
func TestIntegrationSettleCommitsOnlyASettledPrefix(t *testing.T) {
	conn, send := settleFixture(t)
	first := &clienttest.Recorder{Hold: true}
	c := clienttest.NewClientRecording(t, New, conn, first)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	_, ms := payloads(t, first, 3)
	ms[0].Settle(client.Accept)
	ms[2].Settle(client.Reject) // b stays unsettled
	if err := c.Close(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}

	next := connectHolding(t, conn)
	send("d")
	ps, ms := payloads(t, next, 3)
	if want := []string{"b", "c", "d"}; !slices.Equal(ps, want) {
		t.Fatalf("the next client got %q, want %q (a committed, b and what follows not)", ps, want)
	}
	for _, m := range ms {
		m.Settle(client.Accept)
	}
}
