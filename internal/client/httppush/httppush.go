// Package httppush is the client of connections of type "http-push": each
// target is an HTTP request "<VERB>:<path>" against the connection's URI,
// sent with net/http, at most `parallelism` at a time, authenticated by the
// URI's user-info (basic) or by an OAuth 2 token (client-credentials or
// password grant, oauth.go). As HTTP holds no connection, "connected" means
// the endpoint accepts TCP (and TLS) connections and, with OAuth, a token
// was issued; while connected the endpoint is probed periodically so that an
// outage shows in the status.
package httppush

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

var (
	_ client.Client = (*Client)(nil)
	_ client.Tester = (*Client)(nil)
)

// Options tune the client; zero values take the defaults.
type Options struct {
	// ProbeInterval: how often a connected client checks that the endpoint
	// still accepts connections (default 10 s).
	ProbeInterval time.Duration
	// RequestTimeout bounds one request (Ditto's http-push request-timeout,
	// default 60 s); a connection's specificConfig idleTimeout overrides it,
	// as in Ditto.
	RequestTimeout time.Duration
	// TokenSkew: a token counts as expired this long before its expiry (default 60 s, Ditto's max-clock-skew).
	TokenSkew time.Duration
	// Proxy is Ditto's http-push proxy: when enabled, every request and
	// every probe goes through it.
	Proxy Proxy
}

// Proxy is an HTTP proxy that requests are tunnelled through with CONNECT,
// for http and https endpoints alike, as Ditto's HTTP client transport
// does.
type Proxy struct {
	Enabled bool
	Host    string
	Port    int
	// Username and Password authenticate to the proxy (basic) when both
	// are set.
	Username, Password string
}

// Validate refuses an enabled proxy without host or port, as Ditto refuses
// to start with one.
func (p Proxy) Validate() error {
	if p.Enabled && (p.Host == "" || p.Port <= 0 || p.Port > 65535) {
		return errors.New("the HTTP proxy is enabled (CONNECTIVITY_HTTP_PROXY_ENABLED) without a hostname " +
			"(CONNECTIVITY_HTTP_PROXY_HOST) and port (CONNECTIVITY_HTTP_PROXY_PORT)")
	}
	return nil
}

// DefaultRequestTimeout is Ditto's http-push request-timeout.
const DefaultRequestTimeout = 60 * time.Second

// DefaultTokenSkew is Ditto's http-push oauth2 max-clock-skew.
const DefaultTokenSkew = 60 * time.Second

func (o Options) withDefaults() Options {
	if o.ProbeInterval <= 0 {
		o.ProbeInterval = 10 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = DefaultRequestTimeout
	}
	if o.TokenSkew <= 0 {
		o.TokenSkew = DefaultTokenSkew
	}
	return o
}

// New is the Factory of "http-push" connections with default options.
func New(env client.Env) (client.Client, error) { return NewFactory(Options{})(env) }

// NewFactory returns a Factory with opts.
func NewFactory(opts Options) client.Factory {
	opts = opts.withDefaults()
	return func(env client.Env) (client.Client, error) {
		p, err := newProtocol(env, opts)
		if err != nil {
			return nil, err
		}
		return &Client{client.NewLifecycle(env, p, client.Options{Name: "http-push", Endpoint: p.ep.HostPort(), Shape: shape,
			PublishTimeout: p.timeout}), p}, nil
	}
}

// Client is the HTTP push client of one connection: the shared lifecycle,
// and Test.
type Client struct {
	*client.Lifecycle
	p *protocol
}

// protocol sends the requests of one connection; a session only probes.
type protocol struct {
	env  client.Env
	conn *model.Connection
	opts Options
	ep   client.Endpoint
	base string // scheme://host:port/path without user-info and trailing '/'
	http *http.Client
	sem  chan struct{}
	omit map[string]bool // methods sent without body

	timeout time.Duration // of one request
	dial    func(ctx context.Context, network, addr string) (net.Conn, error)

	basic  string // "Basic …" or ""
	oauth  *tokenSource
	signer signer // HMAC credentials, signing.go
}

// session probes the endpoint while the client is connected.
type session struct {
	p    *protocol
	r    *client.Reporter
	stop context.CancelFunc
	done chan struct{}
}

