package sshtunnel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Status details of the tunnel's entry, Ditto's words.
const (
	DetailsEstablished = "ssh tunnel established."
	DetailsClosed      = "ssh tunnel closed."
)

// Enabled reports whether c connects through an SSH tunnel.
func Enabled(c *model.Connection) bool { return c != nil && c.SSHTunnel != nil && c.SSHTunnel.Enabled }

// Specs is s with every live client tunnelled (Wrap).
func Specs(s client.Specs, cfg Config) client.Specs {
	out := make(client.Specs, len(s))
	for typ, spec := range s {
		if spec.New != nil {
			spec.New = Wrap(spec.New, cfg)
		}
		out[typ] = spec
	}
	return out
}

// Wrap makes the clients of f connect through the connection's SSH tunnel
// when it is enabled; other connections get f's clients unchanged.
//
// A tunnelled client binds the local end of the forward when it is built
// (loopback only, no remote I/O) so that f builds the protocol's client
// with the connection URI's host and port replaced by it; Connect opens the
// SSH session first and then connects the protocol's client through it;
// Close closes both. The protocol's client sees a connection without
// sshTunnel, so wrapping twice tunnels once.
func Wrap(f client.Factory, cfg Config) client.Factory {
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	return func(env client.Env) (client.Client, error) {
		if !Enabled(env.Connection) {
			return f(env)
		}
		return build(f, env, cfg)
	}
}

// Client is a protocol client behind an SSH tunnel. Status adds the
// tunnel's own entry (type "ssh") after the protocol client's entries.
type Client struct {
	tunnel *model.SSHTunnel
	fwd    *forward
	inner  client.Client
	events func(client.Event)
	now    func() time.Time

	mu      sync.Mutex
	closed  bool  // Close was called
	lost    bool  // a ConnectionLost went out: the grain replaces this client
	connErr error // Connect's error when the tunnel caused it
	since   time.Time
	stop    chan struct{}
}

// asyncClient is a Client whose protocol client publishes asynchronously.
type asyncClient struct {
	*Client
	ap client.AsyncPublisher
}

var (
	_ client.Tester         = (*Client)(nil)
	_ client.AsyncPublisher = asyncClient{}
)

func build(f client.Factory, env client.Env, cfg Config) (client.Client, error) {
	conn := env.Connection
	tgt, err := target(conn.URI)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, err)
	}
	log := env.Logger.With().Str("component", "ssh-tunnel").Logger()
	fwd, err := listen(tgt, cfg, log)
	if err != nil {
		return nil, err
	}
	if u, err := url.Parse(conn.SSHTunnel.URI); err == nil {
		fwd.control = env.DialControl(u.Hostname())
	}
	uri, err := rewrite(conn.URI, fwd.port())
	if err != nil {
		fwd.close()
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, err)
	}
	through := conn.Clone()
	through.URI, through.SSHTunnel = uri, nil
	c := &Client{tunnel: conn.SSHTunnel, fwd: fwd, events: env.Events, now: time.Now, stop: make(chan struct{})}
	if c.events == nil {
		c.events = func(client.Event) {}
	}
	c.since = c.now()
	inner := env
	inner.Connection = through
	inner.Events = c.relay
	inner.Logger = env.Logger.With().Str("via", "ssh-tunnel").Logger()
	// the protocol client dials the loopback forward: the hosts it stands
	// for (the SSH server, the broker's name) were checked by the caller
	// (client.Specs.Guarded) and the SSH dial is checked above
	inner.Hosts = nil
	cl, err := f(inner)
	if err != nil {
		fwd.close()
		return nil, err
	}
	c.inner = cl
	if ap, ok := cl.(client.AsyncPublisher); ok {
		return asyncClient{Client: c, ap: ap}, nil
	}
	return c, nil
}

// Connect opens the tunnel, then connects the protocol client through it.
func (c *Client) Connect(ctx context.Context) error {
	if err := c.open(ctx); err != nil {
		return err
	}
	if err := c.inner.Connect(ctx); err != nil {
		return c.failed(err)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errors.New("sshtunnel: client closed")
	}
	c.mu.Unlock()
	go c.watch()
	return nil
}

// open starts the SSH session of the tunnel.
func (c *Client) open(ctx context.Context) error {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errors.New("sshtunnel: client closed")
	}
	if err := c.fwd.start(ctx, c.tunnel); err != nil {
		return c.failed(err)
	}
	if err := c.fwd.reach(ctx); err != nil {
		return c.failed(err)
	}
	c.mu.Lock()
	c.since = c.now()
	c.mu.Unlock()
	return nil
}

// failed ends a Connect that failed with err: when the tunnel failed on
// the way (a refused channel ends the protocol's connect too) its error is
// the one to report, as Ditto reports the tunnel's. The tunnel closes.
func (c *Client) failed(err error) error {
	var te *Error
	if !errors.As(err, &te) {
		if f := c.fwd.failure(); f != nil {
			err = f
		}
	}
	c.fwd.close()
	c.mu.Lock()
	if errors.As(err, &te) {
		c.connErr = err
	}
	c.since = c.now()
	c.mu.Unlock()
	return err
}

