package bridge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

const (
	dialTimeout  = 10 * time.Second // TCP, TLS and the upgrade together (and the token)
	writeTimeout = 10 * time.Second // one frame, pings included
	closeTimeout = time.Second      // the close frame on Close
	// healthyAfter: a socket that stayed up this long resets the backoff.
	healthyAfter = time.Minute
	// queueSize bounds a target's undelivered signals, as Ditto's gateway
	// bounds its own per-session buffer (websocket.publisher
	// backpressure-buffer-size = 200); above it signals are dropped, which
	// Ditto's at-most-once pub/sub allows.
	queueSize = 200
	// maxFrame bounds one frame read from the gateway.
	maxFrame = 16 << 20
	// ackTimeout: a socket whose subscriptions Ditto has neither confirmed
	// nor refused by then is closed and dialled again.
	ackTimeout = 30 * time.Second
)

var (
	errClosed = errors.New("session closed")
	errDown   = errors.New("the gateway is not reachable")
	errWait   = errors.New("no open session with room for the command within its timeout")
)

// session is one WebSocket session to the gateway with one authorization
// context, kept open (reconnecting) until stopped.
type session struct {
	l        *Link
	key      string // subjects joined by ","
	subjects []string
	declared []string
	starts   []string // START-SEND-… messages, one per stream
	streams  map[string]bool
	invalid  string // a subscription Ditto's WebSocket cannot carry
	deliver  func(Delivery)
	log      zerolog.Logger
	queue    chan queued
	ctx      context.Context
	cancel   context.CancelFunc
	lastUse  uint64 // LRU clock of command sessions; guarded by Link.mu

	expiry time.Time // of the current token (jwt); run goroutine only

	mu      sync.Mutex
	conn    *wsConn // the live socket, nil between sockets
	down    bool    // the last attempt failed or the last socket dropped
	lastErr error   // why
	closed  bool
	acked   map[string]bool // streams confirmed on conn
	refused string          // Ditto's error refusing a subscription or a label on conn
	pending map[string]*pending
	changed chan struct{} // closed and replaced on every change waiters care about
	repr    client.Status // status last reported, and since when
	since   time.Time
}

// pending is a command waiting for Ditto's answer.
type pending struct {
	req     *protocol.Message
	orig    string // the device's correlation id
	wire    string // the id it went out with (orig unless it collided)
	answer  func(*protocol.Message)
	timeout time.Duration
	expires time.Time
	timer   *time.Timer
}

type queued struct {
	m      *protocol.Message
	stream string
	c      *wsConn
}

func newSession(l *Link, subjects, declared []string, subs []Subscription, deliver func(Delivery)) *session {
	s := &session{l: l, key: strings.Join(subjects, ","), subjects: append([]string(nil), subjects...),
		declared: append([]string(nil), declared...), deliver: deliver, streams: map[string]bool{},
		pending: map[string]*pending{}, changed: make(chan struct{}), repr: client.StatusUnknown, since: l.cfg.Now()}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	kind := "command"
	if deliver != nil {
		kind = "target"
		s.queue = make(chan queued, queueSize)
	}
	s.log = l.cfg.Logger.With().Str("connection", l.id).Str("session", kind).Str("subjects", s.key).Logger()
	// a second START of a stream replaces the first in Ditto: keep the last
	last := map[string]int{}
	for i, sub := range subs {
		last[sub.Stream] = i
	}
	for i, sub := range subs {
		if last[sub.Stream] != i {
			continue
		}
		m, err := startMessage(sub)
		if err != nil {
			s.invalid = err.Error()
			s.log.Error().Err(err).Msg("subscription refused")
			continue
		}
		s.starts = append(s.starts, m)
		s.streams[sub.Stream] = true
	}
	return s
}

// start runs the session's goroutines (Link.mu held).
func (s *session) start() {
	s.l.wg.Add(1)
	go s.run()
	if s.deliver != nil {
		s.l.wg.Add(1)
		go s.deliverLoop()
	}
}

// stop ends the session; run answers its unanswered commands with 503.
func (s *session) stop() { s.cancel() }

// broadcast wakes every waiter (s.mu held) and re-evaluates the status.
func (s *session) broadcast() {
	close(s.changed)
	s.changed = make(chan struct{})
	st, _ := s.describe()
	if st != s.repr {
		s.repr, s.since = st, s.l.cfg.Now()
	}
}

