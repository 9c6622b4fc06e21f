package bridge

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Subscription is one stream a target receives from Ditto.
type Subscription struct {
	// Stream is the target topic: model.TopicTwinEvents, TopicLiveEvents,
	// TopicLiveMessages, TopicLiveCommands or TopicPolicyAnnouncements.
	Stream      string
	Namespaces  []string
	Filter      string // RQL; sent for twin and live events only (the caller filters the others)
	ExtraFields string // not sent for policy announcements (Ditto enriches none)
}

// Delivery is one signal Ditto sent on a target's session.
type Delivery struct {
	Message *protocol.Message
	Stream  string // the subscription it belongs to
	// Reply sends an acknowledgement or a live response back on the socket
	// that delivered the signal (only that socket routes it in Ditto), with
	// the correlation-id as received (Ditto may have suffixed "#n" to it).
	// Without a live socket it is dropped with a log entry.
	Reply func(*protocol.Message)
}

// Stats are the bridge's counters, for the lead's Prometheus gauges.
type Stats struct {
	Sessions     int    // sessions of the link (targets and command-only)
	SessionsOpen int    // of them with a live socket
	InFlight     int    // commands waiting for Ditto's answer
	Reconnects   uint64 // sockets opened after the first of their session
	Dropped      uint64 // deliveries dropped because a target's queue was full
	Timeouts     uint64 // commands answered with the bridge's own 408
}

// Link is one connection's set of sessions to Ditto's gateway (one Link per
// connection configuration; the data plane owns it).
type Link struct {
	cfg        Config
	id         string
	ackTimeout time.Duration

	mu      sync.Mutex
	closed  bool
	targets []*session
	cmds    map[string]*session // command-only sessions by joined subjects
	useSeq  uint64              // LRU clock of cmds

	wg                            sync.WaitGroup
	reconnects, dropped, timeouts atomic.Uint64
	nonce                         string // in suffixed wire correlation ids
	seq                           atomic.Uint64
}

// Open starts a Link of connection connectionID; sessions open as targets
// register and sources send. It never fails: an unreachable or refusing
// gateway shows in Status and Ready.
func Open(cfg Config, connectionID string) *Link {
	cfg = cfg.withDefaults()
	var b [4]byte
	_, _ = rand.Read(b[:])
	return &Link{cfg: cfg, id: connectionID, ackTimeout: ackTimeout, cmds: map[string]*session{},
		nonce: hex.EncodeToString(b[:])}
}

// Target registers a target: a session of its own with the target's
// subjects (pre-authenticated) and declared acknowledgement labels, its
// subscriptions sent and awaited after every (re)connect. deliver is called on
// the session's delivery goroutine for each signal of a subscribed stream; it
// may block briefly (the queue in front of it holds 200 signals, like Ditto's
// own per-session buffer, and drops above that).
func (l *Link) Target(subjects []string, declared []string, subs []Subscription, deliver func(Delivery)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	s := newSession(l, subjects, declared, subs, deliver)
	l.targets = append(l.targets, s)
	s.start()
}

// Send sends msg, consumed by a source, on a session with exactly these
// subjects: a target's session with the same subjects, else a command-only
// one from the pool (opened on first use; the least recently used is closed
// when the pool is full). Send blocks until msg is written or failed: it
// waits for an open socket and, when an answer is expected, for room under
// MaxInFlight, both at most until the command's timeout. When Ditto is down
// (the session's last attempt failed) a message that expects no answer fails
// at once.
//
// answer (nil: not wanted) is called exactly once:
//   - with Ditto's answer (response, error response or aggregated
//     acknowledgements) carrying msg's correlation-id;
//   - with 408 command.timeout when none came within the command's timeout
//     (timeout header, Ditto's syntax; 60 s when absent, at most 60 s) plus a
//     second of grace for Ditto's own timeout answer;
//   - with 503 gateway:service.unavailable when the session is down, dropped
//     before the answer, was closed (Close, or the pool closed it as least
//     recently used), or had no room under MaxInFlight in time (503 rather
//     than 429: the broker redelivers it, as Ditto settles 5xx);
//   - with nil after the write when Ditto answers nothing (response-required
//     false without requested acks, responses, acknowledgements).
//
// It runs on the caller's goroutine when Send fails or Ditto answers
// nothing; with Ditto's answer on the session's socket reader, answers in
// the order they arrived (no goroutine per answer); otherwise on a
// goroutine of its own. It must therefore not block, as it would hold up
// the session's socket (hand anything slow, such as a publish to a broker,
// to a goroutine), nor call the Link.
func (l *Link) Send(subjects []string, msg *protocol.Message, answer func(*protocol.Message)) {
	start := time.Now()
	timeout, _ := commandTimeout(msg.Headers)
	deadline := start.Add(timeout)
	t, _ := protocol.ParseTopic(msg.Topic)
	expects := answer != nil && expectsAnswer(msg, t)
	fail := func(e *ditto.Error) {
		if answer != nil {
			answer(errorAnswer(msg, e))
		}
	}
	s := l.sessionFor(subjects)
	if s == nil {
		fail(ditto.ServiceUnavailable())
		return
	}
	if !expects {
		c, err := s.acquire(deadline, nil)
		if err == nil {
			err = c.writeMessage(msg)
		}
		if err != nil {
			s.log.Warn().Str("correlation-id", msg.Headers[ditto.HeaderCorrelationID]).Err(err).
				Msg("signal to Ditto dropped")
			fail(ditto.ServiceUnavailable())
			return
		}
		if answer != nil {
			answer(nil)
		}
		return
	}
	orig, had := msg.Headers[ditto.HeaderCorrelationID]
	if !had || orig == "" {
		orig = "dittoconn-" + l.nonce + "-" + strconv.FormatUint(l.seq.Add(1), 10)
	}
	p := &pending{req: msg, orig: orig, answer: answer, timeout: timeout, expires: deadline.Add(answerGrace)}
	c, err := s.acquire(deadline, p)
	if err != nil {
		fail(ditto.ServiceUnavailable())
		return
	}
	wire := msg
	if p.wire != orig || !had {
		wire = withCorrelationID(msg, p.wire)
	}
	if err := c.writeMessage(wire); err != nil {
		c.close(err)
		if s.take(p) { // unless already answered (the drop, Close)
			answer(p.failure(ditto.ServiceUnavailable()))
		}
	}
}

