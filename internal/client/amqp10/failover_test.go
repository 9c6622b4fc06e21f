package amqp10

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestFailoverSchedule: Ditto's failover defaults (AmqpSpecificConfig) and
// Qpid's reconnect schedule; specificConfig's failover.* keys override.
func TestFailoverSchedule(t *testing.T) {
	f, err := parseFailover(&model.Connection{FailoverEnabled: true})
	if err != nil {
		t.Fatal(err)
	}
	if !f.enabled || f.limit(true) != 5 || f.limit(false) != -1 || f.warnAfter != 10 {
		t.Fatalf("defaults: %+v", f)
	}
	ms := time.Millisecond
	for n, want := range []time.Duration{128 * ms, 128 * ms, 256 * ms, 512 * ms, 1024 * ms} {
		if got := f.wait(n); got != want {
			t.Errorf("wait(%d) = %v, want %v", n, got, want)
		}
	}
	if got := f.wait(40); got != 15*time.Minute {
		t.Errorf("wait(40) = %v, want the 15 min cap", got)
	}

	f, err = parseFailover(&model.Connection{FailoverEnabled: true, SpecificConfig: map[string]string{
		cfgInitialReconnectDelay: "0", cfgReconnectDelay: "100", cfgMaxReconnectDelay: "250",
		cfgReconnectBackOffMult: "3", cfgMaxReconnectAttempts: "4", cfgStartupMaxReconnects: "-1",
	}})
	if err != nil {
		t.Fatal(err)
	}
	for n, want := range []time.Duration{0, 100 * ms, 250 * ms, 250 * ms} {
		if got := f.wait(n); got != want {
			t.Errorf("set: wait(%d) = %v, want %v", n, got, want)
		}
	}
	if f.limit(true) != 4 || f.limit(false) != 4 {
		t.Errorf("startup -1 takes maxReconnectAttempts: %d %d", f.limit(true), f.limit(false))
	}
	f, _ = parseFailover(&model.Connection{FailoverEnabled: true, SpecificConfig: map[string]string{
		cfgUseReconnectBackOff: "false", cfgReconnectDelay: "70"}})
	if f.wait(5) != 70*ms {
		t.Errorf("without back-off: wait(5) = %v", f.wait(5))
	}
	for _, bad := range []map[string]string{
		{cfgReconnectDelay: "-1"}, {cfgMaxReconnectAttempts: "-2"}, {cfgReconnectBackOffMult: "0.5"},
		{cfgUseReconnectBackOff: "yes please"}, {cfgRandomize: "maybe"},
	} {
		if _, err := parseFailover(&model.Connection{FailoverEnabled: true, SpecificConfig: bad}); !errors.Is(err, client.ErrConfig) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

// failoverConnection is a connection through front consuming from a
// fresh queue and publishing to another, with failover fast for tests.
func failoverConnection(t *testing.T, front string, enabled bool, sc map[string]string) (conn *model.Connection, source, target string) {
	a := newAdmin(t)
	in, out := uniqueName(t, "in"), uniqueName(t, "out")
	a.Queue(in)
	a.Queue(out)
	source, target = "/amq/queue/"+in, "/queue/"+out
	conn = testConnection(uniqueName(t, "conn"), "amqp://guest:guest@"+front,
		[]model.Source{{Addresses: []string{source}, ConsumerCount: 1}}, []model.Target{{Address: target}})
	conn.FailoverEnabled = enabled
	if enabled {
		conn.SpecificConfig = map[string]string{
			cfgInitialReconnectDelay: "20", cfgReconnectDelay: "50", cfgMaxReconnectDelay: "200",
		}
		for k, v := range sc {
			conn.SpecificConfig[k] = v
		}
	}
	return conn, source, target
}

func clientEntry(c client.Client) client.ResourceStatus { return c.Status()[0] }

// TestIntegrationFailoverEnabled: with failoverEnabled the client survives
// the loss of its connection: the client entry says "JMS Interrupted"
// while the network is cut and "Connection restored" once it is back, no
// ConnectionLost goes out, a publish made during the outage completes, and
// consuming goes on over the new connection.
func TestIntegrationFailoverEnabled(t *testing.T) {
	needBroker(t)
	front := clienttest.NewProxy(t, brokerAddr)
	conn, source, target := failoverConnection(t, front.Address(), true, nil)
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	p := newPeer(t)
	p.send(source, amqp.NewMessage([]byte("before")))
	rec.WaitMessage(t, "before", 10*time.Second)

	front.Cut()
	poll.Check(t, 10*time.Second, func() error {
		if e := clientEntry(c); e.Status != client.StatusMisconfigured || e.Details != detailsInterrupted {
			return fmt.Errorf("client entry %s %q", e.Status, e.Details)
		}
		return nil
	})
	published := make(chan error, 1)
	go func() {
		published <- c.Publish(clienttest.Context(t, 20*time.Second), client.Message{Address: target, Payload: []byte("during")})
	}()
	front.Back()
	poll.Check(t, 10*time.Second, func() error {
		if e := clientEntry(c); e.Status != client.StatusOpen || e.Details != detailsRestored {
			return fmt.Errorf("client entry %s %q", e.Status, e.Details)
		}
		return nil
	})
	if err := <-published; err != nil {
		t.Fatalf("publish during the outage: %v", err)
	}
	if got := string(p.receive(target).GetData()); got != "during" {
		t.Fatalf("published %q", got)
	}
	p.send(source, amqp.NewMessage([]byte("after")))
	rec.WaitMessage(t, "after", 10*time.Second)
	if n := rec.Count(client.ConnectionLost); n != 0 {
		t.Fatalf("%d ConnectionLost events with failover", n)
	}
}

// TestIntegrationFailoverDisabled: without failoverEnabled the cut is a
// ConnectionLost as before (the grain reconnects).
func TestIntegrationFailoverDisabled(t *testing.T) {
	needBroker(t)
	front := clienttest.NewProxy(t, brokerAddr)
	conn, _, _ := failoverConnection(t, front.Address(), false, nil)
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	front.Cut()
	rec.WaitEvent(t, client.ConnectionLost, 10*time.Second)
	clienttest.AssertAll(t, c, client.StatusFailed)
}

// TestIntegrationFailoverGivesUp: failover.maxReconnectAttempts bounds the
// reconnecting; then the loss goes to the Lifecycle, saying why.
func TestIntegrationFailoverGivesUp(t *testing.T) {
	needBroker(t)
	front := clienttest.NewProxy(t, brokerAddr)
	conn, _, _ := failoverConnection(t, front.Address(), true, map[string]string{cfgMaxReconnectAttempts: "2"})
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	front.Cut()
	ev := rec.WaitEvent(t, client.ConnectionLost, 10*time.Second)
	if !strings.Contains(ev.Err.Error(), "failover gave up after 2 reconnect attempts") {
		t.Fatalf("loss: %v", ev.Err)
	}
	clienttest.AssertAll(t, c, client.StatusFailed)
}

// refusingHosts refuses the first refuse dials and counts them all.
type refusingHosts struct {
	refuse int
	dials  atomic.Int32
}

func (h *refusingHosts) ValidateHost(string) error { return nil }

func (h *refusingHosts) DialControl(string) func(string, string, syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error {
		if int(h.dials.Add(1)) <= h.refuse {
			return errors.New("refused by the test")
		}
		return nil
	}
}

// TestIntegrationFailoverStartup: an unreachable broker at connect is
// tried failover.startupMaxReconnectAttempts times (Ditto: 5) before
// Connect fails; a broker reached within them connects.
func TestIntegrationFailoverStartup(t *testing.T) {
	needBroker(t)
	conn, _, _ := failoverConnection(t, brokerAddr, true, map[string]string{cfgStartupMaxReconnects: "3"})
	for _, tc := range []struct {
		refuse, dials int
		ok            bool
	}{{refuse: 2, dials: 3, ok: true}, {refuse: 3, dials: 3}} {
		hosts := &refusingHosts{refuse: tc.refuse}
		c, err := New(client.Env{Connection: conn, Hosts: hosts, Logger: zerolog.New(zerolog.NewTestWriter(t))})
		if err != nil {
			t.Fatal(err)
		}
		err = c.Connect(clienttest.Context(t, 10*time.Second))
		_ = c.Close(clienttest.Context(t, 10*time.Second))
		if tc.ok && err != nil || !tc.ok && !errors.Is(err, client.ErrUnreachable) {
			t.Fatalf("%d refused dials: %v", tc.refuse, err)
		}
		if n := int(hosts.dials.Load()); n != tc.dials {
			t.Fatalf("%d refused dials: %d dials, want %d", tc.refuse, n, tc.dials)
		}
	}
}
