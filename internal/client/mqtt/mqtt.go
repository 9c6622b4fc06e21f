// Package mqtt is the MQTT 3.1.1 client of connections of type "mqtt", on
// github.com/eclipse/paho.mqtt.golang: one broker connection per client with
// a subscription per source address (the source's qos) and publishing to the
// targets (over a second connection with separatePublisherClient).
//
// Settlement: a consumed message's Message.Settle with Accept or Reject
// sends its PUBACK (QoS 1; PUBREC for QoS 2); Redeliver withholds it. MQTT
// brokers redeliver only when the client reconnects with its session
// (cleanSession false, Ditto's default), so with reconnectForRedelivery the
// consuming connection is replaced reconnectForRedeliveryDelay after the
// first withheld PUBACK (a publisher on the same connection is replaced
// with it; separatePublisherClient avoids that). Without it, a withheld
// PUBACK stays withheld until the connection ends. Settlements run on a
// goroutine per source (a client.Settler); a source holds at most
// client.MaxUnsettled unsettled messages (MQTT_CONSUMER_THROTTLING_LIMIT ×
// 2, 200), then its lane stops, which stops paho's reading once the lanes
// are full (the broker's own in-flight window, Mosquitto's
// max_inflight_messages, usually stops QoS 1 deliveries earlier). A lane
// serves the topics of several sources, so one source at its bound also
// holds back the others on its lane.
package mqtt

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/net/proxy"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/mqttcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

var (
	_ client.Client         = (*Client)(nil)
	_ client.AsyncPublisher = (*Client)(nil)
)

// Client is one MQTT 3.1.1 connection: the shared lifecycle, with
// publishing that need not wait for the broker.
type Client struct {
	*client.Lifecycle
}

// protocol opens MQTT 3.1.1 sessions for the lifecycle.
type protocol struct {
	env    client.Env
	conn   *model.Connection
	broker string
	cfg    mqttcommon.Config
}

// session is the broker connection (two with separatePublisherClient).
type session struct {
	p        *protocol
	r        *client.Reporter
	settlers []*client.Settler // per source

	// links: the subscriber, and the publisher (the same unless
	// separatePublisherClient).
	links mqttcommon.Links[paho.Client]

	// Consumed messages go through lanes, one goroutine each; a topic
	// always uses the same lane, so its messages are processed (and
	// acknowledged) in the order the broker sent them, which is the order
	// MQTT promises. paho's router only hands them over, so it keeps
	// reading acknowledgements of our own publishes meanwhile.
	lanes []chan consumed
	stop  chan struct{}
}

type consumed struct {
	source int // index in the connection's sources
	addr   string
	m      paho.Message
}

// inboundLanes is how many lanes consume in parallel.
const inboundLanes = 4

// New is the Factory of "mqtt" connections.
func New(env client.Env) (client.Client, error) {
	cfg, err := mqttcommon.ParseConfig(env.Connection)
	if err != nil {
		return nil, err
	}
	ep, err := client.ParseEndpoint(env.Connection)
	if err != nil {
		return nil, err
	}
	scheme := "tcp"
	if ep.Secure() {
		scheme = "ssl"
	}
	p := &protocol{env: env, conn: env.Connection, cfg: cfg, broker: scheme + "://" + ep.HostPort()}
	return &Client{client.NewLifecycle(env, p, client.Options{Name: "mqtt", Endpoint: p.broker, Shape: shape})}, nil
}

// Open connects the paho client(s) and starts the consuming lanes.
func (p *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	s := &session{p: p, r: r, stop: make(chan struct{})}
	for range p.conn.Sources {
		s.settlers = append(s.settlers, client.NewSettler(client.MaxUnsettled("MQTT_CONSUMER_THROTTLING_LIMIT", "")))
	}
	if len(p.conn.Sources) > 0 {
		for i := 0; i < inboundLanes; i++ {
			lane := make(chan consumed, 256)
			s.lanes = append(s.lanes, lane)
			go s.consume(lane)
		}
	}
	sub := paho.NewClient(s.options(p.cfg.ClientID, true))
	pub := sub
	if p.cfg.SeparatePublisherClient && len(p.conn.Targets) > 0 {
		pid := p.cfg.PublisherID
		if pid == "" {
			pid = p.cfg.ClientID + "p"
		}
		pub = paho.NewClient(s.options(pid, false))
	}
	s.links.Set(sub, pub)
	if err := s.connectOne(ctx, sub); err != nil {
		return s, err
	}
	if pub != sub {
		if err := s.connectOne(ctx, pub); err != nil {
			return s, err
		}
	}
	return s, nil
}

