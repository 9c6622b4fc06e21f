// Package mqtt5 is the MQTT 5 client of connections of type "mqtt-5", on
// github.com/eclipse/paho.golang's autopaho: one broker connection per
// client with a subscription per source address and publishing to the
// targets (over a second connection with separatePublisherClient).
// autopaho's own reconnecting is switched off: the grain reconnects (client
// contract).
//
// Settlement: consumed messages are acknowledged by hand. Message.Settle
// with Accept or Reject sends the PUBACK; Redeliver withholds it. paho
// sends PUBACKs in the order the messages arrived, as MQTT requires, so a
// withheld one holds back those after it; the broker redelivers only to a
// reconnecting session (cleanSession false, Ditto's default; the session
// outlives the connection by the session expiry interval, 60 s by default).
// With reconnectForRedelivery the consuming connection is replaced
// reconnectForRedeliveryDelay after the first withheld PUBACK (a publisher
// on the same connection moves with it; separatePublisherClient avoids
// that). Settlements run on a goroutine per source (a client.Settler); the
// connection's Receive Maximum is the sum of the sources' bounds
// (client.MaxUnsettled: MQTT_CONSUMER_THROTTLING_LIMIT × 2, 200, each; at
// most 65535), so the broker
// sends no more QoS 1/2 messages than may be unsettled.
package mqtt5

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/packets"
	"github.com/eclipse/paho.golang/paho"
	pahosession "github.com/eclipse/paho.golang/paho/session"
	"github.com/eclipse/paho.golang/paho/session/state"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/mqttcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// MQTT 5 reason codes of a refused CONNECT that mean "credentials".
const (
	reasonBadCredentials = 0x86
	reasonNotAuthorized  = 0x87
	reasonBanned         = 0x8A
	reasonBadAuthMethod  = 0x8C
)

// protocol opens MQTT 5 sessions for a client.Lifecycle.
type protocol struct {
	env    client.Env
	conn   *model.Connection
	cfg    mqttcommon.Config
	server *url.URL
}

// session is one or two broker connections (links).
type session struct {
	p        *protocol
	r        *client.Reporter
	settlers []*client.Settler // per source

	// links: the subscriber, and the publisher (the same unless
	// separatePublisherClient); nil until dialled.
	links mqttcommon.Links[*link]
}

// link is one autopaho connection manager, kept from reconnecting.
type link struct {
	s     *session
	cm    *autopaho.ConnectionManager
	stop  context.CancelFunc
	upCh  chan struct{}
	errCh chan error

	mu sync.Mutex
	up bool // connected and not given up by us: its loss is a loss

	// PUBACKs handed to paho (marked) and sent by it (acks.sent), so that
	// close lets the settled ones out; none can follow a withheld one.
	acks     *ackCounter
	marked   atomic.Int64
	withheld atomic.Bool
}

// sendAcksInterval is how often paho sends the PUBACKs settled meanwhile
// (in arrival order).
const sendAcksInterval = 10 * time.Millisecond

// ackCounter is paho's session state, counting the PUBACKs it sends.
type ackCounter struct {
	pahosession.SessionManager
	sent atomic.Int64
}

func (a *ackCounter) Ack(pb *packets.Publish) error {
	defer a.sent.Add(1)
	return a.SessionManager.Ack(pb)
}

// New is the Factory of "mqtt-5" connections.
func New(env client.Env) (client.Client, error) {
	cfg, err := mqttcommon.ParseConfig(env.Connection)
	if err != nil {
		return nil, err
	}
	ep, err := client.ParseEndpoint(env.Connection)
	if err != nil {
		return nil, err
	}
	if env.Connection.ClientCount > 1 && env.ClientIndex > 0 {
		// each client of the connection needs its own session on the broker
		cfg.ClientID += "_" + strconv.Itoa(env.ClientIndex)
	}
	scheme := "mqtt"
	if ep.Secure() {
		scheme = "tls"
	}
	p := &protocol{env: env, conn: env.Connection, cfg: cfg, server: &url.URL{Scheme: scheme, Host: ep.HostPort()}}
	return client.NewLifecycle(env, p, client.Options{Name: "mqtt5", Endpoint: p.server.String(),
		Shape: shape, ConnectTimeout: 10 * time.Second}), nil
}