// wireID is the correlation id a colliding command goes out with.
func (l *Link) wireID(orig string) string {
	return orig + "_dittoconn-" + l.nonce + "-" + strconv.FormatUint(l.seq.Add(1), 10)
}

// sessionFor finds or opens the session Send uses for subjects; nil when the
// link is closed.
func (l *Link) sessionFor(subjects []string) *session {
	key := strings.Join(subjects, ",")
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	for _, s := range l.targets {
		if s.key == key {
			return s
		}
	}
	l.useSeq++
	if s, ok := l.cmds[key]; ok {
		s.lastUse = l.useSeq
		return s
	}
	if len(l.cmds) >= l.cfg.CommandSessions {
		var lru *session
		for _, s := range l.cmds {
			if lru == nil || s.lastUse < lru.lastUse {
				lru = s
			}
		}
		delete(l.cmds, lru.key)
		lru.log.Info().Msg("command session closed: the pool is full and it was used least recently")
		go lru.stop()
	}
	s := newSession(l, subjects, nil, nil, nil)
	s.lastUse = l.useSeq
	l.cmds[key] = s
	s.start()
	return s
}

// Ready reports whether every target's subscriptions are confirmed by
// Ditto's ":ACK" on a live socket (true without targets).
func (l *Link) Ready() bool {
	l.mu.Lock()
	targets := append([]*session(nil), l.targets...)
	closed := l.closed
	l.mu.Unlock()
	if closed {
		return false
	}
	for _, s := range targets {
		if !s.ready() {
			return false
		}
	}
	return true
}

// Status is one entry per session, Type "client" (the resource type Ditto's
// connection status and its UI know), Address the session's subjects, and
// Details "ditto session [<subjects>] <uri>: <state>": open, connecting,
// awaiting the ":ACK" of a subscription, failed (why; reconnecting), or
// misconfigured (401/403 on the upgrade, a refused subscription or label).
func (l *Link) Status() []client.ResourceStatus {
	l.mu.Lock()
	all := l.sessionsLocked()
	l.mu.Unlock()
	out := make([]client.ResourceStatus, 0, len(all))
	for _, s := range all {
		out = append(out, s.status())
	}
	return out
}

// sessionsLocked is every session of the link, targets first (l.mu held).
func (l *Link) sessionsLocked() []*session {
	all := append([]*session(nil), l.targets...)
	for _, s := range l.cmds {
		all = append(all, s)
	}
	return all
}

// Stats reads the counters.
func (l *Link) Stats() Stats {
	l.mu.Lock()
	all := l.sessionsLocked()
	l.mu.Unlock()
	st := Stats{Sessions: len(all), Reconnects: l.reconnects.Load(), Dropped: l.dropped.Load(), Timeouts: l.timeouts.Load()}
	for _, s := range all {
		s.mu.Lock()
		if s.conn != nil {
			st.SessionsOpen++
		}
		st.InFlight += len(s.pending)
		s.mu.Unlock()
	}
	return st
}

// Close closes every session (their unanswered commands get 503) and waits
// for their goroutines.
func (l *Link) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		l.wg.Wait()
		return
	}
	l.closed = true
	all := l.sessionsLocked()
	l.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
	l.wg.Wait()
}
