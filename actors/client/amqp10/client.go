// Package amqp10 is the broker client of connection type "amqp-10", built
// on github.com/Azure/go-amqp.
//
// One client holds one AMQP 1.0 connection with one session: a receiver link
// per source address × consumerCount (messages are accepted after
// env.Inbound returns) and sender links per target address, attached at
// connect for fixed addresses and on first use for resolved ones. A lost
// connection or link is reported as ConnectionLost; the grain reconnects.
package amqp10

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	amqp "github.com/Azure/go-amqp"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

const (
	// defaultOpTimeout bounds Close when ctx has no deadline.
	defaultOpTimeout = 10 * time.Second
	// maxSenders caps the cached sender links of resolved target addresses.
	maxSenders = 64
)

var (
	errClosed       = errors.New("amqp10: client is closed")
	errNotConnected = errors.New("amqp10: client is not connected")
)

var _ client.Factory = New

type consumerSpec struct {
	Address string
	qos     *int
}

type amqpClient struct {
	env       client.Env
	log       zerolog.Logger
	cfg       config
	name      string
	consumers []consumerSpec

	connectMu sync.Mutex

	mu            sync.Mutex
	closed        bool
	sess          *session
	connectCancel context.CancelFunc
	self          resource
	sources       []*resource
	targets       []*resource
}

// New builds an AMQP 1.0 client for env.Connection; it does not connect.
func New(env client.Env) (client.Client, error) {
	conn := env.Connection
	if conn == nil {
		return nil, errors.New("amqp10: no connection")
	}
	if conn.Credentials != nil && conn.Credentials.Type == "hmac" {
		return nil, fmt.Errorf("%w: hmac credentials are not supported for amqp-10 yet", client.ErrConfig)
	}
	cfg, err := parseConfig(conn)
	if err != nil {
		return nil, err
	}
	c := &amqpClient{
		env:  env,
		cfg:  cfg,
		name: fmt.Sprintf("dittoconn:%s:%d", conn.ID, env.ClientIndex),
		log: env.Logger.With().Str("connection_id", conn.ID).Int("client_index", env.ClientIndex).
			Str("connection_type", model.TypeAMQP10).Logger(),
	}
	now := time.Now()
	c.self = resource{Type: "client"}
	c.self.Set(client.StatusClosed, detailDisconnected, now)
	// Same order as client.SourceEntries: consumer copies, then addresses.
	for _, src := range conn.Sources {
		for range max(src.ConsumerCount, 1) {
			for _, a := range src.Addresses {
				c.consumers = append(c.consumers, consumerSpec{Address: a, qos: src.QoS})
				r := &resource{Type: "source", Address: a}
				r.Set(client.StatusClosed, detailConsumerStopped, now)
				c.sources = append(c.sources, r)
			}
		}
	}
	for _, t := range conn.Targets {
		r := &resource{Type: "target", Address: t.Address}
		r.Set(client.StatusClosed, detailProducerStopped, now)
		c.targets = append(c.targets, r)
	}
	return c, nil
}

func (c *amqpClient) emit(kind client.EventKind, err error) {
	if c.env.Events != nil {
		c.env.Events(client.Event{Kind: kind, Err: err, At: time.Now()})
	}
}

func (c *amqpClient) setAllLocked(status, clientDetail, sourceDetail, targetDetail string) {
	now := time.Now()
	c.self.Set(status, clientDetail, now)
	for _, r := range c.sources {
		r.Set(status, sourceDetail, now)
	}
	for _, r := range c.targets {
		r.Set(status, targetDetail, now)
	}
}

// isFixed reports whether a target address has no placeholders, so its
// sender can be attached at connect.
func isFixed(address string) bool { return !strings.Contains(address, "{{") }

