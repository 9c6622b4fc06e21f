// Package amqp091 is the broker client of connection type "amqp-091"
// (RabbitMQ and other AMQP 0.9.1 brokers), built on
// github.com/rabbitmq/amqp091-go.
//
// One client holds one AMQP connection: a confirm-mode channel for
// publishing and one channel per consumer (source address × consumerCount).
// Deliveries are acked after env.Inbound returns. The library's own
// recovery is not used: a lost connection is reported as ConnectionLost and
// the grain restarts the client with backoff.
package amqp091

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

const (
	// defaultConnectTimeout bounds Connect when ctx has no deadline.
	defaultConnectTimeout = 30 * time.Second
	// defaultOpTimeout bounds Publish and Close when ctx has no deadline.
	defaultOpTimeout = 10 * time.Second
	// heartbeat lets both sides notice a dead peer within ~3 intervals.
	heartbeat = 10 * time.Second
	// prefetch caps unacked deliveries per consumer channel.
	prefetch = 16
)

var (
	errClosed       = errors.New("amqp091: client is closed")
	errNotConnected = errors.New("amqp091: client is not connected")
)

// Compile-time checks that New is a client.Factory.
var _ client.Factory = New

// endpoint is the broker address and login taken from the connection URI.
type endpoint struct {
	secure     bool
	host, port string
	user, pass string
	hasLogin   bool
	vhost      string
}

func (e endpoint) addr() string { return net.JoinHostPort(e.host, e.port) }

// parseEndpoint reads the URI of conn; its errors never repeat the URI,
// which carries the password.
func parseEndpoint(conn *model.Connection) (endpoint, error) {
	ep, err := client.ParseEndpoint(conn)
	if err != nil {
		return endpoint{}, err
	}
	var e endpoint
	switch ep.Scheme {
	case "amqp":
	case "amqps":
		e.secure = true
	default:
		return endpoint{}, fmt.Errorf("%w: the URI scheme %q is not valid for amqp-091", client.ErrConfig, ep.Scheme)
	}
	e.host, e.port = ep.Host, ep.Port
	if e.host == "" || e.port == "" {
		return endpoint{}, fmt.Errorf("%w: the connection URI needs a host and a port", client.ErrConfig)
	}
	e.user, e.pass, e.hasLogin = client.UserInfo(conn)
	// The vhost is the path without its leading '/'; none means the default.
	e.vhost = strings.TrimPrefix(ep.Path, "/")
	if e.vhost == "" {
		e.vhost = "/"
	}
	return e, nil
}

// consumerSpec is one consumer to start: a queue of a source.
type consumerSpec struct {
	queue string
	qos   *int
}

type amqpClient struct {
	env       client.Env
	log       zerolog.Logger
	ep        endpoint
	name      string // connection_name client property, visible in the broker's UI
	consumers []consumerSpec

	connectMu sync.Mutex // one Connect at a time

	mu            sync.Mutex
	closed        bool
	sess          *session
	connectCancel context.CancelFunc // cancels an in-flight Connect on Close
	self          resource
	sources       []*resource // one per consumer, same order as consumers
	targets       []*resource
}