func newProtocol(env client.Env, opts Options) (*protocol, error) {
	c := env.Connection
	ep, err := client.ParseEndpoint(c)
	if err != nil {
		return nil, err
	}
	sc := c.SpecificConfig
	parallelism := 1
	if v := sc["parallelism"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%w: parallelism %q", client.ErrConfig, v)
		}
		parallelism = n
	}
	// Ditto bounds each request by idleTimeout, whose default is the
	// service's request-timeout; idle pooled connections close after it too.
	idle, timeout := 60*time.Second, opts.RequestTimeout
	if v := sc["idleTimeout"]; v != "" {
		// the validation's reading (a bare number is milliseconds, as
		// Typesafe's getDuration reads it)
		d, ok := model.ParseHoconDuration(v)
		if !ok || d < 0 {
			return nil, fmt.Errorf("%w: idleTimeout %q", client.ErrConfig, v)
		}
		idle = d
		if d > 0 {
			timeout = d
		}
	}
	omit := map[string]bool{"GET": true, "DELETE": true}
	if v, ok := sc["omitRequestBody"]; ok {
		omit = map[string]bool{}
		for _, m := range strings.Split(v, ",") {
			if m = strings.ToUpper(strings.TrimSpace(m)); m != "" {
				omit[m] = true
			}
		}
	}
	u, _ := url.Parse(c.URI) // ParseEndpoint succeeded
	u.User = nil
	base := strings.TrimSuffix(u.String(), "/")
	dial := (&net.Dialer{Timeout: 10 * time.Second, Control: env.DialControl(ep.Host)}).DialContext
	if opts.Proxy.Enabled {
		if err := opts.Proxy.Validate(); err != nil {
			return nil, fmt.Errorf("%w: %v", client.ErrConfig, err)
		}
		dial = opts.Proxy.dial
	}
	tr := &http.Transport{
		Proxy:               nil, // Proxy.dial tunnels instead, for http too
		DialContext:         dial,
		TLSClientConfig:     env.TLS,
		MaxConnsPerHost:     parallelism,
		MaxIdleConnsPerHost: parallelism,
		IdleConnTimeout:     idle,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	cl := &protocol{env: env, conn: c, opts: opts, ep: ep, base: base, omit: omit, timeout: timeout, dial: dial,
		http: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
		sem:  make(chan struct{}, parallelism)}
	if user, pass, ok := client.UserInfo(c); ok {
		cl.basic = "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	if cr := c.Credentials; isOAuth(cr) {
		ts, err := newTokenSource(cr, env, opts.TokenSkew)
		if err != nil {
			return nil, err
		}
		cl.oauth = ts
	}
	if cr := c.Credentials; cr != nil && cr.Type == "hmac" {
		sg, err := newSigner(cr)
		if err != nil {
			return nil, err
		}
		cl.signer = sg
	}
	return cl, nil
}

// Open checks that the endpoint accepts connections and, with OAuth,
// fetches the first token.
func (c *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	if err := c.probe(ctx); err != nil {
		return nil, err
	}
	if c.oauth != nil {
		if _, err := c.oauth.token(ctx, true); err != nil {
			return nil, err
		}
	}
	return &session{p: c, r: r}, nil
}

// Start starts probing.
func (s *session) Start(context.Context) error {
	ctx, stop := context.WithCancel(context.Background())
	s.stop, s.done = stop, make(chan struct{})
	go s.p.watch(ctx, s.done, s.r)
	return nil
}

// Publish sends msg (see protocol.publish).
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	return s.p.publish(ctx, msg)
}

// Close stops probing and drops idle connections.
func (s *session) Close(ctx context.Context) error {
	if s.stop != nil {
		s.stop()
		select {
		case <-s.done:
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", client.ErrTimeout, ctx.Err())
		}
	}
	s.p.http.CloseIdleConnections()
	return nil
}

// RequestTimeout is how long one request may take: the data plane gives a
// publish this long instead of its own bound.
func (c *Client) RequestTimeout() time.Duration { return c.p.timeout }