func (s *session) options(clientID string, main bool) *paho.ClientOptions {
	p := s.p
	o := paho.NewClientOptions().
		AddBroker(p.broker).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(p.cfg.CleanSession).
		SetKeepAlive(p.cfg.KeepAlive).
		SetAutoReconnect(false). // the grain reconnects (client contract)
		SetConnectRetry(false).
		SetOrderMatters(true).    // the handler only queues (lanes)
		SetAutoAckDisabled(true). // acknowledged once processed
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetCustomOpenConnectionFn(openBuffered)
	if u, err := url.Parse(p.broker); err == nil {
		// openBuffered dials with it: every address is checked against the
		// blocked hosts
		o.SetDialer(&net.Dialer{Timeout: 10 * time.Second, Control: p.env.DialControl(u.Hostname())})
	}
	if user, pass, ok := client.UserInfo(p.conn); ok {
		o.SetUsername(user).SetPassword(pass)
	}
	if p.env.TLS != nil {
		o.SetTLSConfig(p.env.TLS)
	}
	if w := p.cfg.LastWill; w != nil && main {
		o.SetWill(w.Topic, w.Message, w.QoS, w.Retain)
	}
	if main {
		// Messages of a resumed session arrive before any subscription of
		// this client is made (a reconnect for redelivery does not
		// subscribe again): route them by the sources' filters.
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) {
			for i, src := range p.conn.Sources {
				for _, a := range src.Addresses {
					if mqttcommon.Match(a, m.Topic()) {
						s.enqueue(i, a, m)
						return
					}
				}
			}
			m.Ack() // no source of ours: never redelivered
		})
	}
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		s.r.Lost(fmt.Errorf("%w: %v", client.ErrUnreachable, err))
	})
	return o
}

// openBuffered opens the network connection as paho does for the schemes
// this client uses (tcp, ssl; a proxy from the environment as paho honours
// it) and buffers its reads: paho reads every packet's fixed header and
// length byte by byte, which costs a system call per byte on a bare
// connection.
func openBuffered(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	dialer := o.Dialer
	if dialer == nil {
		dialer = &net.Dialer{Timeout: o.ConnectTimeout}
	}
	var conn net.Conn
	var err error
	switch uri.Scheme {
	case "tcp", "mqtt":
		conn, err = proxy.FromEnvironmentUsing(dialer).Dial("tcp", uri.Host)
	case "ssl", "tls", "mqtts", "mqtt+ssl", "tcps":
		if os.Getenv("all_proxy") == "" {
			conn, err = tls.DialWithDialer(dialer, "tcp", uri.Host, o.TLSConfig)
			break
		}
		var raw net.Conn
		if raw, err = proxy.FromEnvironment().Dial("tcp", uri.Host); err != nil {
			break
		}
		tc := tls.Client(raw, o.TLSConfig)
		if err = tc.Handshake(); err != nil {
			_ = raw.Close()
			break
		}
		conn = tc
	default:
		return nil, fmt.Errorf("unknown protocol %q", uri.Scheme)
	}
	if err != nil {
		return nil, err
	}
	return &bufferedConn{Conn: conn, r: bufio.NewReaderSize(conn, 32<<10)}, nil
}

// bufferedConn reads through a buffer; everything else is the connection's.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (s *session) connectOne(ctx context.Context, pc paho.Client) error {
	tok := pc.Connect()
	if err := wait(ctx, tok); err != nil {
		return err
	}
	if err := tok.Error(); err != nil {
		ct, _ := tok.(*paho.ConnectToken)
		return mapConnectError(ct, err, s.p.broker)
	}
	return nil
}

// mapConnectError turns paho's answer into the contract's errors.
func mapConnectError(ct *paho.ConnectToken, err error, broker string) error {
	var rc byte
	if ct != nil {
		rc = ct.ReturnCode()
	}
	switch {
	case rc == packets.ErrRefusedBadUsernameOrPassword || rc == packets.ErrRefusedNotAuthorised ||
		errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword) || errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return fmt.Errorf("%w: broker refused the credentials (%v)", client.ErrUnauthorized, err)
	case isTLSError(err):
		return fmt.Errorf("TLS handshake with %s failed: %v", broker, err)
	case rc == packets.ErrNetworkError || isNetError(err):
		return fmt.Errorf("%w: %v", client.ErrUnreachable, err)
	}
	return fmt.Errorf("broker refused the connection: %v", err)
}

func isTLSError(err error) bool {
	var (
		ve  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		hn  x509.HostnameError
		rec tls.RecordHeaderError
		ae  tls.AlertError
	)
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &rec) || errors.As(err, &ae)
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused")
}

// wait waits for tok or ctx.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", client.ErrTimeout, ctx.Err())
	}
}

// Start subscribes the sources.
func (s *session) Start(ctx context.Context) error {
	for _, st := range s.settlers {
		st.Start()
	}
	return s.subscribe(ctx, s.links.Sub())
}

// subscribe subscribes sub to every source address.
func (s *session) subscribe(ctx context.Context, sub paho.Client) error {
	for i, src := range s.p.conn.Sources {
		qos := byte(0)
		if src.QoS != nil {
			qos = byte(*src.QoS)
		}
		for _, addr := range src.Addresses {
			tok := sub.Subscribe(addr, qos, func(_ paho.Client, m paho.Message) { s.enqueue(i, addr, m) })
			if err := wait(ctx, tok); err != nil {
				return err
			}
			if err := tok.Error(); err != nil {
				return fmt.Errorf("subscribe %q: %v", addr, err)
			}
			if st, ok := tok.(*paho.SubscribeToken); ok {
				for _, code := range st.Result() {
					if code >= 0x80 {
						return fmt.Errorf("%w: broker refused the subscription to %q", client.ErrUnauthorized, addr)
					}
				}
			}
		}
	}
	return nil
}