// run dials, serves and redials with backoff until the session stops.
func (s *session) run() {
	defer s.l.wg.Done()
	defer s.finish()
	attempt, sockets := 0, 0
	for s.ctx.Err() == nil {
		c, err := s.dial()
		var delay time.Duration
		if err != nil {
			if s.ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			s.down, s.lastErr = true, err
			s.broadcast()
			s.mu.Unlock()
			delay = backoff(s.l.cfg.ReconnectMin, s.l.cfg.ReconnectMax, attempt, rand.Float64)
			if isMisconfigured(err) {
				// credentials do not heal by themselves: retry slowly
				delay = backoff(s.l.cfg.ReconnectMax, s.l.cfg.ReconnectMax, 0, rand.Float64)
			}
			attempt++
			s.log.Warn().Err(err).Dur("retry_in", delay).Msg("session to Ditto failed")
		} else {
			if sockets++; sockets > 1 {
				s.l.reconnects.Add(1)
			}
			up := time.Now()
			err := s.serve(c)
			c.close(err)
			s.dropConn(c, err)
			if s.ctx.Err() != nil {
				return
			}
			attempt = afterSocket(attempt, time.Since(up))
			delay = backoff(s.l.cfg.ReconnectMin, s.l.cfg.ReconnectMax, attempt, rand.Float64)
			attempt++
			s.log.Warn().Err(err).Dur("retry_in", delay).Msg("session to Ditto dropped")
		}
		t := time.NewTimer(delay)
		select {
		case <-s.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// afterSocket is the backoff attempt after a socket that stayed up for up:
// a healthy minute starts the backoff over.
func afterSocket(attempt int, up time.Duration) int {
	if up >= healthyAfter {
		return 0
	}
	return attempt
}

// backoff is the delay before attempt n (0-based): min doubled n times,
// capped at max, with equal jitter (half fixed, half random) and never
// below min, so sessions of many connections do not reconnect in step.
func backoff(lo, hi time.Duration, n int, rnd func() float64) time.Duration {
	d := hi
	if n < 62 && lo<<n > 0 && lo<<n < hi {
		d = lo << n
	}
	j := d/2 + time.Duration(rnd()*float64(d/2))
	return max(j, lo)
}

// dial opens one socket: pre-authenticated subjects or a bearer token, the
// connection id as origin, the declared labels.
func (s *session) dial() (*wsConn, error) {
	cfg := s.l.cfg
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	defer cancel()
	h := http.Header{}
	h.Set("x-correlation-id", s.l.id)
	if len(s.declared) > 0 {
		// a Ditto header holding a JSON array, as the gateway reads it
		b, _ := json.Marshal(s.declared)
		h.Set("declared-acks", string(b))
	}
	switch cfg.Auth {
	case AuthJWT:
		if cfg.Token == nil {
			return nil, misconfigured{"jwt without a token source"}
		}
		tok, exp, err := cfg.Token(ctx)
		if err != nil {
			return nil, err
		}
		s.expiry = exp
		h.Set("Authorization", "Bearer "+tok)
	default:
		h.Set("x-ditto-pre-authenticated", s.key)
	}
	d := websocket.Dialer{HandshakeTimeout: dialTimeout} // no proxy: a proxy would overwrite the pre-authentication
	if strings.HasPrefix(cfg.URI, "wss:") {
		tc, err := cfg.tlsConfig()
		if err != nil {
			return nil, misconfigured{"TLS CA: " + err.Error()}
		}
		d.TLSClientConfig = tc
	}
	ws, resp, err := d.DialContext(ctx, cfg.URI, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		if resp != nil {
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
				return nil, misconfigured{fmt.Sprintf("%d on the upgrade", resp.StatusCode)}
			}
			return nil, fmt.Errorf("upgrade refused with %d", resp.StatusCode)
		}
		return nil, err
	}
	ws.SetReadLimit(maxFrame)
	c := &wsConn{ws: ws}
	ws.SetPongHandler(func(string) error { c.unanswered.Store(0); return nil })
	return c, nil
}

// serve runs one socket: subscribes, pings, refreshes the token, and
// returns why it ended. The reader is the only goroutine reading c.
func (s *session) serve(c *wsConn) error {
	// the socket is the session's before its first frame is read: Ditto may
	// refuse a declared label right after the upgrade
	s.mu.Lock()
	s.conn, s.down, s.lastErr, s.acked, s.refused = c, false, nil, map[string]bool{}, ""
	s.broadcast()
	s.mu.Unlock()
	readerDone := make(chan error, 1)
	go s.read(c, readerDone)
	s.log.Info().Int("subscriptions", len(s.starts)).Msg("session to Ditto open")
	for _, m := range s.starts {
		if err := c.writeText(m); err != nil {
			break // the reader ends with the socket
		}
	}
	ping := time.NewTicker(s.l.cfg.PingInterval)
	defer ping.Stop()
	refresh := time.NewTimer(time.Hour)
	refresh.Stop()
	if !s.expiry.IsZero() {
		refresh.Reset(time.Until(s.expiry) * 3 / 4)
	}
	defer refresh.Stop()
	acks := time.NewTimer(s.l.ackTimeout)
	defer acks.Stop()
	for {
		select {
		case <-acks.C:
			s.mu.Lock()
			missing := len(s.unconfirmed()) > 0 && s.refused == ""
			s.mu.Unlock()
			if missing {
				c.close(fmt.Errorf("no :ACK for every subscription within %v", s.l.ackTimeout))
			}
		case err := <-readerDone:
			return c.reason(err)
		case <-s.ctx.Done():
			c.closeGracefully()
			<-readerDone
			return errClosed
		case <-ping.C:
			if c.unanswered.Load() >= 2 {
				c.close(errors.New("two pings without a pong"))
				continue
			}
			c.unanswered.Add(1)
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(writeTimeout)); err != nil {
				c.close(err)
			}
		case <-refresh.C:
			refresh.Reset(s.refreshToken(c))
		}
	}
}

// refreshToken sends a new token on c (Ditto closes the socket when the
// one it opened with expires) and returns when to refresh next.
func (s *session) refreshToken(c *wsConn) time.Duration {
	ctx, cancel := context.WithTimeout(s.ctx, dialTimeout)
	defer cancel()
	tok, exp, err := s.l.cfg.Token(ctx)
	if err == nil {
		err = c.writeText(jwtMessage(tok))
	}
	if err != nil {
		retry := min(10*time.Second, max(time.Until(s.expiry)/2, 100*time.Millisecond))
		s.log.Warn().Err(err).Dur("retry_in", retry).Msg("token refresh failed")
		return retry
	}
	s.expiry = exp
	s.log.Debug().Time("expiry", exp).Msg("token refreshed in session")
	return max(time.Until(exp)*3/4, 100*time.Millisecond)
}

// read reads c until it fails. It never blocks on anything but the
// socket: answers go to their commands' answer functions, which must not
// block (Send), signals to the bounded queue.
func (s *session) read(c *wsConn, done chan<- error) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			done <- err
			return
		}
		s.handle(c, data)
	}
}

