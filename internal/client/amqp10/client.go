// Package amqp10 is the broker client of connection type "amqp-10", built
// on github.com/Azure/go-amqp.
//
// One client holds one AMQP 1.0 connection with one session: a receiver link
// per source address × consumerCount and sender links per target address, attached at
// connect for fixed addresses and on first use for resolved ones. A lost
// connection or link is reported as ConnectionLost; the grain reconnects.
// With failoverEnabled (Ditto's default) a lost connection is first
// reconnected here, as Qpid JMS's failover transport does (failover.go).
//
// A consumed message is settled when the data plane calls its
// Message.Settle: Accept sends accepted, Redeliver released (the broker
// delivers it again), Reject rejected. Not modified with delivery-failed,
// Ditto's choice: RabbitMQ 3's AMQP 1.0 plugin drops such a message
// instead of delivering it again (the conformance suite's SettleRedeliver
// fails with it). Redelivery has no delay, as in Ditto (Qpid JMS sends the
// outcome at once, and Ditto's optional rate throttling is off by default):
// while a requested acknowledgement keeps failing, the broker offers the
// message again as fast as the round trip allows (docs/COMPATIBILITY.md,
// "AMQP 1.0 redelivery pace"). Dispositions go out on a goroutine per receiver (a
// client.Settler); the receiver's credit is issued by hand so that the
// broker never has more than jms.prefetchPolicy.all transfers under way nor
// the receiver more than client.MaxUnsettled unsettled messages
// (AMQP10_CONSUMER_THROTTLING_LIMIT × …_MAX_IN_FLIGHT_FACTOR, 200).
package amqp10

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	amqp "github.com/Azure/go-amqp"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
)

const (
	// defaultOpTimeout bounds Close when ctx has no deadline.
	defaultOpTimeout = 10 * time.Second
	// maxSenders caps the cached sender links of resolved target addresses.
	maxSenders = 64
)

var _ client.Factory = New

type consumerSpec struct {
	Address string
	qos     *int
}

// protocol opens AMQP 1.0 sessions for a client.Lifecycle.
type protocol struct {
	env       client.Env
	log       zerolog.Logger
	cfg       config
	name      string
	consumers []consumerSpec
	targets   []string
	// maxUnsettled bounds each receiver's unsettled messages (Ditto's
	// AMQP10_CONSUMER_THROTTLING_LIMIT × …_MAX_IN_FLIGHT_FACTOR).
	maxUnsettled int
}

// New builds an AMQP 1.0 client for env.Connection; it does not connect.
func New(env client.Env) (client.Client, error) {
	conn := env.Connection
	if conn == nil {
		return nil, errors.New("amqp10: no connection")
	}
	cfg, err := parseConfig(conn)
	if err != nil {
		return nil, err
	}
	p := &protocol{
		env:  env,
		cfg:  cfg,
		name: fmt.Sprintf("dittoconn:%s:%d", conn.ID, env.ClientIndex),
		log:  client.ClientLogger(env),

		maxUnsettled: client.MaxUnsettled("AMQP10_CONSUMER_THROTTLING_LIMIT", "AMQP10_CONSUMER_THROTTLING_MAX_IN_FLIGHT_FACTOR"),
	}
	client.EachConsumer(conn, func(src model.Source, a string) {
		p.consumers = append(p.consumers, consumerSpec{Address: a, qos: src.QoS})
	})
	for _, t := range conn.Targets {
		p.targets = append(p.targets, t.Address)
	}
	return client.NewLifecycle(env, p, client.Options{
		Name:           "amqp10",
		Shape:          shape,
		Endpoint:       cfg.addr(),
		ConnectTimeout: cfg.connectTimeout,
		PublishTimeout: cfg.sendTimeout,
		CloseTimeout:   defaultOpTimeout,
	}), nil
}

// isFixed reports whether a target address has no placeholders, so its
// sender can be attached at connect.
func isFixed(address string) bool { return !template.HasPlaceholders(address) }

// Open opens connection and session, attaches the receivers and the
// senders of fixed target addresses. A target the broker refuses does not
// fail the connection: its entry says so, and Publish retries the attach.
func (c *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	if c.cfg.failover.enabled {
		return c.openFailover(ctx, r)
	}
	s, err := c.open(ctx, r)
	if s == nil {
		return nil, err
	}
	return s, err
}

func (c *protocol) open(ctx context.Context, r reporter) (*session, error) {
	d := net.Dialer{Control: c.env.DialControl(c.cfg.host)} // the blocked hosts, at every dial
	raw, err := d.DialContext(ctx, "tcp", c.cfg.addr())
	if err != nil {
		return nil, c.connectError(ctx, err, true)
	}
	transport := raw
	if c.cfg.secure {
		tc := tls.Client(raw, c.cfg.tlsConfig(c.env.TLS))
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = raw.Close()
			if ctx.Err() != nil {
				return nil, c.connectError(ctx, err, false)
			}
			return nil, fmt.Errorf("amqp10: TLS handshake with %s: %w", c.cfg.addr(), err)
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
		return nil, c.connectError(ctx, err, false)
	}
	s := newSession(c, r, conn, transport)
	var missing []string
	for _, cs := range c.consumers {
		r, err := s.newReceiver(ctx, cs.Address)
		if err != nil {
			if isCondition(err, amqp.ErrCondNotFound) {
				missing = append(missing, fmt.Sprintf("%q", cs.Address))
				continue
			}
			return s, c.linkError(ctx, fmt.Sprintf("consuming from %q", cs.Address), err)
		}
		s.receivers = append(s.receivers, &receiver{spec: cs, r: r, settler: client.NewSettler(c.maxUnsettled)})
	}
	if len(missing) > 0 {
		return s, fmt.Errorf("amqp10: the source addresses [%s] do not exist", strings.Join(missing, ", "))
	}
	for _, t := range c.targets {
		if !isFixed(t) {
			continue
		}
		if _, err := s.sender(ctx, t); err != nil {
			if ctx.Err() != nil {
				return s, c.connectError(ctx, err, false)
			}
			r.Target(t, client.StatusFailed, fmt.Errorf("amqp10: attaching a sender to %q: %w", t, err).Error())
		}
	}
	return s, nil
}

func isCondition(err error, cond amqp.ErrCond) bool {
	var ae *amqp.Error
	return errors.As(err, &ae) && ae.Condition == cond
}

// linkError wraps a session or link failure during connect.
func (c *protocol) linkError(ctx context.Context, what string, err error) error {
	if ctx.Err() != nil {
		return c.connectError(ctx, err, false)
	}
	if isCondition(err, amqp.ErrCondUnauthorizedAccess) {
		return fmt.Errorf("%w: %s: %w", client.ErrUnauthorized, what, err)
	}
	return fmt.Errorf("amqp10: %s: %w", what, err)
}

// connectError maps a connect failure to the contract's sentinels.
func (c *protocol) connectError(ctx context.Context, err error, dialing bool) error {
	addr := c.cfg.addr()
	if cerr := client.ConnectContextError(ctx, "amqp10", addr); cerr != nil {
		return cerr
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