// New builds an AMQP 0.9.1 client for env.Connection; it does not connect.
func New(env client.Env) (client.Client, error) {
	conn := env.Connection
	if conn == nil {
		return nil, errors.New("amqp091: no connection")
	}
	ep, err := parseEndpoint(conn)
	if err != nil {
		return nil, err
	}
	c := &amqpClient{
		env:  env,
		ep:   ep,
		name: connectionName(conn, env.ClientIndex),
		log: env.Logger.With().Str("connection_id", conn.ID).Int("client_index", env.ClientIndex).
			Str("connection_type", model.TypeAMQP091).Logger(),
	}
	now := time.Now()
	c.self = resource{Type: "client"}
	c.self.Set(client.StatusClosed, detailDisconnected, now)
	// Same order as client.SourceEntries: consumer copies, then addresses.
	for _, src := range conn.Sources {
		n := max(src.ConsumerCount, 1)
		for range n {
			for _, a := range src.Addresses {
				c.consumers = append(c.consumers, consumerSpec{queue: a, qos: src.QoS})
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

func connectionName(conn *model.Connection, index int) string {
	return fmt.Sprintf("dittoconn:%s:%d", conn.ID, index)
}

func (c *amqpClient) emit(kind client.EventKind, err error) {
	if c.env.Events != nil {
		c.env.Events(client.Event{Kind: kind, Err: err, At: time.Now()})
	}
}

// setAllLocked moves the client and all its sources and targets at once.
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

// Connect dials the broker, checks that the source queues exist, starts the
// consumers and opens the publisher channel.
func (c *amqpClient) Connect(ctx context.Context) error {
	c.connectMu.Lock()
	defer c.connectMu.Unlock()

	ctx, cancel := withDefaultTimeout(ctx, defaultConnectTimeout)
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
		old.close(time.Now().Add(time.Second))
	}

	s, err := c.open(ctx)

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
			s.close(time.Now().Add(time.Second))
		}
		c.log.Warn().Err(err).Msg("amqp091 connect failed")
		return err
	}
	c.sess = s
	c.setAllLocked(client.StatusOpen, detailConnected, detailConsumerStarted, detailProducerStarted)
	c.mu.Unlock()

	// Only now may the session's watchers report a loss.
	s.start(c)
	c.log.Info().Str("endpoint", c.ep.addr()).Msg("amqp091 connected")
	c.emit(client.Connected, nil)
	return nil
}

// open establishes a session; on error the returned session (if any) must
// be closed by the caller.
func (c *amqpClient) open(ctx context.Context) (*session, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.ep.addr())
	if err != nil {
		return nil, c.connectError(ctx, err, true)
	}
	// Every broker round trip below blocks without a context: closing the
	// socket when ctx ends makes them all fail promptly.
	stopWatch := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stopWatch()

	var transport net.Conn = raw
	if c.ep.secure {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.env.TLS != nil {
			cfg = c.env.TLS.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = c.ep.host
		}
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			if ctx.Err() != nil {
				return nil, c.connectError(ctx, err, false)
			}
			return nil, fmt.Errorf("amqp091: TLS handshake with %s: %w", c.ep.addr(), err)
		}
		transport = tc
	}
	if dl, ok := ctx.Deadline(); ok {
		// Open clears this deadline once the handshake is done.
		_ = transport.SetDeadline(dl)
	}
	cfg := amqp.Config{
		Vhost:      c.ep.vhost,
		Heartbeat:  heartbeat,
		Locale:     "en_US",
		Properties: amqp.Table{"connection_name": c.name, "product": "dittoconn"},
	}
	if c.ep.hasLogin {
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: c.ep.user, Password: c.ep.pass}}
	} else {
		// RabbitMQ's default login, as the Java client assumes without user-info.
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: "guest", Password: "guest"}}
	}
	conn, err := amqp.Open(transport, cfg)
	if err != nil {
		_ = transport.Close()
		return nil, c.connectError(ctx, err, false)
	}
	s := newSession(conn, transport)
	if err := c.setup(ctx, s); err != nil {
		if ctx.Err() != nil {
			return s, c.connectError(ctx, err, false)
		}
		return s, err
	}
	return s, nil
}

