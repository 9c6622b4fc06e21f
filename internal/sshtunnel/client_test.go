package sshtunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel/sshdtest"
	"github.com/dittoconn/dittoconn/test/poll"
)

// dialer is a protocol client that only dials its URI's host and port.
type dialer struct {
	env     client.Env
	tcpOnly bool // connected once TCP is (HTTP push's notion)
	mu      sync.Mutex
	conn    net.Conn
	open    bool
}

func (d *dialer) Connect(ctx context.Context) error {
	u, err := url.Parse(d.env.Connection.URI)
	if err != nil {
		return err
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return errors.Join(client.ErrUnreachable, err)
	}
	if d.tcpOnly {
		d.mu.Lock()
		d.conn, d.open = c, true
		d.mu.Unlock()
		return nil
	}
	// the echo peer proves the forward carries data
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		return err
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		_ = c.Close()
		return errors.Join(client.ErrUnreachable, err)
	}
	_ = c.SetDeadline(time.Time{})
	d.mu.Lock()
	d.conn, d.open = c, true
	d.mu.Unlock()
	return nil
}

func (d *dialer) Publish(context.Context, client.Message) error { return nil }

func (d *dialer) Status() []client.ResourceStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	st := client.StatusFailed
	if d.open {
		st = client.StatusOpen
	}
	return []client.ResourceStatus{{Type: "client", Status: st}}
}

func (d *dialer) Close(context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.open = false
	if d.conn != nil {
		return d.conn.Close()
	}
	return nil
}

// relay forwards to target until cut (every connection dropped); frozen,
// it holds what it reads, as a dead network path would.
type relay struct {
	l      net.Listener
	mu     sync.Mutex
	conns  []net.Conn
	frozen chan struct{} // closed by freeze
}

func newRelay(t *testing.T, target string) *relay {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &relay{l: l, frozen: make(chan struct{})}
	t.Cleanup(r.cut)
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			r.mu.Lock()
			r.conns = append(r.conns, in, out)
			r.mu.Unlock()
			go r.copy(out, in)
			go r.copy(in, out)
		}
	}()
	return r
}

