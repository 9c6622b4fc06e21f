// Package mqtt is the MQTT 3.1.1 client of connections of type "mqtt", on
// github.com/eclipse/paho.mqtt.golang: one broker connection per client with
// a subscription per source address (the source's qos) and publishing to the
// targets.
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
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/eclipse/paho.mqtt.golang/packets"
	"golang.org/x/net/proxy"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

var _ client.Client = (*Client)(nil)

// Client is one MQTT 3.1.1 connection.
type Client struct {
	env    client.Env
	conn   *model.Connection
	broker string
	cfg    client.MQTTConfig
	pub    paho.Client // publisher (== sub unless separatePublisherClient)
	sub    paho.Client

	mu     sync.Mutex
	status []client.ResourceStatus
	closed bool

	// Consumed messages go through lanes, one goroutine each; a topic
	// always uses the same lane, so its messages are processed (and
	// acknowledged) in the order the broker sent them, which is the order
	// MQTT promises. paho's router only hands them over, so it keeps
	// reading acknowledgements of our own publishes meanwhile.
	lanes    []chan consumed
	stop     chan struct{}
	stopOnce sync.Once
}

type consumed struct {
	source string
	m      paho.Message
}

// inboundLanes is how many lanes consume in parallel.
const inboundLanes = 4

// New is the Factory of "mqtt" connections.
func New(env client.Env) (client.Client, error) {
	cfg, err := client.ParseMQTTConfig(env.Connection)
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
	c := &Client{env: env, conn: env.Connection, cfg: cfg, broker: scheme + "://" + ep.HostPort(), stop: make(chan struct{})}
	if len(env.Connection.Sources) > 0 {
		for i := 0; i < inboundLanes; i++ {
			lane := make(chan consumed, 256)
			c.lanes = append(c.lanes, lane)
			go c.consume(lane)
		}
	}
	c.sub = paho.NewClient(c.options(cfg.ClientID, true))
	c.pub = c.sub
	if cfg.SeparatePublisherClient && len(env.Connection.Targets) > 0 {
		pid := cfg.PublisherID
		if pid == "" {
			pid = cfg.ClientID + "p"
		}
		c.pub = paho.NewClient(c.options(pid, false))
	}
	return c, nil
}

func (c *Client) options(clientID string, main bool) *paho.ClientOptions {
	o := paho.NewClientOptions().
		AddBroker(c.broker).
		SetClientID(clientID).
		SetProtocolVersion(4).
		SetCleanSession(c.cfg.CleanSession).
		SetKeepAlive(c.cfg.KeepAlive).
		SetAutoReconnect(false). // the grain reconnects (client contract)
		SetConnectRetry(false).
		SetOrderMatters(true).    // the handler only queues (lanes)
		SetAutoAckDisabled(true). // acknowledged once processed
		SetWriteTimeout(10 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetCustomOpenConnectionFn(openBuffered)
	if user, pass, ok := client.UserInfo(c.conn); ok {
		o.SetUsername(user).SetPassword(pass)
	}
	if c.env.TLS != nil {
		o.SetTLSConfig(c.env.TLS)
	}
	if w := c.cfg.LastWill; w != nil && main {
		o.SetWill(w.Topic, w.Message, w.QoS, w.Retain)
	}
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if !closed && c.env.Events != nil {
			c.env.Events(client.Event{Kind: client.ConnectionLost, Err: fmt.Errorf("%w: %v", client.ErrUnreachable, err), At: time.Now()})
		}
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

// Connect connects, subscribes the sources and readies the targets.
func (c *Client) Connect(ctx context.Context) error {
	if err := c.connectOne(ctx, c.sub); err != nil {
		return err
	}
	if c.pub != c.sub {
		if err := c.connectOne(ctx, c.pub); err != nil {
			return err
		}
	}
	now := time.Now()
	if err := c.subscribe(ctx); err != nil {
		return err
	}
	st := []client.ResourceStatus{client.ClientEntry(now)}
	st = append(st, client.SourceEntries(c.conn, now, true)...)
	st = append(st, client.TargetEntries(c.conn, now)...)
	c.mu.Lock()
	c.status = st
	c.mu.Unlock()
	return nil
}

func (c *Client) connectOne(ctx context.Context, pc paho.Client) error {
	tok := pc.Connect()
	if err := wait(ctx, tok); err != nil {
		return err
	}
	if err := tok.Error(); err != nil {
		ct, _ := tok.(*paho.ConnectToken)
		return mapConnectError(ct, err, c.broker)
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

func (c *Client) subscribe(ctx context.Context) error {
	for _, s := range c.conn.Sources {
		qos := byte(0)
		if s.QoS != nil {
			qos = byte(*s.QoS)
		}
		for _, addr := range s.Addresses {
			addr := addr
			tok := c.sub.Subscribe(addr, qos, func(_ paho.Client, m paho.Message) { c.enqueue(addr, m) })
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
func (c *Client) enqueue(source string, m paho.Message) {
	if len(c.lanes) == 0 {
		m.Ack()
		return
	}
	h := uint32(2166136261)
	for _, b := range []byte(m.Topic()) {
		h = (h ^ uint32(b)) * 16777619
	}
	select {
	case c.lanes[h%uint32(len(c.lanes))] <- consumed{source: source, m: m}:
	case <-c.stop:
	}
}

func (c *Client) consume(lane <-chan consumed) {
	for {
		select {
		case in := <-lane:
			c.inbound(in.source, in.m)
			in.m.Ack()
		case <-c.stop:
			return
		}
	}
}

func (c *Client) inbound(source string, m paho.Message) {
	if c.env.Inbound == nil {
		return
	}
	qos := int(m.Qos())
	c.env.Inbound(client.Message{
		Address: source,
		Headers: map[string]string{
			"mqtt.topic":  m.Topic(),
			"mqtt.qos":    strconv.Itoa(qos),
			"mqtt.retain": strconv.FormatBool(m.Retained()),
		},
		Payload: m.Payload(),
		QoS:     &qos,
	})
}

// Publish sends msg to its topic (header mqtt.topic, else msg.Address), with
// msg.QoS (header mqtt.qos overrides) and header mqtt.retain.
func (c *Client) Publish(ctx context.Context, msg client.Message) error {
	p := c.PublishAsync(msg).(*pending)
	if err := wait(ctx, p.tok); err != nil {
		return err
	}
	return p.Err()
}

var _ client.AsyncPublisher = (*Client)(nil)

// PublishAsync is Publish without waiting for the broker's acknowledgement.
func (c *Client) PublishAsync(msg client.Message) client.Pending {
	topic := msg.Address
	if t := msg.Headers["mqtt.topic"]; t != "" {
		topic = t
	}
	qos := 0
	if msg.QoS != nil {
		qos = *msg.QoS
	}
	if q, err := strconv.Atoi(msg.Headers["mqtt.qos"]); err == nil && q >= 0 && q <= 2 {
		qos = q
	}
	retain, _ := strconv.ParseBool(msg.Headers["mqtt.retain"])
	return &pending{tok: c.pub.Publish(topic, byte(qos), retain, msg.Payload), topic: topic}
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

// Status is the client entry and the source and target entries.
func (c *Client) Status() []client.ResourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.ResourceStatus(nil), c.status...)
}

// Close disconnects (publishes still in flight get up to 250 ms).
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.status = nil
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Disconnect also aborts a connect still under way.
		c.sub.Disconnect(250)
		if c.pub != c.sub {
			c.pub.Disconnect(250)
		}
		c.stopOnce.Do(func() { close(c.stop) })
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("%w: disconnect: %v", client.ErrTimeout, ctx.Err())
	}
}
