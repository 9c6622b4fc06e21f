package connection

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/dataplane"
)

// Runners is the set of client goroutines of all grains of one system: it
// bounds how many connect at once and lets the system stop them all. It
// bounds testConnection's clients alike, apart, so that tests never delay
// the connects of open connections.
type Runners struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
	tests  chan struct{}
}

// DefaultMaxConnecting is how many connect attempts (and as many tests) run
// at once, over all connections, unless configured otherwise.
const DefaultMaxConnecting = 64

// NewRunners allows maxConnecting connect attempts at a time, and as many
// tests (≤0: DefaultMaxConnecting).
func NewRunners(maxConnecting int) *Runners {
	if maxConnecting <= 0 {
		maxConnecting = DefaultMaxConnecting
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Runners{ctx: ctx, cancel: cancel, sem: make(chan struct{}, maxConnecting),
		tests: make(chan struct{}, maxConnecting)}
}

// test runs fn when a test slot is free; it waits at most until ctx ends
// (then ctx's error, fn not run).
func (rs *Runners) test(ctx context.Context, fn func() error) error {
	select {
	case rs.tests <- struct{}{}:
		defer func() { <-rs.tests }()
	case <-ctx.Done():
		return ctx.Err()
	}
	return fn()
}

// Stop closes every client (each sends its closed announcement first) and
// waits for them, at most timeout; false when some did not finish in time.
func (rs *Runners) Stop(timeout time.Duration) bool {
	rs.cancel()
	done := make(chan struct{})
	go func() { rs.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

// reportKind says what a runner reports to its grain.
type reportKind int

const (
	repFailed       reportKind = iota // a connect attempt failed; the next follows after a backoff
	repRetrying                       // a new connect attempt starts
	repConnected                      // connected (again)
	repLost                           // the connection dropped
	repReconnecting                   // dropped, the client's library is recovering by itself
	repStopped                        // stopped for good (after stop or system shutdown)
)

// clientReport is a runner's message to its grain (delivered into the
// actor's mailbox; the runner never touches grain state).
type clientReport struct {
	gen    uint64
	idx    int
	kind   reportKind
	err    error
	client client.Client // repConnected
	at     time.Time
	// wasConnected: repStopped of a client that was connected (a graceful
	// disconnect happened).
	wasConnected bool
}

// runnerSpec is everything a runner goroutine needs; it shares nothing
// mutable with the grain.
type runnerSpec struct {
	gen            uint64
	idx            int
	connectionID   string
	env            client.Env // Events is set by the runner
	factory        client.Factory
	backoff        client.Backoff
	connectTimeout time.Duration
	prev           []<-chan struct{} // runners that must finish before this one connects
	send           func(any)         // delivers into the grain's mailbox
	now            func() time.Time
	log            zerolog.Logger
	plane          *dataplane.Plane // data plane of this configuration (nil-safe)
}

// runner is the grain's handle on one client goroutine, and the grain's view
// of its state (touched by the grain only).
type runner struct {
	gen    uint64
	idx    int
	cancel context.CancelFunc
	done   chan struct{}

	status   client.Status
	recovery client.Recovery
	details  string
	since    time.Time
	client   client.Client // set while connected
	lastErr  error
}

const (
	announceTimeout   = 3 * time.Second // Ditto's disconnect-announcement-timeout
	disconnectTimeout = 5 * time.Second // Ditto's disconnecting-max-timeout
)

// startRunner starts the goroutine of spec within rs.
func startRunner(rs *Runners, spec runnerSpec, now time.Time) *runner {
	ctx, cancel := context.WithCancel(rs.ctx)
	r := &runner{gen: spec.gen, idx: spec.idx, cancel: cancel, done: make(chan struct{}),
		status: client.StatusUnknown, recovery: client.RecoveryOngoing, details: "CONNECTING", since: now}
	if rs.ctx.Err() != nil {
		// the system is stopping: no new clients
		close(r.done)
		go spec.report(clientReport{kind: repStopped})
		return r
	}
	rs.wg.Add(1)
	go func() {
		defer rs.wg.Done()
		defer close(r.done)
		spec.run(ctx, rs.sem)
	}()
	return r
}

func (s *runnerSpec) report(rep clientReport) {
	rep.gen, rep.idx, rep.at = s.gen, s.idx, s.now()
	s.send(&rep)
}

// run connects with backoff until ctx ends, then disconnects gracefully.
func (s *runnerSpec) run(ctx context.Context, sem chan struct{}) {
	for _, p := range s.prev {
		select {
		case <-p:
		case <-ctx.Done():
			s.report(clientReport{kind: repStopped})
			return
		}
	}
	attempt := 0
	for {
		if attempt > 0 {
			s.report(clientReport{kind: repRetrying})
		}
		cl, events, err := s.connect(ctx, sem)
		if ctx.Err() != nil {
			if cl != nil {
				s.closeClient(cl)
			}
			s.report(clientReport{kind: repStopped})
			return
		}
		if err != nil {
			if cl != nil {
				s.closeClient(cl)
			}
			delay := s.backoff.Delay(attempt)
			attempt++
			s.log.Debug().Err(err).Dur("retry_in", delay).Msg("connect failed")
			s.report(clientReport{kind: repFailed, err: err})
			if !sleep(ctx, delay) {
				s.report(clientReport{kind: repStopped})
				return
			}
			continue
		}
		attempt = 0
		s.sendAnnouncement(cl, client.AnnouncementOpened)
		s.plane.Connected(s.idx, cl) // subscribed before anyone sees it open
		s.report(clientReport{kind: repConnected, client: cl})
		lost := s.watch(ctx, cl, events)
		s.plane.Disconnected(s.idx)
		if !lost {
			s.sendAnnouncement(cl, client.AnnouncementClosed)
			s.closeClient(cl)
			s.report(clientReport{kind: repStopped, wasConnected: true})
			return
		}
		s.closeClient(cl)
		// reconnect at once; further failures back off
		attempt = 1
	}
}

// connect builds a fresh client and connects it, one attempt.
func (s *runnerSpec) connect(ctx context.Context, sem chan struct{}) (client.Client, <-chan client.Event, error) {
	select {
	case sem <- struct{}{}:
		defer func() { <-sem }()
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	}
	events := make(chan client.Event, 16)
	env := s.env
	env.Events = func(ev client.Event) {
		select {
		case events <- ev:
		default: // the runner only needs the latest happenings
		}
	}
	cl, err := s.factory(env)
	if err != nil {
		return nil, nil, err
	}
	s.plane.Bind(s.idx, cl) // it may consume (and answer) before it reports connected
	cctx, cancel := context.WithTimeout(ctx, s.connectTimeout)
	defer cancel()
	err = cl.Connect(cctx)
	if err != nil && cctx.Err() != nil && ctx.Err() == nil && !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, client.ErrUnreachable) {
		err = errors.Join(client.ErrTimeout, err)
	}
	return cl, events, err
}

// watch waits for stop (false) or a lost connection (true), reporting a
// library's own recovery on the way.
func (s *runnerSpec) watch(ctx context.Context, cl client.Client, events <-chan client.Event) bool {
	recovering := false
	for {
		select {
		case <-ctx.Done():
			return false
		case ev := <-events:
			switch ev.Kind {
			case client.ConnectionLost:
				s.report(clientReport{kind: repLost, err: ev.Err})
				return true
			case client.Reconnecting:
				recovering = true
				s.report(clientReport{kind: repReconnecting, err: ev.Err})
			case client.Connected:
				if recovering {
					recovering = false
					s.sendAnnouncement(cl, client.AnnouncementOpened)
					s.report(clientReport{kind: repConnected, client: cl})
				}
			}
		}
	}
}

func (s *runnerSpec) closeClient(cl client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	if err := cl.Close(ctx); err != nil {
		s.log.Debug().Err(err).Msg("close failed")
	}
}

// sendAnnouncement publishes an announcement through cl to the targets that
// subscribe to announcements, through their payload and header mapping
// (dataplane.Plane.Announce), bounded by announceTimeout in all.
func (s *runnerSpec) sendAnnouncement(cl client.Client, kind string) {
	if !s.plane.Announces() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), announceTimeout)
	defer cancel()
	s.plane.Announce(ctx, cl, kind, s.now())
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