func (s *session) handle(c *wsConn, data []byte) {
	kind, stream, m, err := parseFrame(data)
	switch {
	case err != nil:
		s.log.Warn().Err(err).Int("bytes", len(data)).Msg("frame from Ditto not understood: dropped")
	case kind == frameAck:
		s.mu.Lock()
		if s.conn == c {
			s.acked[stream] = true
			s.broadcast()
		}
		s.mu.Unlock()
		s.log.Debug().Str("stream", stream).Msg("subscription confirmed")
	case kind == frameMessage && m.Status != 0:
		if s.answered(m) {
			return
		}
		cid := m.Headers[ditto.HeaderCorrelationID]
		if m.Status >= 400 && (cid == "" || cid == s.l.id) && endsSession(m) {
			// Ditto closes the socket next (an expired or refused token):
			// the session reconnects, nothing was refused for good
			s.log.Warn().Int("status", m.Status).RawJSON("error", jsonOrNull(m.Value)).Msg("Ditto ends the session")
			return
		}
		if m.Status >= 400 && (cid == "" || cid == s.l.id) {
			// refused on the session itself: a subscription's filter, or a
			// declared label another session holds
			s.mu.Lock()
			if s.conn == c {
				s.refused = errorText(m)
				s.broadcast()
			}
			s.mu.Unlock()
			s.log.Error().Int("status", m.Status).RawJSON("error", jsonOrNull(m.Value)).Msg("Ditto refused the session's subscription or label")
			return
		}
		s.log.Debug().Str("correlation-id", cid).Int("status", m.Status).Msg("answer without a waiting command (late or unknown): dropped")
	case kind == frameMessage:
		_, st, err := protocol.Classify(m)
		if err != nil || st == "" || !s.streams[st] || s.queue == nil {
			s.log.Debug().Str("topic", m.Topic).Msg("signal of no subscribed stream: dropped")
			return
		}
		select {
		case s.queue <- queued{m: m, stream: st, c: c}:
		default:
			s.l.dropped.Add(1)
			s.log.Warn().Str("topic", m.Topic).Str("correlation-id", m.Headers[ditto.HeaderCorrelationID]).
				Msg("delivery queue full: signal dropped")
		}
	}
}