// enqueue hands a consumed message to its topic's lane (on paho's router
// goroutine; it waits while the lane is full, which stops reading).
func (s *session) enqueue(source int, addr string, m paho.Message) {
	if len(s.lanes) == 0 {
		m.Ack()
		return
	}
	h := uint32(2166136261)
	for _, b := range []byte(m.Topic()) {
		h = (h ^ uint32(b)) * 16777619
	}
	select {
	case s.lanes[h%uint32(len(s.lanes))] <- consumed{source: source, addr: addr, m: m}:
	case <-s.stop:
	}
}

func (s *session) consume(lane <-chan consumed) {
	for {
		select {
		case in := <-lane:
			st := s.settlers[in.source]
			if !st.Acquire(s.stop) {
				return
			}
			settle := st.Settle(func(o client.Outcome) { s.settle(in.m, o) })
			if s.p.env.Inbound == nil {
				settle(client.Accept)
				continue
			}
			s.inbound(in.addr, in.m, settle)
		case <-s.stop:
			return
		}
	}
}

// settle acknowledges m unless it is to be redelivered, when it schedules
// the reconnect for redelivery (on the source's Settler goroutine). A
// PUBACK for a connection replaced meanwhile is dropped by paho; the broker
// redelivers the message on the new one.
func (s *session) settle(m paho.Message, o client.Outcome) {
	if o != client.Redeliver {
		m.Ack()
		return
	}
	if m.Qos() == 0 || !s.p.cfg.ReconnectForRedelivery {
		return
	}
	s.links.Redeliver(s.p.cfg.ReconnectForRedeliveryDelay, s.reconnect,
		func(c paho.Client) { c.Disconnect(0) },
		func(err error) {
			s.r.Lost(fmt.Errorf("%w: reconnecting for redelivery: %v", client.ErrUnreachable, err))
		})
}

// reconnect replaces the consuming connection old by one with the same
// client id (reconnect for redelivery).
func (s *session) reconnect(old paho.Client) (paho.Client, error) {
	log := client.ClientLogger(s.p.env)
	log.Info().Msg("mqtt reconnecting the consumer for redelivery")
	old.Disconnect(0)
	next := paho.NewClient(s.options(s.p.cfg.ClientID, true))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tok := next.Connect()
	err := wait(ctx, tok)
	if err == nil {
		if err = tok.Error(); err != nil {
			ct, _ := tok.(*paho.ConnectToken)
			err = mapConnectError(ct, err, s.p.broker)
		}
	}
	if err == nil {
		if ct, ok := tok.(*paho.ConnectToken); !ok || !ct.SessionPresent() {
			err = s.subscribe(ctx, next) // the broker forgot the subscriptions
		}
	}
	if err != nil {
		next.Disconnect(0)
		return nil, err
	}
	return next, nil
}

func (s *session) inbound(source string, m paho.Message, settle func(client.Outcome)) {
	qos := int(m.Qos())
	s.p.env.Inbound(client.Message{
		Address: source,
		Headers: map[string]string{
			"mqtt.topic":  m.Topic(),
			"mqtt.qos":    strconv.Itoa(qos),
			"mqtt.retain": strconv.FormatBool(m.Retained()),
		},
		Payload: m.Payload(),
		QoS:     &qos,
		Settle:  settle,
	})
}

// Publish sends msg to its topic (header mqtt.topic, else msg.Address), with
// msg.QoS (header mqtt.qos overrides) and header mqtt.retain.
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	p := s.publishAsync(msg)
	if err := wait(ctx, p.tok); err != nil {
		return err
	}
	return p.Err()
}

// PublishAsync is Publish without waiting for the broker's acknowledgement.
func (c *Client) PublishAsync(msg client.Message) client.Pending {
	s, err := c.Current()
	if err != nil {
		return client.FailedPending(err)
	}
	return s.(*session).publishAsync(msg)
}

func (s *session) publishAsync(msg client.Message) *pending {
	topic, qos, retain := mqttcommon.PublishParams(msg)
	return &pending{tok: s.links.Pub().Publish(topic, qos, retain, msg.Payload), topic: topic}
}

// pending is a paho publish token with the topic for its error.
type pending struct {
	tok   paho.Token
	topic string
}

func (p *pending) Done() <-chan struct{} { return p.tok.Done() }

func (p *pending) Err() error {
	if err := p.tok.Error(); err != nil {
		return fmt.Errorf("publish to %q: %w", p.topic, err)
	}
	return nil
}

// Close disconnects (publishes still in flight get up to 250 ms) after the
// acknowledgements settled so far went out; it also aborts a connect under
// way.
func (s *session) Close(ctx context.Context) error {
	sub, pub := s.links.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, st := range s.settlers {
			st.Close(ctx.Done())
		}
		sub.Disconnect(250)
		if pub != sub {
			pub.Disconnect(250)
		}
		close(s.stop)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: disconnect: %v", client.ErrTimeout, ctx.Err())
	}
}
