package dataplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/poll"
)

// blocking is a client whose publishes wait until release is closed.
type blocking struct{ started, release chan struct{} }

func (b *blocking) Connect(context.Context) error { return nil }
func (b *blocking) Publish(ctx context.Context, _ client.Message) error {
	select {
	case b.started <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
func (b *blocking) Status() []client.ResourceStatus { return nil }
func (b *blocking) Close(context.Context) error     { return nil }

// TestBackPressureCountsThrottledAtTheSource: a signal that has to wait for
// room in a full target queue throttles the source that consumed it; the
// source counts a throttled failure and logs it, whether the signal then
// fits or is dropped.
func TestBackPressureCountsThrottledAtTheSource(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, strings.Replace(sourceConn, `"enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}`, `"qos":0`, 1))
	tgt, err := New(parse(t, `{"id":"slow","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"out","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`),
		Config{Bus: b, QueueSize: 16, Workers: 1, EnqueueWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	cl := &blocking{started: make(chan struct{}, 1), release: make(chan struct{})}
	tgt.Connected(0, cl)
	t.Cleanup(func() { tgt.Close(); tgt.Wait() })
	ev := []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{},"path":"/a","value":1}`)
	in := src.Inbound(0)
	throttled := func() int { return count(src, monitor.Inbound, monitor.Throttled, "q", false) }
	// one in the worker's hands, 16 queued: no waiting yet
	in(client.Message{Address: "q", Payload: ev})
	select {
	case <-cl.started:
	case <-time.After(5 * time.Second):
		t.Fatal("the worker did not publish")
	}
	for range 16 {
		in(client.Message{Address: "q", Payload: ev})
	}
	poll.Until(t, 5*time.Second, "17 filtered", func() bool { return count(tgt, monitor.Outbound, monitor.Filtered, "out", true) == 17 })
	if throttled() != 0 {
		t.Fatalf("throttled %d before any queue was full", throttled())
	}
	in(client.Message{Address: "q", Payload: ev}) // waits 100 ms, then is dropped
	if got := throttled(); got != 1 {
		t.Errorf("throttled %d, want 1", got)
	}
	if got := count(tgt, monitor.Outbound, monitor.Dropped, "out", false); got != 1 {
		t.Errorf("dropped %d, want 1", got)
	}
	found := false
	for _, e := range src.logs.Retrieve().Entries {
		if e.Type == monitor.Throttled && e.Level == monitor.LevelFailure && e.Message == throttledMessage {
			found = true
		}
	}
	if !found {
		t.Errorf("no throttled log entry: %s", src.logs.Retrieve().ConnectionLogsJSON())
	}
	// what retrieveConnectionMetrics shows: one throttled minute
	if m := src.Metrics(); len(m.Sources) != 1 || m.Sources[0].Metric[monitor.Throttled].Failure.PT1M != 1 {
		t.Errorf("source metrics %+v", m.Sources)
	}
	close(cl.release)
	if waited.n.Load() != 0 {
		t.Errorf("%d waits left uncollected", waited.n.Load())
	}
}

// TestUncollectedWaitsStayBounded: waits nobody collects do not grow the
// table without bound, and noting still works after it started afresh.
func TestUncollectedWaitsStayBounded(t *testing.T) {
	for range maxWaited + 10 {
		noteWait(&bus.Signal{})
	}
	if n := waited.n.Load(); n > maxWaited || n <= 0 {
		t.Fatalf("%d entries", n)
	}
	s := &bus.Signal{}
	noteWait(s)
	if !tookWait(s) || tookWait(s) {
		t.Error("a noted wait is taken exactly once")
	}
	waited.m.Clear()
	waited.n.Store(0)
}