// Connect opens connection and session, attaches the receivers and the
// senders of fixed target addresses.
func (c *amqpClient) Connect(ctx context.Context) error {
	c.connectMu.Lock()
	defer c.connectMu.Unlock()

	ctx, cancel := withDefaultTimeout(ctx, c.cfg.connectTimeout)
	defer cancel()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	if c.sess != nil && c.self.Status == client.StatusOpen {
		c.mu.Unlock()
		return nil
	}
	old := c.sess
	c.sess = nil
	c.connectCancel = cancel
	c.mu.Unlock()
	if old != nil {
		_ = old.close(ctx)
	}

	s, targetErrs, err := c.open(ctx)

	c.mu.Lock()
	c.connectCancel = nil
	if err == nil && c.closed {
		err = errClosed
	}
	if err != nil {
		if !c.closed {
			c.setAllLocked(client.StatusFailed, err.Error(), err.Error(), err.Error())
		}
		c.mu.Unlock()
		if s != nil {
			cctx, ccancel := context.WithTimeout(context.Background(), time.Second)
			_ = s.close(cctx)
			ccancel()
		}
		c.log.Warn().Err(err).Msg("amqp10 connect failed")
		return err
	}
	c.sess = s
	c.setAllLocked(client.StatusOpen, detailConnected, detailConsumerStarted, detailProducerStarted)
	now := time.Now()
	for i, terr := range targetErrs {
		if terr != nil {
			// A target the broker refuses does not fail the connection;
			// Publish retries the attach.
			c.targets[i].Set(client.StatusFailed, terr.Error(), now)
		}
	}
	c.mu.Unlock()

	s.start(c)
	c.log.Info().Str("endpoint", c.cfg.addr()).Msg("amqp10 connected")
	c.emit(client.Connected, nil)
	return nil
}

func (c *amqpClient) open(ctx context.Context) (*session, []error, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.cfg.addr())
	if err != nil {
		return nil, nil, c.connectError(ctx, err, true)
	}
	var transport net.Conn = raw
	if c.cfg.secure {
		tc := tls.Client(raw, c.cfg.tlsConfig(c.env.TLS))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			if ctx.Err() != nil {
				return nil, nil, c.connectError(ctx, err, false)
			}
			return nil, nil, fmt.Errorf("amqp10: TLS handshake with %s: %w", c.cfg.addr(), err)
		}
		transport = tc
	}
	opts := &amqp.ConnOptions{
		ContainerID: c.cfg.clientID,
		HostName:    c.cfg.host,
		Properties:  map[string]any{"connection_name": c.name, "product": "dittoconn"},
	}
	if opts.ContainerID == "" {
		opts.ContainerID = c.name
	}
	if c.cfg.anonymous {
		opts.SASLType = amqp.SASLTypeAnonymous()
	} else {
		opts.SASLType = amqp.SASLTypePlain(c.cfg.user, c.cfg.pass)
	}
	// NewConn owns transport from here and closes it on failure.
	conn, err := amqp.NewConn(ctx, transport, opts)
	if err != nil {
		return nil, nil, c.connectError(ctx, err, false)
	}
	s := newSession(conn, transport)
	var missing []string
	for _, cs := range c.consumers {
		r, err := s.newReceiver(ctx, cs.Address, c.cfg.prefetch)
		if err != nil {
			if isCondition(err, amqp.ErrCondNotFound) {
				missing = append(missing, fmt.Sprintf("%q", cs.Address))
				continue
			}
			return s, nil, c.linkError(ctx, fmt.Sprintf("consuming from %q", cs.Address), err)
		}
		s.receivers = append(s.receivers, &receiver{spec: cs, r: r})
	}
	if len(missing) > 0 {
		return s, nil, fmt.Errorf("amqp10: the source addresses [%s] do not exist", strings.Join(missing, ", "))
	}
	targetErrs := make([]error, len(c.targets))
	for i, t := range c.targets {
		if !isFixed(t.Address) {
			continue
		}
		if _, err := s.sender(ctx, t.Address); err != nil {
			if ctx.Err() != nil {
				return s, nil, c.connectError(ctx, err, false)
			}
			targetErrs[i] = fmt.Errorf("amqp10: attaching a sender to %q: %w", t.Address, err)
		}
	}
	return s, targetErrs, nil
}

func isCondition(err error, cond amqp.ErrCond) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Condition == cond
}

// linkError wraps a session or link failure during connect.
func (c *amqpClient) linkError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return c.connectError(ctx, err, false)
	}
	if isCondition(err, amqp.ErrCondUnauthorizedAccess) {
		return fmt.Errorf("%w: %s: %w", client.ErrUnauthorized, what, err)
	}
	return fmt.Errorf("amqp10: %s: %w", what, err)
}

