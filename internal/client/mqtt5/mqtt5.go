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
	env     client.Env
	conn    *model.Connection
	cfg     mqttcommon.Config
	server  *url.URL
	filters []string // source addresses, for routing inbound messages
}

// session is one autopaho connection manager, kept from reconnecting.
type session struct {
	p     *protocol
	r     *client.Reporter
	cm    *autopaho.ConnectionManager
	stop  context.CancelFunc
	upCh  chan struct{}
	errCh chan error

	mu sync.Mutex
	up bool
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
	for _, s := range env.Connection.Sources {
		p.filters = append(p.filters, s.Addresses...)
	}
	return client.NewLifecycle(env, p, client.Options{Name: "mqtt5", Endpoint: p.server.String(),
		Shape: shape, ConnectTimeout: 10 * time.Second}), nil
}

func (s *session) config(timeout time.Duration) autopaho.ClientConfig {
	p := s.p
	cc := autopaho.ClientConfig{
		ServerUrls:                    []*url.URL{p.server},
		TlsCfg:                        p.env.TLS,
		KeepAlive:                     uint16(p.cfg.KeepAlive / time.Second),
		CleanStartOnInitialConnection: p.cfg.CleanSession,
		ConnectTimeout:                timeout,
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
			case s.upCh <- struct{}{}:
			default:
			}
		},
		OnConnectionDown: func() bool {
			s.mu.Lock()
			wasUp := s.up
			s.up = false
			s.mu.Unlock()
			if wasUp {
				s.r.Lost(fmt.Errorf("%w: connection to the broker lost", client.ErrUnreachable))
			}
			return false // the grain reconnects with a fresh client
		},
		OnConnectError: func(err error) {
			select {
			case s.errCh <- err:
			default:
			}
		},
		ClientConfig: paho.ClientConfig{
			ClientID:          p.cfg.ClientID,
			OnPublishReceived: []func(paho.PublishReceived) (bool, error){p.inbound},
		},
	}
	if !p.cfg.CleanSession {
		cc.SessionExpiryInterval = 0xFFFFFFFF // keep the session, as MQTT 3's cleanSession=false does
	}
	if user, pass, ok := client.UserInfo(p.conn); ok {
		cc.ConnectUsername, cc.ConnectPassword = user, []byte(pass)
	}
	if w := p.cfg.LastWill; w != nil {
		cc.WillMessage = &paho.WillMessage{Topic: w.Topic, Payload: []byte(w.Message), QoS: w.QoS, Retain: w.Retain}
	}
	return cc
}

// Open connects (one attempt).
func (p *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	s := &session{p: p, r: r, upCh: make(chan struct{}, 1), errCh: make(chan error, 1)}
	cmCtx, stop := context.WithCancel(context.Background())
	cm, err := autopaho.NewConnection(cmCtx, s.config(timeout))
	if err != nil {
		stop()
		return nil, fmt.Errorf("%w: %v", client.ErrConfig, err)
	}
	s.cm, s.stop = cm, stop
	select {
	case <-s.upCh:
	case err := <-s.errCh:
		return s, mapConnectError(err, p.server.Host)
	case <-ctx.Done():
		return s, fmt.Errorf("%w: %v", client.ErrTimeout, ctx.Err())
	}
	s.mu.Lock()
	s.up = true
	s.mu.Unlock()
	return s, nil
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
	cm := s.cm
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

func (c *protocol) inbound(pr paho.PublishReceived) (bool, error) {
	if c.env.Inbound == nil || pr.Packet == nil {
		return true, nil
	}
	p := pr.Packet
	source := ""
	for _, f := range c.filters {
		if mqttcommon.Match(f, p.Topic) {
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
	_, err := s.cm.Publish(ctx, &paho.Publish{Topic: topic, QoS: qos, Retain: retain, Payload: msg.Payload, Properties: props})
	if err != nil {
		return fmt.Errorf("publish to %q: %w", topic, err)
	}
	return nil
}

// Close disconnects and stops the connection manager.
func (s *session) Close(ctx context.Context) error {
	s.mu.Lock()
	up := s.up
	s.up = false
	s.mu.Unlock()
	var err error
	if up {
		err = s.cm.Disconnect(ctx)
	}
	s.stop()
	select {
	case <-s.cm.Done():
	case <-ctx.Done():
		return fmt.Errorf("%w: disconnect: %v", client.ErrTimeout, ctx.Err())
	}
	if err != nil && !errors.Is(err, autopaho.ConnectionDownError) {
		return fmt.Errorf("disconnect: %v", err)
	}
	return nil
}