// Test checks reachability and credentials, leaving nothing running: with
// OAuth it fetches a fresh token (a refused one fails the test), with HMAC
// credentials it signs a request to the endpoint (not sent), so that a
// misconfiguration fails the test instead of the first publish.
func (c *Client) Test(ctx context.Context) error {
	p := c.p
	if err := p.probe(ctx); err != nil {
		return err
	}
	if p.oauth != nil {
		if _, err := p.oauth.token(ctx, true); err != nil {
			return err
		}
	}
	if p.signer != nil {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.base+"/", nil)
		if err == nil {
			err = p.signer.sign(req, nil, time.Now())
		}
		if err != nil {
			return fmt.Errorf("%w: signing a request to %s: %v", client.ErrConfig, p.ep.HostPort(), err)
		}
	}
	p.http.CloseIdleConnections()
	return nil
}

// probe opens (and closes) one TCP connection (through the proxy when one
// is configured), with a TLS handshake for https.
func (c *protocol) probe(ctx context.Context) error {
	conn, err := c.dial(ctx, "tcp", c.ep.HostPort())
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w: %v", client.ErrTimeout, err)
		}
		return fmt.Errorf("%w: %v", client.ErrUnreachable, err)
	}
	defer conn.Close()
	if c.ep.Secure() {
		cfg := c.env.TLS
		if cfg == nil {
			cfg = &tls.Config{ServerName: c.ep.Host, MinVersion: tls.VersionTLS12}
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake with %s failed: %v", c.ep.HostPort(), err)
		}
	}
	return nil
}

// watch probes the endpoint until stopped; the first failure reports the
// connection lost.
func (c *protocol) watch(ctx context.Context, done chan struct{}, r *client.Reporter) {
	defer close(done)
	t := time.NewTicker(c.opts.ProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, min(c.opts.ProbeInterval, 10*time.Second))
		err := c.probe(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			r.Lost(err)
			return
		}
	}
}

// publish sends msg to the target msg.Address ("<VERB>:<path>", placeholders
// already resolved); the headers become request headers. A status of 300
// or more is an error.
func (c *protocol) publish(ctx context.Context, msg client.Message) error {
	status, _, _, err := c.exchange(ctx, msg)
	if err != nil {
		return err
	}
	if status >= 300 {
		method, path, _ := strings.Cut(msg.Address, ":")
		return fmt.Errorf("%s %s: HTTP %d", strings.ToUpper(strings.TrimSpace(method)), path, status)
	}
	return nil
}

// Exchange sends msg as Publish does and returns the HTTP response whatever
// its status: the data plane turns it into the acknowledgement of the
// target's issued label or into the live response, as Ditto's HTTP binding
// does. err is set only when no response came.
func (c *Client) Exchange(ctx context.Context, msg client.Message) (status int, headers map[string]string, body []byte, err error) {
	return c.p.exchange(ctx, msg)
}

// maxResponseBody bounds the response body kept for an acknowledgement or
// live response.
const maxResponseBody = 1 << 20

func (c *protocol) exchange(ctx context.Context, msg client.Message) (int, map[string]string, []byte, error) {
	method, path, ok := strings.Cut(msg.Address, ":")
	method = strings.ToUpper(strings.TrimSpace(method))
	if !ok || method == "" {
		return 0, nil, nil, fmt.Errorf("%w: target address %q is not <VERB>:<path>", client.ErrConfig, msg.Address)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	select {
	case c.sem <- struct{}{}:
		defer func() { <-c.sem }()
	case <-ctx.Done():
		return 0, nil, nil, fmt.Errorf("%w: waiting for a free request slot: %v", client.ErrTimeout, ctx.Err())
	}
	target := c.base
	if path != "" {
		target += "/" + strings.TrimPrefix(path, "/")
	}
	target, err := withPathAndQuery(target, msg.Headers)
	if err != nil {
		return 0, nil, nil, err
	}
	for attempt := 0; ; attempt++ {
		resp, err := c.send(ctx, method, target, msg, attempt > 0)
		if err != nil {
			return 0, nil, nil, err
		}
		if resp.status == http.StatusUnauthorized && c.oauth != nil && attempt == 0 {
			continue // the token may have been revoked: fetch a new one once
		}
		return resp.status, resp.headers, resp.body, nil
	}
}

type response struct {
	status  int
	headers map[string]string
	body    []byte
}

func (c *protocol) send(ctx context.Context, method, target string, msg client.Message, freshToken bool) (response, error) {
	var body io.Reader
	var sent []byte
	if !c.omit[method] {
		body, sent = bytes.NewReader(msg.Payload), msg.Payload
	}
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return response{}, fmt.Errorf("%w: request: %v", client.ErrConfig, err)
	}
	for k, v := range msg.Headers {
		if strings.HasPrefix(k, "mqtt.") || reserved(k) {
			continue
		}
		req.Header.Set(k, v)
	}
	switch {
	case c.oauth != nil:
		tok, err := c.oauth.token(ctx, freshToken)
		if err != nil {
			return response{}, err
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.signer != nil:
		req.Host = signedHost(req) // the Host header sent is the host signed
		if err := c.signer.sign(req, sent, time.Now()); err != nil {
			return response{}, err
		}
	case c.basic != "":
		req.Header.Set("Authorization", c.basic)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return response{}, fmt.Errorf("%w: %s %s: %v", client.ErrUnreachable, method, redact(target), errors.Unwrap(err))
	}
	respBody, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseBody))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20)) // lets the connection be reused
	_ = resp.Body.Close()
	h := make(map[string]string, len(resp.Header))
	for k, v := range resp.Header {
		if len(v) > 0 {
			h[strings.ToLower(k)] = v[0]
		}
	}
	return response{status: resp.StatusCode, headers: h, body: respBody}, nil
}

