// Package clienttest is the conformance suite of client.Client: what the
// connection grain relies on from every protocol, run against the
// protocol's real broker. A protocol's test calls Run with a Harness; a new
// protocol gets the whole suite by adding that one call.
//
// Broker tests skip when the broker does not answer, and fail instead when
// DITTOCONN_REQUIRE_BROKERS=1 (CI). The caller names its test
// TestIntegration… so that CI can select them.
package clienttest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
	"github.com/dittoconn/dittoconn/internal/sshtunnel/sshdtest"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Harness is one protocol against its broker, built afresh for each
// subtest.
type Harness struct {
	// Factory builds the protocol's clients.
	Factory client.Factory
	// Broker is the broker's host:port.
	Broker string
	// Front is an address in front of the broker whose connections the test
	// can cut; nil: a TCP proxy to Broker that refuses connections while cut.
	Front func(t *testing.T) Front
	// Connection is a connection of the protocol to addr (host:port) with
	// these sources and targets and good credentials.
	Connection func(addr string, sources []model.Source, targets []model.Target) *model.Connection
	// BadLogin makes c log in with password; nil when the broker takes any
	// login.
	BadLogin func(c *model.Connection, password string)
	// Addresses makes a fresh source and target address, removed with t.
	Addresses func(t *testing.T) (source, target string)
	// Send delivers payload to where a client consuming source receives it;
	// nil when the protocol has no sources.
	Send func(t *testing.T, source string, payload []byte)
	// Listen starts receiving what is published to target; received
	// returns the payloads that arrived so far.
	Listen func(t *testing.T, target string) (received func() [][]byte)
	// Shape of the client's source entries.
	Shape client.Shape
	// Redelivery prepares a connection for the settlement tests: what the
	// protocol needs so that a message settled with Redeliver is delivered
	// again (MQTT: a persistent session and reconnectForRedelivery with a
	// short delay, as the broker redelivers only on reconnect); nil: nothing.
	Redelivery func(c *model.Connection)
	// ConnectedOnTCP: an endpoint that accepts TCP counts as connected (HTTP
	// push), so there is no handshake to time out.
	ConnectedOnTCP bool

	// tunnelled: RunTunnelled's harness; the clients report a tunnel entry.
	tunnelled bool
}

// Front is a way to the broker that a test can cut, as a failing network
// would, and restore.
type Front interface {
	Address() string
	// Cut drops every connection and makes new ones fail until Back.
	Cut()
	Back()
}

// Run runs the suite; harness is called once per subtest.
func Run(t *testing.T, harness func(t *testing.T) *Harness) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, h *Harness)
	}{
		{"ConnectStatus", testConnectStatus},
		{"Consume", testConsume},
		{"Publish", testPublish},
		{"Close", testClose},
		{"WrongCredentials", testWrongCredentials},
		{"Unreachable", testUnreachable},
		{"BlockedAtDial", testBlockedAtDial},
		{"Timeout", testTimeout},
		{"LostAndBack", testLostAndBack},
		{"SettleAccept", func(t *testing.T, h *Harness) { testSettledForGood(t, h, client.Accept) }},
		{"SettleReject", func(t *testing.T, h *Harness) { testSettledForGood(t, h, client.Reject) }},
		{"SettleRedeliver", testSettleRedeliver},
		{"UnsettledBound", testUnsettledBound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := harness(t)
			NeedBroker(t, h.Broker)
			tc.fn(t, h)
		})
	}
}

// RunTunnelled runs the suite with every client connecting through an SSH
// tunnel to a real sshd (sshdtest: public-key login, host key checked by
// fingerprint), the harness's factory wrapped by sshtunnel.Wrap, and adds
// TunnelLost: the SSH connection drops, the client reports the loss with
// Ditto's text, and a new client connects through a new tunnel.
func RunTunnelled(t *testing.T, harness func(t *testing.T) *Harness) {
	srv := sshdtest.Start(t)
	var sshFront *Proxy // TunnelLost's way to sshd, which it cuts
	tunnelled := func(t *testing.T) *Harness {
		h := *harness(t)
		inner := h.Connection
		h.Connection = func(addr string, sources []model.Source, targets []model.Target) *model.Connection {
			c := inner(addr, sources, targets)
			c.SSHTunnel = srv.Tunnel("public-key")
			if sshFront != nil {
				c.SSHTunnel.URI = "ssh://" + sshFront.Address()
			}
			return c
		}
		h.Factory, h.tunnelled = sshtunnel.Wrap(h.Factory, sshtunnel.DefaultConfig()), true
		return &h
	}
	Run(t, tunnelled)
	t.Run("TunnelLost", func(t *testing.T) {
		sshFront = NewProxy(t, srv.Addr)
		t.Cleanup(func() { sshFront = nil })
		h := tunnelled(t)
		NeedBroker(t, h.Broker)
		testTunnelLost(t, h, sshFront)
	})
}