// endsSession reports whether m is the error Ditto's gateway sends
// before it closes a session itself (gateway:websocket.session.closed when
// a refreshed token is invalid or names another subject,
// gateway:websocket.session.expired when the token ran out).
func endsSession(m *protocol.Message) bool {
	var e ditto.Error
	return json.Unmarshal(m.Value, &e) == nil && strings.HasPrefix(e.Code, "gateway:websocket.session.")
}

func errorText(m *protocol.Message) string {
	var e ditto.Error
	if json.Unmarshal(m.Value, &e) == nil && e.Code != "" {
		return fmt.Sprintf("%d %s: %s", m.Status, e.Code, e.Message)
	}
	return fmt.Sprintf("status %d", m.Status)
}

func jsonOrNull(b []byte) []byte {
	if len(b) == 0 || !json.Valid(b) {
		return []byte("null")
	}
	return b
}

// answered hands m to the command waiting for it, if any, on the reader:
// answers reach their commands in the order Ditto sent them, without a
// goroutine of their own (Send's answer must not block).
func (s *session) answered(m *protocol.Message) bool {
	wire := m.Headers[ditto.HeaderCorrelationID]
	s.mu.Lock()
	p := s.pending[wire]
	if p == nil || wire == "" {
		s.mu.Unlock()
		return false
	}
	delete(s.pending, wire)
	p.timer.Stop()
	s.broadcast()
	s.mu.Unlock()
	if p.wire != p.orig {
		m = restoreCorrelationID(m, p.wire, p.orig)
	}
	p.answer(m)
	return true
}

// take removes p unless it was answered already.
func (s *session) take(p *pending) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending[p.wire] != p {
		return false
	}
	delete(s.pending, p.wire)
	p.timer.Stop()
	s.broadcast()
	return true
}

// failure is the synthesized error answer to p's command.
func (p *pending) failure(e *ditto.Error) *protocol.Message {
	h := make(map[string]string, len(p.req.Headers)+1)
	for k, v := range protocol.ExternalHeaders(p.req.Headers) {
		h[k] = v
	}
	h[ditto.HeaderCorrelationID] = p.orig
	return protocol.ErrorResponseFor(p.req.Topic, h, e)
}

// expire answers p with 408 when Ditto stayed silent.
func (s *session) expire(p *pending) {
	if s.take(p) {
		s.l.timeouts.Add(1)
		s.log.Warn().Str("correlation-id", p.orig).Dur("timeout", p.timeout).Msg("no answer from Ditto: 408")
		p.answer(p.failure(ditto.CommandTimeout(p.timeout.Milliseconds())))
	}
}

// acquire waits until the session has a socket and, for a command waiting
// for an answer (p), room under MaxInFlight, and registers p there. A
// signal without answer (p nil) fails at once while Ditto is down.
func (s *session) acquire(deadline time.Time, p *pending) (*wsConn, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, errClosed
		}
		if s.conn != nil && (p == nil || len(s.pending) < s.l.cfg.MaxInFlight) {
			c := s.conn
			if p != nil {
				p.wire = p.orig
				if _, clash := s.pending[p.wire]; clash {
					p.wire = s.l.wireID(p.orig)
				}
				s.pending[p.wire] = p
				p.timer = time.AfterFunc(time.Until(p.expires), func() { s.expire(p) })
			}
			s.mu.Unlock()
			return c, nil
		}
		if s.conn == nil && s.down && p == nil {
			s.mu.Unlock()
			return nil, errDown
		}
		ch := s.changed
		s.mu.Unlock()
		if timer == nil {
			timer = time.NewTimer(time.Until(deadline))
		}
		select {
		case <-ch:
		case <-timer.C:
			return nil, errWait
		}
	}
}

// dropConn forgets c and answers its unanswered commands with 503 (the
// broker redelivers them; the bridge never retransmits by itself).
func (s *session) dropConn(c *wsConn, err error) {
	s.mu.Lock()
	if s.conn == c {
		s.conn, s.acked, s.refused = nil, nil, ""
	}
	s.down, s.lastErr = true, err
	lost := s.takePending()
	s.broadcast()
	s.mu.Unlock()
	s.fail(lost)
}

// finish closes the session for good.
func (s *session) finish() {
	s.mu.Lock()
	s.closed, s.conn, s.acked = true, nil, nil
	lost := s.takePending()
	s.broadcast()
	s.mu.Unlock()
	s.fail(lost)
	s.log.Info().Msg("session to Ditto closed")
}

func (s *session) takePending() []*pending {
	lost := make([]*pending, 0, len(s.pending))
	for _, p := range s.pending {
		p.timer.Stop()
		lost = append(lost, p)
	}
	clear(s.pending)
	return lost
}