func (l *link) config(clientID string, consumer bool, timeout time.Duration) autopaho.ClientConfig {
	p := l.s.p
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{p.server},
		TlsCfg:                        p.env.TLS,
		KeepAlive:                     uint16(p.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: p.cfg.CleanSession,
		// The broker keeps the session this long after a disconnect (Ditto's
		// session-expiry-interval), so a reconnect finds the unacknowledged
		// messages.
		SessionExpiryInterval: uint32(min(p.cfg.SessionExpiry/time.Second, 0xFFFFFFFF)),
		ConnectTimeout:        timeout,
		// attempt 0 is the first connect; later attempts never come (Open
		// gives up on the first error, OnConnectionDown stops reconnecting)
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 {
				return 0
			}
			return time.Hour
		},
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			select {
			case l.upCh <- struct{}{}:
			default:
			}
		},
		OnConnectionDown: func() bool {
			if l.giveUp() {
				l.s.r.Lost(fmt.Errorf("%w: connection to the broker lost", client.ErrUnreachable))
			}
			return false // the grain reconnects with a fresh client
		},
		OnConnectError: func(err error) {
			select {
			case l.errCh <- err:
			default:
			}
		},
		ClientConfig: paho.ClientConfig{ClientID: clientID},
	}
	if control := p.env.DialControl(p.server.Hostname()); control != nil {
		// autopaho's own dial has no Control: this one checks every
		// address against the blocked hosts (no proxy from the
		// environment then, as blocked hosts could not be checked behind it)
		cc.AttemptConnection = func(ctx context.Context, cfg autopaho.ClientConfig, u *url.URL) (net.Conn, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
			defer cancel()
			nd := &net.Dialer{Control: control}
			if u.Scheme == "mqtt" || u.Scheme == "tcp" {
				return nd.DialContext(ctx, "tcp", u.Host)
			}
			conn, err := (&tls.Dialer{NetDialer: nd, Config: cfg.TlsCfg}).DialContext(ctx, "tcp", u.Host)
			if err != nil {
				return nil, err
			}
			return packets.NewThreadSafeConn(conn), nil
		}
	}
	if consumer {
		l.acks = &ackCounter{SessionManager: state.NewInMemory()}
		cc.Session = l.acks
		cc.OnPublishReceived = []func(paho.PublishReceived) (bool, error){l.inbound}
		cc.EnableManualAcknowledgment = true
		cc.SendAcksInterval = sendAcksInterval
		receiveMax := 0
		for _, st := range l.s.settlers {
			receiveMax += st.Max()
		}
		if receiveMax > 0 {
			rm := uint16(min(receiveMax, 65535))
			cc.ConnectPacketBuilder = func(cp *paho.Connect, _ *url.URL) (*paho.Connect, error) {
				if cp.Properties == nil {
					cp.Properties = &paho.ConnectProperties{}
				}
				cp.Properties.ReceiveMaximum = &rm
				return cp, nil
			}
		}
		if w := p.cfg.LastWill; w != nil {
			cc.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: []byte(w.Message), QoS: w.QoS, Retain: w.Retain}
		}
	}
	if user, pass, ok := client.UserInfo(p.conn); ok {
		cc.ConnectUsername, cc.ConnectPassword = user, []byte(pass)
	}
	return cc
}

// giveUp marks l as no longer up and reports whether it was.
func (l *link) giveUp() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	wasUp := l.up
	l.up = false
	return wasUp
}

// Open connects (one attempt per connection).
func (p *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	s := &session{p: p, r: r}
	for range p.conn.Sources {
		s.settlers = append(s.settlers, client.NewSettler(client.MaxUnsettled("MQTT_CONSUMER_THROTTLING_LIMIT", "")))
	}
	sub, err := s.dial(ctx, p.cfg.ClientID, true)
	s.links.Set(sub, sub)
	if err != nil {
		return s, err
	}
	if p.cfg.SeparatePublisherClient && len(p.conn.Targets) > 0 {
		pid := p.cfg.PublisherID
		if pid == "" {
			pid = p.cfg.ClientID + "p"
		}
		pub, err := s.dial(ctx, pid, false)
		s.links.Set(sub, pub)
		if err != nil {
			return s, err
		}
	}
	return s, nil
}

// dial connects one link; on error it returns the link to close (or nil).
func (s *session) dial(ctx context.Context, clientID string, consumer bool) (*link, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	l := &link{s: s, upCh: make(chan struct{}, 1), errCh: make(chan error, 1)}
	cmCtx, stop := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(cmCtx, l.config(clientID, consumer, timeout))
	if err != nil {
		stop()
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, err)
	}
	l.cm, l.stop = cm, stop
	select {
	case <-l.upCh:
	case err := <-l.errCh:
		return l, mapConnectError(err, s.p.server.Host)
	case <-ctx.Done():
		return l, fmt.Errorf("%w: %v", client.ErrTimeout, ctx.Err())
	}
	l.mu.Lock()
	l.up = true
	l.mu.Unlock()
	return l, nil
}