// dial connects to addr through the proxy: an HTTP CONNECT, answered 2xx,
// leaves a tunnel to addr.
func (p Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	proxyAddr := net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
	conn, err := (&net.Dialer{Timeout: 10 * time.Second}).DialContext(ctx, network, proxyAddr)
	if err != nil {
		return nil, fmt.Errorf("HTTP proxy %s: %w", proxyAddr, err)
	}
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: addr}, Host: addr, Header: http.Header{}}
	if p.Username != "" && p.Password != "" {
		req.Header.Set("Proxy-Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(p.Username+":"+p.Password)))
	}
	if d, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Now()) })
	defer stop()
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, fmt.Errorf("HTTP proxy %s: CONNECT %s: %w", proxyAddr, addr, err)
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("HTTP proxy %s: CONNECT %s: %w", proxyAddr, addr, err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		conn.Close()
		return nil, fmt.Errorf("HTTP proxy %s refused CONNECT %s: %s", proxyAddr, addr, resp.Status)
	}
	if !stop() {
		conn.Close()
		return nil, fmt.Errorf("HTTP proxy %s: CONNECT %s: %w", proxyAddr, addr, ctx.Err())
	}
	_ = conn.SetDeadline(time.Time{})
	if br.Buffered() > 0 {
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

// bufferedConn is a tunnel whose first bytes were read with the proxy's
// answer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// The reserved headers (matched ignoring case, as Ditto does) set the
// request's path and query instead of being sent.
const (
	headerPath  = "http.path"
	headerQuery = "http.query"
)

func reserved(header string) bool {
	return strings.EqualFold(header, headerPath) || strings.EqualFold(header, headerQuery)
}

// withPathAndQuery applies the reserved headers to target: http.path
// replaces the whole path (the connection URI's included; a missing leading
// '/' is added) and http.query replaces the query, as Ditto's publisher does.
func withPathAndQuery(target string, headers map[string]string) (string, error) {
	path, hasPath, query, hasQuery := "", false, "", false
	for k, v := range headers {
		switch {
		case strings.EqualFold(k, headerPath):
			path, hasPath = v, true
		case strings.EqualFold(k, headerQuery):
			query, hasQuery = v, true
		}
	}
	if !hasPath && !hasQuery {
		return target, nil
	}
	u, err := url.Parse(target)
	if err != nil {
		return "", fmt.Errorf("%w: request URI %q: %v", client.ErrConfig, redact(target), err)
	}
	if hasPath {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		plain, err := url.PathUnescape(path)
		if err != nil {
			return "", fmt.Errorf("%w: header %s %q: %v", client.ErrConfig, headerPath, path, err)
		}
		u.Path, u.RawPath = plain, path
	}
	if hasQuery {
		u.RawQuery = query
	}
	return u.String(), nil
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil {
		u.User = nil
		u.RawQuery = ""
		return u.String()
	}
	return ""
}
