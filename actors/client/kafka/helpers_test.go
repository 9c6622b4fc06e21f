package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

// checkFor polls f until it returns nil or total passes.
func checkFor(t *testing.T, total time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(total)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %v", total, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// newCluster starts an in-process kfake cluster, closed with the test.
func newCluster(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// adminClient is a plain franz-go client for arranging and checking topics.
func adminClient(t *testing.T, c *kfake.Cluster, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func produce(t *testing.T, cl *kgo.Client, rs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
}

// consumeN reads n records of topic from the start.
func consumeN(t *testing.T, c *kfake.Cluster, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := adminClient(t, c, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("consumed %d of %d records of %s: %v", len(out), n, topic, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, r) })
	}
	return out
}

type recorder struct {
	mu       sync.Mutex
	events   []client.Event
	messages []client.Message
}

func (r *recorder) event(e client.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) inbound(m client.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.messages = append(r.messages, m)
}

func (r *recorder) count(kind client.EventKind) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

func (r *recorder) waitEvent(t *testing.T, kind client.EventKind, total time.Duration) client.Event {
	t.Helper()
	var ev client.Event
	checkFor(t, total, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, e := range r.events {
			if e.Kind == kind {
				ev = e
				return nil
			}
		}
		return fmt.Errorf("no event of kind %d among %d events", kind, len(r.events))
	})
	return ev
}

func (r *recorder) waitMessage(t *testing.T, payload string) client.Message {
	t.Helper()
	var got client.Message
	checkFor(t, 10*time.Second, func() error {
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, m := range r.messages {
			if string(m.Payload) == payload {
				got = m
				return nil
			}
		}
		return fmt.Errorf("message %q not received (%d received)", payload, len(r.messages))
	})
	return got
}

func testConnection(id, uri string, servers []string, sources []model.Source, targets []model.Target) *model.Connection {
	return &model.Connection{
		ID:               id,
		ConnectionType:   model.TypeKafka,
		ConnectionStatus: "open",
		URI:              uri,
		Sources:          sources,
		Targets:          targets,
		ClientCount:      1,
		SpecificConfig: map[string]string{
			cfgBootstrapServers:    strings.Join(servers, ","),
			cfgConsumerOffsetReset: "earliest",
		},
	}
}

func newTestClient(t *testing.T, conn *model.Connection) (client.Client, *recorder) {
	t.Helper()
	rec := &recorder{}
	c, err := New(client.Env{
		Connection: conn,
		Instance:   "test-instance",
		Logger:     zerolog.New(zerolog.NewTestWriter(t)),
		Events:     rec.event,
		Inbound:    rec.inbound,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c, rec
}

func connectCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func statusOf(c client.Client, typ string) []client.ResourceStatus {
	var out []client.ResourceStatus
	for _, s := range c.Status() {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

func assertAll(t *testing.T, c client.Client, status string) {
	t.Helper()
	checkFor(t, 5*time.Second, func() error {
		for _, s := range c.Status() {
			if s.Status != status {
				return fmt.Errorf("%s %s is %s (%s)", s.Type, s.Address, s.Status, s.Details)
			}
		}
		return nil
	})
}