func mapConnectError(err error, host string) error {
	var ce *autopaho.ConnackError
	if errors.As(err, &ce) {
		switch ce.ReasonCode {
		case reasonBadCredentials, reasonNotAuthorized, reasonBanned, reasonBadAuthMethod:
			return fmt.Errorf("%w: broker refused the credentials (reason 0x%02x)", client.ErrUnauthorized, ce.ReasonCode)
		}
		return fmt.Errorf("broker refused the connection (reason 0x%02x %s)", ce.ReasonCode, ce.Reason)
	}
	var (
		ve *tls.CertificateVerificationError
		ua x509.UnknownAuthorityError
		hn x509.HostnameError
		ae tls.AlertError
	)
	if errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ae) {
		return fmt.Errorf("TLS handshake with %s failed: %v", host, err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		// autopaho's attempt ran out of the time Open gave it
		return fmt.Errorf("%w: connect to %s: %v", client.ErrTimeout, host, err)
	}
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w: %v", client.ErrUnreachable, err)
	}
	return fmt.Errorf("connect to %s: %v", host, err)
}

// Start subscribes the sources.
func (s *session) Start(ctx context.Context) error {
	for _, st := range s.settlers {
		st.Start()
	}
	return s.subscribe(ctx, s.links.Sub().cm)
}

// subscribe subscribes cm to every source address.
func (s *session) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) error {
	for _, src := range s.p.conn.Sources {
		qos := byte(0)
		if src.QoS != nil {
			qos = byte(*src.QoS)
		}
		var subs []paho.SubscribeOptions
		for _, a := range src.Addresses {
			subs = append(subs, paho.SubscribeOptions{Topic: a, QoS: qos})
		}
		if len(subs) == 0 {
			continue
		}
		ack, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
		if err != nil {
			return fmt.Errorf("subscribe %q: %v", src.Addresses, err)
		}
		for i, code := range ack.Reasons {
			if code >= 0x80 {
				addr := ""
				if i < len(src.Addresses) {
					addr = src.Addresses[i]
				}
				if code == reasonNotAuthorized {
					return fmt.Errorf("%w: broker refused the subscription to %q", client.ErrUnauthorized, addr)
				}
				return fmt.Errorf("broker refused the subscription to %q (reason 0x%02x)", addr, code)
			}
		}
	}
	return nil
}

// inbound hands a received message to Inbound (on paho's router
// goroutine, which waits while the source's bound is reached: only QoS 0
// messages get there, as Receive Maximum stops the others earlier).
func (l *link) inbound(pr paho.PublishReceived) (bool, error) {
	s := l.s
	if pr.Packet == nil {
		return true, nil
	}
	p := pr.Packet
	source, idx := "", -1
	for i, src := range s.p.conn.Sources {
		for _, f := range src.Addresses {
			if idx < 0 && mqttcommon.Match(f, p.Topic) {
				source, idx = f, i
			}
		}
	}
	if idx < 0 || s.p.env.Inbound == nil {
		_ = pr.Client.Ack(p) // not ours: never redelivered
		return true, nil
	}
	st := s.settlers[idx]
	if !st.Acquire(nil) {
		return true, nil // closing: the broker redelivers it to the session
	}
	settle := st.Settle(func(o client.Outcome) { l.settle(pr, o) })
	qos := int(p.QoS)
	h := map[string]string{
		"mqtt.topic":  p.Topic,
		"mqtt.qos":    strconv.Itoa(qos),
		"mqtt.retain": strconv.FormatBool(p.Retain),
	}
	if pp := p.Properties; pp != nil {
		for _, u := range pp.User {
			h[u.Key] = u.Value
		}
		if pp.ContentType != "" {
			h["content-type"] = pp.ContentType
		}
		if len(pp.CorrelationData) > 0 {
			h["correlation-id"] = string(pp.CorrelationData)
		}
		if pp.ResponseTopic != "" {
			h["reply-to"] = pp.ResponseTopic
		}
		if pp.MessageExpiry != nil {
			h["mqtt.message-expiry-interval"] = strconv.FormatUint(uint64(*pp.MessageExpiry), 10)
		}
	}
	s.p.env.Inbound(client.Message{Address: source, Headers: h, Payload: p.Payload, QoS: &qos, Settle: settle})
	return true, nil
}