// connectError maps a connect failure to the contract's sentinels.
func (c *amqpClient) connectError(ctx context.Context, err error, dialing bool) error {
	addr := c.cfg.addr()
	dl, hasDeadline := ctx.Deadline()
	if ctxErr := ctx.Err(); ctxErr != nil || hasDeadline && !time.Now().Before(dl) {
		if ctxErr == nil || errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: connecting to %s did not finish in time", client.ErrTimeout, addr)
		}
		return fmt.Errorf("amqp10: connecting to %s: %w", addr, ctxErr)
	}
	// go-amqp reports a refused login only as text.
	if msg := err.Error(); strings.Contains(msg, "SASL") && strings.Contains(msg, "auth failed") ||
		isCondition(err, amqp.ErrCondUnauthorizedAccess) {
		return fmt.Errorf("%w: %s rejected the login: %w", client.ErrUnauthorized, addr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: connecting to %s: %w", client.ErrTimeout, addr, err)
	}
	var opErr *net.OpError
	if dialing || errors.As(err, &opErr) || errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("%w: %s: %w", client.ErrUnreachable, addr, err)
	}
	return fmt.Errorf("amqp10: connecting to %s: %w", addr, err)
}

// lost handles the end of a session the client did not ask for.
func (c *amqpClient) lost(s *session, cause error) {
	s.lostOnce.Do(func() {
		c.mu.Lock()
		if c.sess != s || c.closed {
			c.mu.Unlock()
			return
		}
		detail := "connection lost: " + cause.Error()
		c.setAllLocked(client.StatusFailed, detail, detail, detail)
		c.mu.Unlock()
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_ = s.close(ctx)
		}()
		c.log.Warn().Err(cause).Msg("amqp10 connection lost")
		c.emit(client.ConnectionLost, cause)
	})
}

// Publish sends msg to the link target msg.Address and waits for the
// broker's disposition.
func (c *amqpClient) Publish(ctx context.Context, msg client.Message) error {
	c.mu.Lock()
	s := c.sess
	open := s != nil && c.self.Status == client.StatusOpen
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errClosed
	}
	if !open {
		return errNotConnected
	}
	ctx, cancel := withDefaultTimeout(ctx, c.cfg.sendTimeout)
	defer cancel()
	snd, err := s.sender(ctx, msg.Address)
	if err != nil {
		c.setTarget(msg.Address, client.StatusFailed, err.Error())
		return fmt.Errorf("amqp10: attaching a sender to %q: %w", msg.Address, err)
	}
	if err := snd.Send(ctx, newMessage(msg.Headers, msg.Payload), nil); err != nil {
		var le *amqp.LinkError
		if errors.As(err, &le) {
			s.dropSender(msg.Address, snd)
		}
		return fmt.Errorf("amqp10: sending to %q: %w", msg.Address, err)
	}
	c.setTarget(msg.Address, client.StatusOpen, detailProducerStarted)
	return nil
}

// setTarget updates the entry of a fixed target address after a publish.
func (c *amqpClient) setTarget(address, status, details string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.self.Status != client.StatusOpen {
		return
	}
	now := time.Now()
	for _, r := range c.targets {
		if r.Address == address && (r.Status != status || r.Details != details) {
			r.Set(status, details, now)
		}
	}
}

// Status reports the client entry, one entry per consumer and one per
// target.
func (c *amqpClient) Status() []client.ResourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]client.ResourceStatus, 0, 1+len(c.sources)+len(c.targets))
	out = append(out, c.self.Entry())
	for _, r := range c.sources {
		out = append(out, r.Entry())
	}
	for _, r := range c.targets {
		out = append(out, r.Entry())
	}
	return out
}

// Close detaches the links and closes the connection; later calls return
// nil.
func (c *amqpClient) Close(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, defaultOpTimeout)
	defer cancel()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	if c.connectCancel != nil {
		c.connectCancel()
	}
	c.setAllLocked(client.StatusClosed, detailDisconnected, detailConsumerStopped, detailProducerStopped)
	c.mu.Unlock()

	var err error
	if s != nil {
		err = s.close(ctx)
	}
	c.log.Info().Msg("amqp10 disconnected")
	c.emit(client.Disconnected, nil)
	return err
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