func testTunnelLost(t *testing.T, h *Harness, sshFront *Proxy) {
	c, rec, _, target := connected(t, h, h.Broker)
	sshFront.Cut()
	ev := rec.WaitEvent(t, client.ConnectionLost, 30*time.Second)
	if ev.Err == nil || ev.Err.Error() != "Session closed by remote." {
		t.Fatalf("ConnectionLost with %v, want Ditto's \"Session closed by remote.\"", ev.Err)
	}
	poll.Check(t, 10*time.Second, func() error {
		if e := Entries(c, "ssh"); len(e) != 1 || e[0].Status != client.StatusClosed || e[0].Details != sshtunnel.DetailsClosed {
			return fmt.Errorf("tunnel entries %+v", e)
		}
		return nil
	})
	if err := c.Close(Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Close after the loss: %v", err)
	}
	if n := rec.Count(client.ConnectionLost); n != 1 {
		t.Fatalf("%d ConnectionLost events, want 1", n)
	}
	sshFront.Back()
	c2, _ := NewClient(t, h.Factory, h.Connection(h.Broker, nil, []model.Target{{Address: target}}))
	if err := c2.Connect(Context(t, 15*time.Second)); err != nil {
		t.Fatalf("Connect through a new tunnel: %v", err)
	}
	received := h.Listen(t, target)
	if err := c2.Publish(Context(t, 10*time.Second), client.Message{Address: target, Payload: []byte("again")}); err != nil {
		t.Fatalf("Publish through the new tunnel: %v", err)
	}
	poll.Check(t, 10*time.Second, func() error {
		if slices.ContainsFunc(received(), func(b []byte) bool { return string(b) == "again" }) {
			return nil
		}
		return errors.New("the publish through the new tunnel did not arrive")
	})
}

// NeedBroker skips t, or fails it under DITTOCONN_REQUIRE_BROKERS=1, when
// nothing accepts TCP connections on addr.
func NeedBroker(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		_ = c.Close()
		return
	}
	Unavailable(t, fmt.Sprintf("the broker is not reachable on %s: %v", addr, err))
}

// Unavailable skips t for want of a broker, or fails it under
// DITTOCONN_REQUIRE_BROKERS=1.
func Unavailable(t *testing.T, msg string) {
	t.Helper()
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Recorder collects a client's events and inbound messages. It settles
// every message with Accept once recorded, as the data plane does after
// processing, unless Hold is set: then the test settles them.
type Recorder struct {
	// Hold keeps inbound messages unsettled; set it before connecting.
	Hold bool

	mu       sync.Mutex
	events   []client.Event
	messages []client.Message
}

// Event is an Env.Events.
func (r *Recorder) Event(e client.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

// Inbound is an Env.Inbound.
func (r *Recorder) Inbound(m client.Message) {
	r.mu.Lock()
	r.messages = append(r.messages, m)
	hold := r.Hold
	r.mu.Unlock()
	if !hold {
		m.Done(client.Accept)
	}
}

// Messages are the inbound messages so far, in arrival order.
func (r *Recorder) Messages() []client.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.messages)
}