func (s *session) fail(lost []*pending) {
	if len(lost) > 0 {
		s.log.Warn().Int("commands", len(lost)).Msg("session dropped before Ditto answered: 503")
	}
	for _, p := range lost {
		go p.answer(p.failure(ditto.ServiceUnavailable()))
	}
}

// deliverLoop calls the target's deliver for each queued signal.
func (s *session) deliverLoop() {
	defer s.l.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case q := <-s.queue:
			s.deliver(Delivery{Message: q.m, Stream: q.stream, Reply: s.replier(q.c, q.m.Headers[ditto.HeaderCorrelationID])})
		}
	}
}

// replier answers on the socket c that delivered a signal, under the
// correlation id it arrived with.
func (s *session) replier(c *wsConn, received string) func(*protocol.Message) {
	return func(r *protocol.Message) {
		out := r
		if received != "" {
			out = withCorrelationID(r, received)
		}
		if err := c.writeMessage(out); err != nil {
			s.log.Warn().Err(err).Str("correlation-id", received).Str("topic", r.Topic).
				Msg("reply to Ditto dropped: the socket that delivered the signal is gone")
		}
	}
}

// ready: a socket is up and Ditto confirmed every subscription on it.
func (s *session) ready() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, _ := s.describe()
	return st == client.StatusOpen
}

// describe is the session's status and the text after "<subjects>: " (s.mu held).
func (s *session) describe() (client.Status, string) {
	switch {
	case s.closed:
		return client.StatusClosed, "closed"
	case s.invalid != "":
		return client.StatusMisconfigured, "misconfigured (" + s.invalid + ")"
	case s.conn != nil && s.refused != "":
		return client.StatusMisconfigured, "misconfigured (Ditto refused: " + s.refused + ")"
	case s.conn != nil:
		if waiting := s.unconfirmed(); len(waiting) > 0 {
			return client.StatusUnknown, "connected, awaiting " + strings.Join(waiting, ", ")
		}
		return client.StatusOpen, "open"
	case s.down && isMisconfigured(s.lastErr):
		return client.StatusMisconfigured, "misconfigured (" + s.lastErr.Error() + "); retrying"
	case s.down:
		return client.StatusFailed, "failed (" + fmt.Sprint(s.lastErr) + "); reconnecting"
	}
	return client.StatusUnknown, "connecting"
}

// unconfirmed are the ":ACK"s still missing on the socket, sorted (s.mu held).
func (s *session) unconfirmed() []string {
	var waiting []string
	for stream := range s.streams {
		if !s.acked[stream] {
			waiting = append(waiting, controls[stream].start+":ACK")
		}
	}
	slices.Sort(waiting)
	return waiting
}

func (s *session) status() client.ResourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, text := s.describe()
	rec := client.RecoveryOngoing
	switch st {
	case client.StatusOpen:
		rec = client.RecoverySucceeded
	case client.StatusClosed:
		rec = client.RecoveryUnknown
	}
	return client.ResourceStatus{Type: "client", Address: s.key, Status: st, RecoveryStatus: rec,
		Details: "ditto session [" + s.key + "] " + maskURI(s.l.cfg.URI) + ": " + text, Since: s.since}
}

// wsConn is one socket. Writes are serialised with a deadline each; Close
// and WriteControl may run beside them (gorilla allows that).
type wsConn struct {
	ws         *websocket.Conn
	wmu        sync.Mutex
	unanswered atomic.Int32 // pings since the last pong
	once       sync.Once
	cause      atomic.Value // error that closed it
}

func (c *wsConn) writeText(s string) error { return c.write([]byte(s)) }

func (c *wsConn) writeMessage(m *protocol.Message) error { return c.write(protocol.Encode(m)) }

func (c *wsConn) write(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.cause.Load() != nil {
		return errClosed
	}
	_ = c.ws.SetWriteDeadline(time.Now().Add(writeTimeout))
	err := c.ws.WriteMessage(websocket.TextMessage, b)
	if err != nil {
		c.close(err)
	}
	return err
}

// close ends the socket; the reader then returns and the session redials.
func (c *wsConn) close(err error) {
	c.once.Do(func() {
		c.cause.Store(errBox{err})
		_ = c.ws.Close()
	})
}

func (c *wsConn) closeGracefully() {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(closeTimeout))
	c.close(errClosed)
}

// reason is why the socket ended: the cause it was closed for, else the
// reader's error.
func (c *wsConn) reason(readErr error) error {
	if b, ok := c.cause.Load().(errBox); ok && b.err != nil {
		return b.err
	}
	return readErr
}

type errBox struct{ err error }
