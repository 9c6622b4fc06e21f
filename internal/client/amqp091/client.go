// Package amqp091 is the broker client of connection type "amqp-091"
// (RabbitMQ and other AMQP 0.9.1 brokers), built on
// github.com/rabbitmq/amqp091-go.
//
// One client holds one AMQP connection: a confirm-mode channel for
// publishing and one channel per consumer (source address × consumerCount).
// Each delivery is settled when the data plane calls its Message.Settle
// (Accept: ack; Redeliver: nack with requeue; Reject: nack without
// requeue), on a goroutine per consumer; the channel's prefetch is the bound
// of unsettled deliveries (client.MaxUnsettled). The library's own
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
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

const (
	// defaultConnectTimeout bounds Connect when ctx has no deadline.
	defaultConnectTimeout = 30 * time.Second
	// defaultOpTimeout bounds Publish and Close when ctx has no deadline.
	defaultOpTimeout = 10 * time.Second
	// heartbeat lets both sides notice a dead peer within ~3 intervals.
	heartbeat = 10 * time.Second
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

// protocol opens AMQP 0.9.1 sessions for a client.Lifecycle.
type protocol struct {
	env        client.Env
	log        zerolog.Logger
	ep         endpoint
	name       string // connection_name client property, visible in the broker's UI
	consumers  []consumerSpec
	hasTargets bool
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
	p := &protocol{
		env:        env,
		ep:         ep,
		name:       connectionName(conn, env.ClientIndex),
		log:        client.ClientLogger(env),
		hasTargets: len(conn.Targets) > 0,
	}
	client.EachConsumer(conn, func(src model.Source, a string) {
		p.consumers = append(p.consumers, consumerSpec{queue: a, qos: src.QoS})
	})
	return client.NewLifecycle(env, p, client.Options{
		Name:           "amqp091",
		Shape:          shape,
		Endpoint:       ep.addr(),
		ConnectTimeout: defaultConnectTimeout,
		PublishTimeout: defaultOpTimeout,
		CloseTimeout:   defaultOpTimeout,
	}), nil
}

func connectionName(conn *model.Connection, index int) string {
	return fmt.Sprintf("dittoconn:%s:%d", conn.ID, index)
}

// Open dials the broker, checks that the source queues exist, readies the
// consumers and opens the publisher channel.
func (p *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	s, err := p.open(ctx)
	if s == nil {
		return nil, err
	}
	s.r = r
	return s, err
}

// open establishes a session; on error the returned session (if any) must
// be closed by the caller.
func (c *protocol) open(ctx context.Context) (*session, error) {
	d := net.Dialer{Control: c.env.DialControl(c.ep.host)} // the blocked hosts, at every dial
	raw, err := d.DialContext(ctx, "tcp", c.ep.addr())
	if err != nil {
		return nil, c.connectError(ctx, err, true)
	}
	// Every broker round trip below blocks without a context: closing the
	// socket when ctx ends makes them all fail promptly.
	stopWatch := context.AfterFunc(ctx, func() { _ = raw.Close() })
	defer stopWatch()

	transport := raw
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
	s := newSession(c, conn, transport)
	if err := c.setup(ctx, s); err != nil {
		if ctx.Err() != nil {
			return s, c.connectError(ctx, err, false)
		}
		return s, err
	}
	return s, nil
}

// setup opens the publisher channel and the consumers.
func (c *protocol) setup(ctx context.Context, s *session) error {
	if c.hasTargets {
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
		// The broker sends no more unsettled deliveries than the bound.
		settler := client.NewSettler(client.MaxUnsettled("", ""))
		if err := ch.Qos(settler.Max(), 0, false); err != nil {
			return fmt.Errorf("amqp091: setting prefetch for queue %q: %w", cs.queue, err)
		}
		tag := fmt.Sprintf("%s:%d", c.name, i)
		deliveries, err := ch.Consume(cs.queue, tag, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("amqp091: consuming from queue %q: %w", cs.queue, err)
		}
		s.consumers = append(s.consumers, &consumer{
			spec:       cs,
			settler:    settler,
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
func (c *protocol) connectError(ctx context.Context, err error, dialing bool) error {
	addr := c.ep.addr()
	if cerr := client.ConnectContextError(ctx, "amqp091", addr); cerr != nil {
		return cerr
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
