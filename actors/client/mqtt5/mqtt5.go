// Package mqtt5 is the MQTT 5 client of connections of type "mqtt-5", on
// github.com/eclipse/paho.golang's autopaho: one broker connection per
// client with a subscription per source address and publishing to the
// targets. autopaho's own reconnecting is switched off: the grain reconnects
// (client contract).
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
	"time"

	"github.com/eclipse/paho.golang/autopaho"
	"github.com/eclipse/paho.golang/paho"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

var _ client.Client = (*Client)(nil)

// MQTT 5 reason codes of a refused CONNECT that mean "credentials".
const (
	reasonBadCredentials = 0x86
	reasonNotAuthorized  = 0x87
	reasonBanned         = 0x8A
	reasonBadAuthMethod  = 0x8C
)

// Client is one MQTT 5 connection.
type Client struct {
	env    client.Env
	conn   *model.Connection
	cfg    client.MQTTConfig
	server *url.URL

	mu      sync.Mutex
	cm      *autopaho.ConnectionManager
	stop    context.CancelFunc
	up      bool
	closed  bool
	status  []client.ResourceStatus
	upCh    chan struct{}
	errCh   chan error
	filters []string // source addresses, for routing inbound messages
}

// New is the Factory of "mqtt-5" connections.
func New(env client.Env) (client.Client, error) {
	cfg, err := client.ParseMQTTConfig(env.Connection)
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
	c := &Client{env: env, conn: env.Connection, cfg: cfg,
		server: &url.URL{Scheme: scheme, Host: ep.HostPort()},
		upCh:   make(chan struct{}, 1), errCh: make(chan error, 1)}
	for _, s := range env.Connection.Sources {
		c.filters = append(c.filters, s.Addresses...)
	}
	return c, nil
}

func (c *Client) config(timeout time.Duration) autopaho.ClientConfig {
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{c.server},
		TlsCfg:                        c.env.TLS,
		KeepAlive:                     uint16(c.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: c.cfg.CleanSession,
		ConnectTimeout:                timeout,
		// attempt 0 is the first connect; later attempts never come (Connect
		// gives up on the first error, OnConnectionDown stops reconnecting)
		ReconnectBackoff: func(attempt int) time.Duration {
			if attempt == 0 {
				return 0
			}
			return time.Hour
		},
		OnConnectionUp: func(*autopaho.ConnectionManager, *paho.Connack) {
			select {
			case c.upCh <- struct{}{}:
			default:
			}
		},
		OnConnectionDown: func() bool {
			c.mu.Lock()
			closed, wasUp := c.closed, c.up
			c.up = false
			c.mu.Unlock()
			if !closed && wasUp && c.env.Events != nil {
				c.env.Events(client.Event{Kind: client.ConnectionLost,
					Err: fmt.Errorf("%w: connection to the broker lost", client.ErrUnreachable), At: time.Now()})
			}
			return false // the grain reconnects with a fresh client
		},
		OnConnectError: func(err error) {
			select {
			case c.errCh <- err:
			default:
			}
		},
		ClientConfig: paho.ClientConfig{
			ClientID:          c.cfg.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){c.inbound},
		},
	}
	if !c.cfg.CleanSession {
		cc.SessionExpiryInterval = 0xFFFFFFFF // keep the session, as MQTT 3's cleanSession=false does
	}
	if user, pass, ok := client.UserInfo(c.conn); ok {
		cc.ConnectUsername, cc.ConnectPassword = user, []byte(pass)
	}
	if w := c.cfg.LastWill; w != nil {
		cc.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: []byte(w.Message), QoS: w.QoS, Retain: w.Retain}
	}
	return cc
}