// Count is how many events of kind arrived.
func (r *Recorder) Count(kind client.EventKind) int {
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

// WaitEvent polls until an event of kind arrived and returns the first.
func (r *Recorder) WaitEvent(t *testing.T, kind client.EventKind, total time.Duration) client.Event {
	t.Helper()
	var ev client.Event
	poll.Check(t, total, func() error {
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

// WaitMessage polls for an inbound message whose payload is payload.
func (r *Recorder) WaitMessage(t *testing.T, payload string, total time.Duration) client.Message {
	t.Helper()
	var got client.Message
	poll.Check(t, total, func() error {
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

// NewClient builds a client of conn with f, recording into a new Recorder
// and logging to t; it is closed with t.
func NewClient(t *testing.T, f client.Factory, conn *model.Connection) (client.Client, *Recorder) {
	t.Helper()
	rec := &Recorder{}
	return NewClientRecording(t, f, conn, rec), rec
}

// NewClientRecording is NewClient recording into rec.
func NewClientRecording(t *testing.T, f client.Factory, conn *model.Connection, rec *Recorder) client.Client {
	t.Helper()
	c, err := f(client.Env{
		Connection: conn,
		Instance:   "test-instance",
		Logger:     zerolog.New(zerolog.NewTestWriter(t)),
		Events:     rec.Event,
		Inbound:    rec.Inbound,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Close(ctx)
	})
	return c
}

// Context is a context that ends after d or with t.
func Context(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// connected builds and connects a client to addr with a source of two
// addresses and two consumers (when the protocol has sources) and a target;
// it returns the addresses used.
func connected(t *testing.T, h *Harness, addr string) (c client.Client, rec *Recorder, sources []string, target string) {
	t.Helper()
	src, target := h.Addresses(t)
	var srcs []model.Source
	if h.Send != nil {
		src2, _ := h.Addresses(t)
		sources = []string{src, src2}
		srcs = []model.Source{{Addresses: sources, ConsumerCount: 2}}
	}
	conn := h.Connection(addr, srcs, []model.Target{{Address: target}})
	c, rec = NewClient(t, h.Factory, conn)
	if err := c.Connect(Context(t, 15*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	return c, rec, sources, target
}

// Entries are the status entries of c of one type.
func Entries(c client.Client, typ string) []client.ResourceStatus {
	var out []client.ResourceStatus
	for _, s := range c.Status() {
		if s.Type == typ {
			out = append(out, s)
		}
	}
	return out
}

// AssertAll polls until every status entry of c has status; a tunnel's
// entry is the tunnel's own (a lost broker connection leaves it up).
func AssertAll(t *testing.T, c client.Client, status client.Status) {
	t.Helper()
	poll.Check(t, 10*time.Second, func() error {
		for _, s := range c.Status() {
			if s.Status != status && s.Type != "ssh" {
				return fmt.Errorf("%s %s is %s (%s)", s.Type, s.Address, s.Status, s.Details)
			}
		}
		return nil
	})
}

func testConnectStatus(t *testing.T, h *Harness) {
	before := time.Now()
	c, rec, sources, target := connected(t, h, h.Broker)
	if n := rec.Count(client.Connected); n != 1 {
		t.Fatalf("%d Connected events after Connect, want 1", n)
	}
	st := c.Status()
	if len(st) == 0 || st[0].Type != "client" {
		t.Fatalf("the first entry is not the client's: %+v", st)
	}
	if e := st[0]; e.Status != client.StatusOpen || e.Details != client.DetailsConnected ||
		e.RecoveryStatus != client.RecoverySucceeded || e.Since.Before(before.Add(-time.Second)) {
		t.Fatalf("client entry: %+v", e)
	}
	var want []string
	switch {
	case len(sources) == 0:
	case h.Shape == client.PerSource: // one entry per consumer
		want = []string{strings.Join(sources, ";"), strings.Join(sources, ";")}
	default: // one entry per consumer and address
		want = append(slices.Clone(sources), sources...)
	}
	got := Entries(c, "source")
	if len(got) != len(want) {
		t.Fatalf("source entries %+v, want addresses %q", got, want)
	}
	for i, e := range got {
		if e.Address != want[i] || e.Status != client.StatusOpen || e.Details != client.DetailsConsumerStarted || e.Since.IsZero() {
			t.Fatalf("source entry %d: %+v, want address %q", i, e, want[i])
		}
	}
	tg := Entries(c, "target")
	if len(tg) != 1 || tg[0].Address != target || tg[0].Status != client.StatusOpen ||
		tg[0].Details != client.DetailsProducerStarted || tg[0].Since.IsZero() {
		t.Fatalf("target entries: %+v", tg)
	}
	tunnels := 0
	if h.tunnelled {
		tunnels = 1
		if e := Entries(c, "ssh"); len(e) != 1 || e[0].Status != client.StatusOpen || e[0].Details != sshtunnel.DetailsEstablished {
			t.Fatalf("tunnel entries: %+v", e)
		}
	}
	if len(st) != 1+len(want)+1+tunnels {
		t.Fatalf("entries %+v: want the client, %d sources, 1 target and %d tunnels", st, len(want), tunnels)
	}
}

func testConsume(t *testing.T, h *Harness) {
	if h.Send == nil {
		t.Skip("the protocol has no sources")
	}
	_, rec, sources, _ := connected(t, h, h.Broker)
	for i, src := range sources {
		payload := fmt.Sprintf("consumed-%d-%d", i, time.Now().UnixNano())
		h.Send(t, src, []byte(payload))
		if m := rec.WaitMessage(t, payload, 10*time.Second); m.Address != src {
			t.Fatalf("message from %q carries address %q", src, m.Address)
		}
	}
}

func testPublish(t *testing.T, h *Harness) {
	c, _, _, target := connected(t, h, h.Broker)
	received := h.Listen(t, target)
	payload := fmt.Sprintf("published-%d", time.Now().UnixNano())
	if err := c.Publish(Context(t, 5*time.Second), client.Message{Address: target, Payload: []byte(payload),
		Headers: map[string]string{"content-type": "text/plain"}}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	poll.Check(t, 10*time.Second, func() error {
		got := received()
		if slices.ContainsFunc(got, func(b []byte) bool { return string(b) == payload }) {
			return nil
		}
		return fmt.Errorf("%q not among the %d payloads received on %q", payload, len(got), target)
	})
}

func testClose(t *testing.T, h *Harness) {
	c, rec, _, target := connected(t, h, h.Broker)
	ctx := Context(t, 10*time.Second)
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := rec.Count(client.Disconnected); n != 1 {
		t.Fatalf("%d Disconnected events, want 1", n)
	}
	if n := rec.Count(client.ConnectionLost); n != 0 {
		t.Fatalf("Close reported %d lost connections", n)
	}
	st := c.Status()
	if len(st) == 0 {
		t.Fatal("no status entries after Close")
	}
	for _, s := range st {
		want := map[string]string{"client": client.DetailsDisconnected, "source": client.DetailsConsumerStopped,
			"target": client.DetailsProducerStopped, "ssh": sshtunnel.DetailsClosed}[s.Type]
		if s.Status != client.StatusClosed || s.Details != want {
			t.Fatalf("after Close: %+v", s)
		}
	}
	if err := c.Publish(ctx, client.Message{Address: target, Payload: []byte("x")}); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
	if err := c.Connect(ctx); err == nil {
		t.Fatal("Connect after Close succeeded")
	}
}

func testWrongCredentials(t *testing.T, h *Harness) {
	if h.BadLogin == nil {
		t.Skip("the broker takes any login")
	}
	const secret = "not-the-password-4711"
	_, target := h.Addresses(t)
	conn := h.Connection(h.Broker, nil, []model.Target{{Address: target}})
	h.BadLogin(conn, secret)
	c, rec := NewClient(t, h.Factory, conn)
	err := c.Connect(Context(t, 15*time.Second))
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("want ErrUnauthorized, got %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Fatalf("the error shows the password: %v", err)
	}
	if st := c.Status(); st[0].Status != client.StatusFailed || st[0].Details != err.Error() {
		t.Fatalf("client entry %+v, want failed with the error", st[0])
	}
	if rec.Count(client.Connected) != 0 {
		t.Fatal("Connected after a refused login")
	}
}

func testUnreachable(t *testing.T, h *Harness) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, target := h.Addresses(t)
	c, rec := NewClient(t, h.Factory, h.Connection(addr, nil, []model.Target{{Address: target}}))
	start := time.Now()
	err = c.Connect(Context(t, 5*time.Second))
	if !errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("want ErrUnreachable, got %v", err)
	}
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("a closed port took %v to fail", d)
	}
	if st := c.Status(); st[0].Status != client.StatusFailed {
		t.Fatalf("client entry: %+v", st[0])
	}
	if rec.Count(client.Connected) != 0 {
		t.Fatal("Connected after a failed connect")
	}
}

// testBlockedAtDial: with loopback blocked by the service's host rules
// (Env.Hosts), connecting to the broker on loopback is refused when the
// address is dialled, with Ditto's reason, and never counts as connected;
// through an SSH tunnel the SSH server's address (loopback too) is refused.
func testBlockedAtDial(t *testing.T, h *Harness) {
	hosts := model.DefaultValidationConfig()
	hosts.BlockedHostnames = []string{"localhost"}
	hosts.LookupIP = func(string) ([]net.IP, error) { return []net.IP{net.ParseIP("127.0.0.1")}, nil }
	_, target := h.Addresses(t)
	rec := &Recorder{}
	c, err := h.Factory(client.Env{Connection: h.Connection(h.Broker, nil, []model.Target{{Address: target}}),
		Instance: "test-instance", Logger: zerolog.New(zerolog.NewTestWriter(t)), Events: rec.Event,
		Inbound: rec.Inbound, Hosts: hosts})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(Context(t, 10*time.Second)) })
	err = c.Connect(Context(t, 5*time.Second))
	if err == nil || !strings.Contains(err.Error(), "the hostname resolved to a loopback address (127.0.0.1)") {
		t.Fatalf("connect with loopback blocked: %v, want the blocked-host reason", err)
	}
	if rec.Count(client.Connected) != 0 {
		t.Fatal("Connected with the broker's address blocked")
	}
}

// testTimeout: a peer that accepts TCP but never answers runs into the
// deadline.
func testTimeout(t *testing.T, h *Harness) {
	if h.ConnectedOnTCP {
		t.Skip("accepting TCP is connecting for this protocol")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		_ = l.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	_, target := h.Addresses(t)
	c, _ := NewClient(t, h.Factory, h.Connection(l.Addr().String(), nil, []model.Target{{Address: target}}))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if err := c.Connect(ctx); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("want ErrTimeout, got %v", err)
	}
}

// testLostAndBack: the network to the broker fails; the client reports the
// loss and fails its entries; a fresh client connects once the network is
// back (the grain builds one per attempt).
func testLostAndBack(t *testing.T, h *Harness) {
	var front Front
	if h.Front != nil {
		front = h.Front(t)
	} else {
		front = NewProxy(t, h.Broker)
	}
	c, rec, sources, target := connected(t, h, front.Address())
	front.Cut()
	ev := rec.WaitEvent(t, client.ConnectionLost, 30*time.Second)
	if ev.Err == nil {
		t.Fatal("ConnectionLost without a cause")
	}
	AssertAll(t, c, client.StatusFailed)
	if d := c.Status()[0].Details; !strings.Contains(d, ev.Err.Error()) {
		t.Fatalf("client details %q do not say why (%v)", d, ev.Err)
	}
	ctx := Context(t, 10*time.Second)
	if err := c.Publish(ctx, client.Message{Address: target, Payload: []byte("x")}); err == nil {
		t.Fatal("Publish on a lost connection succeeded")
	}
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close after the loss: %v", err)
	}
	if n := rec.Count(client.ConnectionLost); n != 1 {
		t.Fatalf("%d ConnectionLost events, want 1", n)
	}

	front.Back()
	conn := h.Connection(front.Address(), nil, []model.Target{{Address: target}})
	if len(sources) > 0 {
		conn.Sources = []model.Source{{Addresses: sources, ConsumerCount: 1}}
	}
	c2, rec2 := NewClient(t, h.Factory, conn)
	poll.Check(t, 20*time.Second, func() error {
		err := c2.Connect(Context(t, 10*time.Second))
		if err != nil {
			// the grain would build another client after a backoff
			c2, rec2 = NewClient(t, h.Factory, conn)
		}
		return err
	})
	if len(sources) > 0 {
		payload := fmt.Sprintf("after-%d", time.Now().UnixNano())
		h.Send(t, sources[0], []byte(payload))
		rec2.WaitMessage(t, payload, 10*time.Second)
	}
	received := h.Listen(t, target)
	if err := c2.Publish(ctx, client.Message{Address: target, Payload: []byte("back")}); err != nil {
		t.Fatalf("Publish after the network came back: %v", err)
	}
	poll.Check(t, 10*time.Second, func() error {
		if slices.ContainsFunc(received(), func(b []byte) bool { return string(b) == "back" }) {
			return nil
		}
		return errors.New("the publish after the outage did not arrive")
	})
}

// WithPassword is uri with its user-info's password replaced.
func WithPassword(uri, password string) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	user := "user"
	if u.User != nil {
		user = u.User.Username()
	}
	u.User = url.UserPassword(user, password)
	return u.String()
}
