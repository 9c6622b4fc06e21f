package dataplane

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/poll"
)

// asyncClient publishes asynchronously; the test settles each publish.
type asyncClient struct {
	mu      sync.Mutex
	started []*fakePending
	got     chan *fakePending
}

type fakePending struct {
	msg  client.Message
	done chan struct{}
	err  error
}

func (f *fakePending) Done() <-chan struct{} { return f.done }
func (f *fakePending) Err() error            { return f.err }
func (f *fakePending) settle(err error)      { f.err = err; close(f.done) }

func (a *asyncClient) Connect(context.Context) error { return nil }
func (a *asyncClient) Publish(context.Context, client.Message) error {
	return errors.New("Publish called on an asynchronous client")
}
func (a *asyncClient) PublishAsync(m client.Message) client.Pending {
	f := &fakePending{msg: m, done: make(chan struct{})}
	a.mu.Lock()
	a.started = append(a.started, f)
	a.mu.Unlock()
	a.got <- f
	return f
}
func (a *asyncClient) Status() []client.ResourceStatus { return nil }
func (a *asyncClient) Close(context.Context) error     { return nil }

// TestAsynchronousPublishesAreCountedWhenSettled: a client that publishes
// asynchronously gets the next signal before the broker answered the
// previous one; published is counted (success, failure, timeout) only when
// the outcome is known, with the failure's text in the log.
func TestAsynchronousPublishesAreCountedWhenSettled(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, strings.Replace(sourceConn, `"enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}`, `"qos":0`, 1))
	logs := monitor.NewLogs(monitor.LogOptions{ConnectionID: "tgt"})
	logs.Enable()
	tgt, err := New(parse(t, `{"id":"tgt","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"out/{{ thing:id }}","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`),
		Config{Bus: b, Logs: logs, Workers: 1, PublishTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ac := &asyncClient{got: make(chan *fakePending, 10)}
	tgt.Connected(0, ac)
	t.Cleanup(func() { tgt.Close(); tgt.Wait() })
	ev := func(n string) []byte {
		return []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{"correlation-id":"` + n +
			`"},"path":"/attributes/n","value":"` + n + `"}`)
	}
	next := func() *fakePending {
		select {
		case f := <-ac.got:
			return f
		case <-time.After(5 * time.Second):
			t.Fatal("nothing published")
			return nil
		}
	}
	published := func(ok bool) int { return count(tgt, monitor.Outbound, monitor.Published, "out/{{ thing:id }}", ok) }
	for _, n := range []string{"1", "2", "3"} {
		src.Inbound(0)(client.Message{Address: "q", Payload: ev(n)})
	}
	// all three are handed over although none is settled (one worker)
	f1, f2, f3 := next(), next(), next()
	if f1.msg.Address != "out/org.acme:dev" || !strings.Contains(string(f3.msg.Payload), `"value":"3"`) {
		t.Fatalf("published %s %s", f1.msg.Address, f3.msg.Payload)
	}
	if published(true)+published(false) != 0 {
		t.Fatal("counted before the broker answered")
	}
	f1.settle(nil)
	f2.settle(errors.New("broker said no"))
	poll.Until(t, 5*time.Second, "one success and one failure published", func() bool { return published(true) == 1 && published(false) == 1 })
	// f3 is never settled: it fails after PublishTimeout
	poll.Until(t, 5*time.Second, "two failures published", func() bool { return published(false) == 2 })
	var msgs []string
	for _, e := range logs.Retrieve().Entries {
		if e.Type == monitor.Published && e.Level == monitor.LevelFailure {
			msgs = append(msgs, e.Message)
		}
	}
	if len(msgs) != 2 || !strings.Contains(msgs[0], "broker said no") || !strings.Contains(msgs[1], "timed out") {
		t.Errorf("failure entries %q", msgs)
	}
}