// Connect connects (one attempt), subscribes the sources and readies the targets.
func (c *Client) Connect(ctx context.Context) error {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	cmCtx, stop := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(cmCtx, c.config(timeout))
	if err != nil {
		stop()
		return fmt.Errorf("%w: %v", client.ErrConfig, err)
	}
	c.mu.Lock()
	c.cm, c.stop = cm, stop
	c.mu.Unlock()
	select {
	case <-c.upCh:
	case err := <-c.errCh:
		stop()
		return mapConnectError(err, c.server.Host)
	case <-ctx.Done():
		stop()
		return fmt.Errorf("%w: %v", client.ErrTimeout, ctx.Err())
	}
	c.mu.Lock()
	c.up = true
	c.mu.Unlock()
	if err := c.subscribe(ctx, cm); err != nil {
		return err
	}
	now := time.Now()
	st := []client.ResourceStatus{client.ClientEntry(now)}
	st = append(st, client.SourceEntries(c.conn, now, true)...)
	st = append(st, client.TargetEntries(c.conn, now)...)
	c.mu.Lock()
	c.status = st
	c.mu.Unlock()
	return nil
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
	var ne net.Error
	if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w: %v", client.ErrUnreachable, err)
	}
	return fmt.Errorf("connect to %s: %v", host, err)
}

func (c *Client) subscribe(ctx context.Context, cm *autopaho.ConnectionManager) error {
	for _, s := range c.conn.Sources {
		qos := byte(0)
		if s.QoS != nil {
			qos = byte(*s.QoS)
		}
		var subs []paho.SubscribeOptions
		for _, a := range s.Addresses {
			subs = append(subs, paho.SubscribeOptions{Topic: a, QoS: qos})
		}
		if len(subs) == 0 {
			continue
		}
		ack, err := cm.Subscribe(ctx, &paho.Subscribe{Subscriptions: subs})
		if err != nil {
			return fmt.Errorf("subscribe %q: %v", s.Addresses, err)
		}
		for i, code := range ack.Reasons {
			if code >= 0x80 {
				addr := ""
				if i < len(s.Addresses) {
					addr = s.Addresses[i]
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

func (c *Client) inbound(pr paho.PublishReceived) (bool, error) {
	if c.env.Inbound == nil || pr.Packet == nil {
		return true, nil
	}
	p := pr.Packet
	source := ""
	for _, f := range c.filters {
		if Match(f, p.Topic) {
			source = f
			break
		}
	}
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
	c.env.Inbound(client.Message{Address: source, Headers: h, Payload: p.Payload, QoS: &qos})
	return true, nil
}

// Match reports whether topic matches the MQTT topic filter.
func Match(filter, topic string) bool {
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}

// Publish sends msg to its topic (header mqtt.topic, else msg.Address) with
// content-type, correlation-id, reply-to and the other headers as user
// properties.
func (c *Client) Publish(ctx context.Context, msg client.Message) error {
	c.mu.Lock()
	cm := c.cm
	c.mu.Unlock()
	if cm == nil {
		return fmt.Errorf("%w: not connected", client.ErrUnreachable)
	}
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
	_, err := cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: byte(qos), Retain: retain, Payload: msg.Payload, Properties: props})
	if err != nil {
		return fmt.Errorf("publish to %q: %w", topic, err)
	}
	return nil
}

// Status is the client entry and the source and target entries.
func (c *Client) Status() []client.ResourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.ResourceStatus(nil), c.status...)
}

// Close disconnects and stops the connection manager.
func (c *Client) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.status = nil
	cm, stop := c.cm, c.stop
	up := c.up
	c.up = false
	c.mu.Unlock()
	if cm == nil {
		return nil
	}
	var err error
	if up {
		err = cm.Disconnect(ctx)
	}
	stop()
	select {
	case <-cm.Done():
	case <-ctx.Done():
		return fmt.Errorf("%w: disconnect: %v", client.ErrTimeout, ctx.Err())
	}
	if err != nil && !errors.Is(err, autopaho.ConnectionDownError) {
		return fmt.Errorf("disconnect: %v", err)
	}
	return nil
}