// watch reports ConnectionLost when the tunnel fails while connected; the
// grain then closes this client and reconnects through a new tunnel.
func (c *Client) watch() {
	select {
	case <-c.stop:
		return
	case <-c.fwd.down():
	}
	f := c.fwd.failure()
	if f == nil {
		return // closed
	}
	c.mu.Lock()
	c.since = c.now()
	c.mu.Unlock()
	c.relay(client.Event{Kind: client.ConnectionLost, Err: f, At: c.now()})
}

// lossGrace is how long a protocol client's loss waits for the tunnel to
// report its own: a cut SSH connection ends the forwarded stream too, and
// the protocol client often sees that EOF before the SSH client has read the
// session's end. Ditto reports the tunnel's cause.
const lossGrace = time.Second

// relay passes the protocol client's events and the tunnel's on, with one
// ConnectionLost at most: a lost tunnel also ends the protocol's
// connection, and a protocol reconnecting by itself after its own loss may
// fail the tunnel with a refused channel. The protocol client's loss goes
// out from another goroutine after at most lossGrace, with the tunnel's
// failure as its cause when the tunnel failed meanwhile.
func (c *Client) relay(ev client.Event) {
	if ev.Kind != client.ConnectionLost {
		c.events(ev)
		return
	}
	c.mu.Lock()
	already := c.lost
	c.lost = true
	c.mu.Unlock()
	if already {
		return
	}
	if f := c.fwd.failure(); f != nil {
		ev.Err = f
		c.events(ev)
		return
	}
	go func() {
		t := time.NewTimer(lossGrace)
		defer t.Stop()
		select {
		case <-c.fwd.down():
		case <-c.stop:
		case <-t.C:
		}
		if f := c.fwd.failure(); f != nil {
			ev.Err = f
		}
		c.events(ev)
	}()
}

// Test opens the tunnel and tests the protocol client through it; nothing
// stays open.
func (c *Client) Test(ctx context.Context) error {
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(cctx)
	}()
	if err := c.open(ctx); err != nil {
		return err
	}
	var err error
	if t, ok := c.inner.(client.Tester); ok {
		err = t.Test(ctx)
	} else {
		err = c.inner.Connect(ctx)
	}
	if err != nil {
		return c.failed(err)
	}
	return nil
}

// Publish publishes through the protocol client.
func (c *Client) Publish(ctx context.Context, msg client.Message) error {
	return c.inner.Publish(ctx, msg)
}

// PublishAsync publishes through the protocol client.
func (a asyncClient) PublishAsync(msg client.Message) client.Pending { return a.ap.PublishAsync(msg) }

// Status is the protocol client's entries and the tunnel's. After a
// tunnel failure the client entry says why, as the client's own failures do.
func (c *Client) Status() []client.ResourceStatus {
	st := c.inner.Status()
	c.mu.Lock()
	connErr, since, closed := c.connErr, c.since, c.closed
	c.mu.Unlock()
	if connErr != nil && len(st) > 0 && st[0].Type == "client" && st[0].Status != client.StatusOpen && !closed {
		st[0].Status, st[0].Details, st[0].RecoveryStatus = client.StatusFailed, connErr.Error(), client.RecoveryUnknown
	}
	return append(st, c.entry(since))
}

// entry is the tunnel's status entry.
func (c *Client) entry(since time.Time) client.ResourceStatus {
	e := client.ResourceStatus{Type: "ssh", Status: client.StatusClosed, Details: DetailsClosed, Since: since}
	if f := c.fwd.failure(); f != nil {
		e.Status, e.Details = f.Status(), f.StatusDetails()
		return e
	}
	c.mu.Lock()
	connErr := c.connErr
	c.mu.Unlock()
	var te *Error
	switch {
	case errors.As(connErr, &te):
		e.Status, e.Details = te.Status(), te.StatusDetails()
	case c.up():
		e.Status, e.Details = client.StatusOpen, DetailsEstablished
	}
	return e
}

// up reports whether the SSH session is established and not torn down.
func (c *Client) up() bool {
	c.fwd.mu.Lock()
	defer c.fwd.mu.Unlock()
	return c.fwd.started && !c.fwd.closed && c.fwd.err == nil
}

// Close closes the protocol client, then the tunnel.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	close(c.stop)
	c.mu.Unlock()
	err := c.inner.Close(ctx)
	done := make(chan struct{})
	go func() { c.fwd.close(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	c.mu.Lock()
	c.since = c.now()
	c.mu.Unlock()
	return err
}

// Entry is the tunnel entry of a client that is not running (it failed to
// connect, or is waiting to retry): what err says of the tunnel, else
// closed. since is when the client entered its state.
func Entry(err error, since time.Time) client.ResourceStatus {
	e := client.ResourceStatus{Type: "ssh", Status: client.StatusClosed, Details: DetailsClosed, Since: since}
	var te *Error
	if errors.As(err, &te) {
		e.Status, e.Details = te.Status(), te.StatusDetails()
	}
	return e
}