// setup opens the publisher channel and the consumers.
func (c *amqpClient) setup(ctx context.Context, s *session) error {
	if len(c.targets) > 0 {
		if _, err := s.publisher(ctx); err != nil {
			return fmt.Errorf("amqp091: opening the publisher channel: %w", err)
		}
	}
	// A passive declare fails for a missing queue (and kills its channel),
	// so check each queue on a fresh channel and report all missing at once.
	var missing []string
	seen := map[string]bool{}
	for _, cs := range c.consumers {
		if seen[cs.queue] {
			continue
		}
		seen[cs.queue] = true
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("amqp091: opening a channel: %w", err)
		}
		if _, err := ch.QueueDeclarePassive(cs.queue, false, false, false, false, nil); err != nil {
			var ae *amqp.Error
			if errors.As(err, &ae) && ae.Code == amqp.NotFound {
				missing = append(missing, cs.queue)
				continue
			}
			return fmt.Errorf("amqp091: checking queue %q: %w", cs.queue, err)
		}
		_ = ch.Close()
	}
	if len(missing) > 0 {
		return fmt.Errorf("amqp091: the queues %s to consume from do not exist", quoteList(missing))
	}
	for i, cs := range c.consumers {
		ch, err := s.conn.Channel()
		if err != nil {
			return fmt.Errorf("amqp091: opening a consumer channel: %w", err)
		}
		if err := ch.Qos(prefetch, 0, false); err != nil {
			return fmt.Errorf("amqp091: setting prefetch for queue %q: %w", cs.queue, err)
		}
		tag := fmt.Sprintf("%s:%d", c.name, i)
		deliveries, err := ch.Consume(cs.queue, tag, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("amqp091: consuming from queue %q: %w", cs.queue, err)
		}
		s.consumers = append(s.consumers, &consumer{
			spec:       cs,
			deliveries: deliveries,
			cancels:    ch.NotifyCancel(make(chan string, 1)),
		})
	}
	return nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = fmt.Sprintf("%q", x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// connectError maps a connect failure to the contract's sentinels. dialing
// says whether the TCP connection itself failed.
func (c *amqpClient) connectError(ctx context.Context, err error, dialing bool) error {
	addr := c.ep.addr()
	// The socket deadline equals ctx's, and may fire a moment before ctx
	// reports it.
	dl, hasDeadline := ctx.Deadline()
	if ctxErr := ctx.Err(); ctxErr != nil || hasDeadline && !time.Now().Before(dl) {
		if ctxErr == nil || errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: connecting to %s did not finish in time", client.ErrTimeout, addr)
		}
		return fmt.Errorf("amqp091: connecting to %s: %w", addr, ctxErr)
	}
	var ae *amqp.Error
	if errors.As(err, &ae) {
		reason := strings.ToLower(ae.Reason)
		if ae.Code == amqp.AccessRefused ||
			ae.Code == amqp.NotAllowed && strings.Contains(reason, "refused") {
			return fmt.Errorf("%w: %s rejected the login: %w", client.ErrUnauthorized, addr, err)
		}
		if ae.Code == amqp.FrameError || !ae.Server {
			// The socket failed during the handshake.
			return fmt.Errorf("%w: %s: %w", client.ErrUnreachable, addr, err)
		}
		return fmt.Errorf("amqp091: connecting to %s: %w", addr, err)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: connecting to %s: %w", client.ErrTimeout, addr, err)
	}
	if dialing {
		return fmt.Errorf("%w: %s: %w", client.ErrUnreachable, addr, err)
	}
	return fmt.Errorf("amqp091: connecting to %s: %w", addr, err)
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
		go s.close(time.Now().Add(time.Second))
		c.log.Warn().Err(cause).Msg("amqp091 connection lost")
		c.emit(client.ConnectionLost, cause)
	})
}

// Publish sends msg to the target address "exchange/routingKey" and waits
// for the broker's publisher confirm.
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
	ctx, cancel := withDefaultTimeout(ctx, defaultOpTimeout)
	defer cancel()

	ch, err := s.publisher(ctx)
	if err != nil {
		return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, err)
	}
	exchange, key := splitTarget(msg.Address)
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false,
		publishing(msg.Headers, msg.Payload))
	if err != nil {
		return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("amqp091: waiting for the broker to confirm %q: %w", msg.Address, err)
	}
	if !acked {
		// A closed channel resolves its pending confirms as nacks; its close
		// reason (e.g. 404 no exchange) is the real answer.
		if reason := s.publisherCloseReason(ch); reason != nil {
			return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, reason)
		}
		return fmt.Errorf("amqp091: the broker refused the message to %q", msg.Address)
	}
	return nil
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

// Close stops the consumers and disconnects; later calls return nil.
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
		dl, _ := ctx.Deadline()
		s.close(dl)
		err = s.wait(ctx)
	}
	c.log.Info().Msg("amqp091 disconnected")
	c.emit(client.Disconnected, nil)
	return err
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