func (r *relay) copy(dst, src net.Conn) {
	defer func() { _ = dst.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		select {
		case <-r.frozen:
			n = 0 // the bytes go nowhere; the connection stays open until cut
		default:
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (r *relay) freeze() { close(r.frozen) }

func (r *relay) cut() {
	_ = r.l.Close()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.conns {
		_ = c.Close()
	}
}

func TestWrapLeavesUntunnelledConnectionsAlone(t *testing.T) {
	var got client.Env
	inner := &dialer{}
	f := Wrap(func(env client.Env) (client.Client, error) { got = env; return inner, nil }, DefaultConfig())
	conn := &model.Connection{ID: "c", URI: "tcp://broker:1883",
		SSHTunnel: &model.SSHTunnel{Enabled: false, URI: "ssh://s:22"}}
	cl, err := f(client.Env{Connection: conn})
	if err != nil || cl != inner || got.Connection != conn {
		t.Fatalf("a disabled tunnel changed the client: %v %T", err, cl)
	}
}

func TestIntegrationWrapTunnelsAndReportsLoss(t *testing.T) {
	s := sshdtest.Start(t)
	echo := echoServer(t)
	front := newRelay(t, s.Addr)
	tun := s.Tunnel("public-key")
	tun.URI = "ssh://" + front.l.Addr().String()
	_, port, _ := net.SplitHostPort(echo)
	conn := &model.Connection{ID: "c", ConnectionType: model.TypeMQTT, URI: "tcp://user:pw@localhost:" + port + "/p?q=1",
		SSHTunnel: tun}

	var innerEnv client.Env
	var events []client.Event
	var mu sync.Mutex
	f := Wrap(func(env client.Env) (client.Client, error) {
		innerEnv = env
		return &dialer{env: env}, nil
	}, Config{DialTimeout: 5 * time.Second})
	tlsCfg := &tls.Config{ServerName: "localhost", MinVersion: tls.VersionTLS12}
	cl, err := f(client.Env{Connection: conn, Logger: testLogger(t), TLS: tlsCfg, Events: func(e client.Event) {
		mu.Lock()
		defer mu.Unlock()
		events = append(events, e)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close(context.Background()) })
	u, _ := url.Parse(innerEnv.Connection.URI)
	if u.Hostname() != "127.0.0.1" || u.Port() == port || u.User.String() != "user:pw" || u.Path != "/p" || u.RawQuery != "q=1" {
		t.Fatalf("the protocol client got URI %q", innerEnv.Connection.URI)
	}
	if innerEnv.TLS != tlsCfg || innerEnv.TLS.ServerName != "localhost" {
		t.Fatal("TLS no longer verifies the broker's own host name") // built from the original URI
	}
	if innerEnv.Connection.SSHTunnel != nil || conn.URI != "tcp://user:pw@localhost:"+port+"/p?q=1" {
		t.Fatal("the connection was changed, or the protocol client sees the tunnel")
	}
	sshEntry := func() client.ResourceStatus {
		st := cl.Status()
		return st[len(st)-1]
	}
	if e := sshEntry(); e.Type != "ssh" || e.Status != client.StatusClosed || e.Details != DetailsClosed {
		t.Fatalf("ssh entry before Connect: %+v", e)
	}
	if err := cl.Connect(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	if e := sshEntry(); e.Status != client.StatusOpen || e.Details != DetailsEstablished || e.Since.IsZero() {
		t.Fatalf("ssh entry when connected: %+v", e)
	}
	front.cut()
	poll.Check(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			if e.Kind == client.ConnectionLost {
				if e.Err == nil || e.Err.Error() != "Session closed by remote." {
					t.Fatalf("ConnectionLost with %v", e.Err)
				}
				return nil
			}
		}
		return errors.New("no ConnectionLost after the SSH connection dropped")
	})
	if e := sshEntry(); e.Status != client.StatusClosed || e.Details != DetailsClosed {
		t.Fatalf("ssh entry after the loss: %+v", e)
	}
	if err := cl.Close(ctxFor(t, 5*time.Second)); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A server that stops answering is noticed by the keep-alive requests; one
// that answers keeps the tunnel up.
func TestIntegrationHeartbeat(t *testing.T) {
	s := sshdtest.Start(t)
	echo := echoServer(t)
	front := newRelay(t, s.Addr)
	tun := s.Tunnel("public-key")
	tun.URI = "ssh://" + front.l.Addr().String()
	f, err := listen(echo, Config{HeartbeatInterval: 500 * time.Millisecond, DialTimeout: 5 * time.Second}, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	if err := f.start(ctxFor(t, 10*time.Second), tun); err != nil {
		t.Fatal(err)
	}
	// several answered keep-alives later the tunnel is still up and carries data
	for i := 0; i < 3; i++ {
		echoThrough(t, f.port(), "alive")
		time.Sleep(600 * time.Millisecond)
	}
	if e := f.failure(); e != nil {
		t.Fatalf("answered keep-alives failed the tunnel: %v", e)
	}
	front.freeze()
	select {
	case <-f.down():
	case <-time.After(10 * time.Second):
		t.Fatal("an unanswered keep-alive did not close the tunnel")
	}
	wantError(t, f.failure(), "SSH Tunnel failed - cause <SshException>: No answer to the keep-alive request within <500ms>.",
		client.StatusFailed, client.ErrUnreachable)
}

// The local end accepts at once, so a client that counts TCP as connected
// would connect to anything: Connect checks that the broker answers first.
func TestIntegrationWrapBrokerUnreachable(t *testing.T) {
	s := sshdtest.Start(t)
	conn := &model.Connection{ID: "c", URI: "http://" + closedPort(t), SSHTunnel: s.Tunnel("public-key")}
	cl, err := Wrap(func(env client.Env) (client.Client, error) { return &dialer{env: env, tcpOnly: true}, nil }, DefaultConfig())(
		client.Env{Connection: conn, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Close(context.Background()) })
	err = cl.(client.Tester).Test(ctxFor(t, 10*time.Second))
	wantError(t, err, "Opening SSH channel failed with exception - cause <SshChannelOpenException>: Connection refused.",
		client.StatusMisconfigured, client.ErrUnreachable)
}

func TestIntegrationWrapConnectFailure(t *testing.T) {
	s := sshdtest.Start(t)
	tun := s.Tunnel("plain")
	tun.URI = "ssh://" + closedPort(t)
	conn := &model.Connection{ID: "c", URI: "tcp://" + echoServer(t), SSHTunnel: tun}
	cl, err := Wrap(func(env client.Env) (client.Client, error) { return &dialer{env: env}, nil }, DefaultConfig())(
		client.Env{Connection: conn, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	err = cl.Connect(ctxFor(t, 10*time.Second))
	wantError(t, err, "Failed to connect to ssh server - cause <ConnectException>: Connection refused.", client.StatusMisconfigured, client.ErrUnreachable)
	st := cl.Status()
	if st[0].Status != client.StatusFailed || st[0].Details != err.Error() {
		t.Fatalf("client entry %+v", st[0])
	}
	want := client.ResourceStatus{Type: "ssh", Status: client.StatusMisconfigured,
		Details: "SSH tunnel failed - cause <ConnectException>: Connection refused."}
	if e := st[len(st)-1]; e.Type != want.Type || e.Status != want.Status || e.Details != want.Details {
		t.Fatalf("ssh entry %+v, want %+v", e, want)
	}
	if e := Entry(err, time.Now()); e.Status != want.Status || e.Details != want.Details {
		t.Fatalf("Entry %+v", e)
	}
	if e := Entry(errors.New("broker said no"), time.Now()); e.Status != client.StatusClosed || e.Details != DetailsClosed {
		t.Fatalf("Entry of a protocol error %+v", e)
	}
	if err := cl.(client.Tester).Test(ctxFor(t, 10*time.Second)); err == nil {
		t.Fatal("Test succeeded without a tunnel")
	}
}