// settle acknowledges the message unless it is to be redelivered, when it
// schedules the reconnect for redelivery (on the source's Settler
// goroutine). Acknowledgements on a link given up are
// dropped: the broker redelivers those messages on the new one.
func (l *link) settle(pr paho.PublishReceived, o client.Outcome) {
	s := l.s
	l.mu.Lock()
	up := l.up
	l.mu.Unlock()
	if o != client.Redeliver {
		if up && pr.Client.Ack(pr.Packet) == nil && pr.Packet.QoS > 0 {
			l.marked.Add(1)
		}
		return
	}
	if pr.Packet.QoS == 0 {
		return
	}
	l.withheld.Store(true)
	if !s.p.cfg.ReconnectForRedelivery {
		return
	}
	s.links.Redeliver(s.p.cfg.ReconnectForRedeliveryDelay, s.reconnect,
		func(next *link) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_ = next.close(ctx)
		},
		func(err error) {
			s.r.Lost(fmt.Errorf("%w: reconnecting for redelivery: %v", client.ErrUnreachable, err))
		})
}

// reconnect replaces the consuming link old by one with the same client
// id (reconnect for redelivery).
func (s *session) reconnect(old *link) (*link, error) {
	log := client.ClientLogger(s.p.env)
	log.Info().Msg("mqtt5 reconnecting the consumer for redelivery")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = old.close(ctx)
	next, err := s.dial(ctx, s.p.cfg.ClientID, true)
	if err == nil {
		err = s.subscribe(ctx, next.cm)
	}
	if err != nil {
		if next != nil {
			_ = next.close(ctx)
		}
		return nil, err
	}
	return next, nil
}

// Publish sends msg to its topic (header mqtt.topic, else msg.Address) with
// content-type, correlation-id, reply-to and the other headers as user
// properties.
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	topic, qos, retain := mqttcommon.PublishParams(msg)
	props := &paho.PublishProperties{}
	for k, v := range msg.Headers {
		switch k {
		case "mqtt.topic", "mqtt.qos", "mqtt.retain":
		case "content-type":
			props.ContentType = v
		case "correlation-id":
			props.CorrelationData = []byte(v)
		case "reply-to":
			props.ResponseTopic = v
		case "mqtt.message-expiry-interval":
			if n, err := strconv.ParseUint(v, 10, 32); err == nil {
				e := uint32(n)
				props.MessageExpiry = &e
			}
		default:
			props.User.Add(k, v)
		}
	}
	pub := s.links.Pub()
	// QoS 1 and 2 return once the broker answered; a reason code of 0x80
	// or more is its refusal.
	resp, err := pub.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: msg.Payload, Properties: props})
	if err != nil {
		if resp != nil && resp.ReasonCode >= 0x80 {
			return fmt.Errorf("publish to %q: the broker refused it (reason 0x%02x): %w", topic, resp.ReasonCode, err)
		}
		return fmt.Errorf("publish to %q: %w", topic, err)
	}
	return nil
}

// Close disconnects every link after the acknowledgements settled so far
// went out.
func (s *session) Close(ctx context.Context) error {
	sub, pub := s.links.Close()
	for _, st := range s.settlers {
		st.Close(ctx.Done())
	}
	var err error
	if sub != nil {
		err = sub.close(ctx)
	}
	if pub != nil && pub != sub {
		if perr := pub.close(ctx); err == nil {
			err = perr
		}
	}
	return err
}

// close disconnects l (its loss is no longer reported) and stops its
// connection manager.
func (l *link) close(ctx context.Context) error {
	var err error
	if l.giveUp() {
		l.flushAcks(ctx)
		err = l.cm.Disconnect(ctx)
	}
	l.stop()
	select {
	case <-l.cm.Done():
	case <-ctx.Done():
		return fmt.Errorf("%w: disconnect: %v", client.ErrTimeout, ctx.Err())
	}
	if err != nil && !errors.Is(err, autopaho.ConnectionDownError) {
		return fmt.Errorf("disconnect: %v", err)
	}
	return nil
}

// flushAcks waits (a second at most) until paho sent the PUBACKs handed to
// it: it sends them on its ticker, and drops what is left at disconnect.
func (l *link) flushAcks(ctx context.Context) {
	if l.acks == nil || l.withheld.Load() {
		return // nothing to send, or nothing after the withheld one can go
	}
	deadline := time.NewTimer(time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(sendAcksInterval / 2)
	defer tick.Stop()
	for l.acks.sent.Load() < l.marked.Load() {
		select {
		case <-tick.C:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}
