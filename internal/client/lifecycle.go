package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/placeholder/template"
)

// Protocol is what a broker client supplies to a Lifecycle: how to open one
// session with its broker. Everything else (state, status entries, events,
// Close) is the Lifecycle's.
type Protocol interface {
	// Open connects to the broker and readies the publishers and consumers
	// without consuming yet, bounded by ctx. Its error wraps ErrUnauthorized,
	// ErrUnreachable or ErrTimeout where one applies and never contains a
	// password. On error it returns what it opened so far (or nil), and the
	// Lifecycle closes that. r is the session's line back to the Lifecycle;
	// the session may call it from any goroutine, from now on.
	Open(ctx context.Context, r *Reporter) (Session, error)
}

// Session is one broker connection opened by a Protocol. The Lifecycle
// calls Start once, after Open succeeded; Publish from any goroutine, from
// the start of Start until Close; and Close exactly once, after Start
// returned (unless Close's own deadline passed while waiting for Start).
type Session interface {
	// Start begins consuming (subscriptions, consumer and watcher
	// goroutines), bounded by ctx; an error fails Connect like one of Open.
	Start(ctx context.Context) error
	// Publish sends msg to the target address msg.Address and waits for the
	// broker's acknowledgement.
	Publish(ctx context.Context, msg Message) error
	// Close tears the session down, bounded by ctx, and returns once its
	// goroutines ended (a consumer may be inside Env.Inbound) or ctx ended.
	Close(ctx context.Context) error
}

// Shape is how a client's sources appear in its status.
type Shape int

const (
	// PerAddress: one source entry per consumer and address (AMQP, Kafka).
	PerAddress Shape = iota
	// PerSource: one source entry per consumer with the source's addresses
	// joined by ";" (MQTT: one subscription serves all of them).
	PerSource
)

// Options are what differs between protocols in a Lifecycle.
type Options struct {
	// Name prefixes errors and log messages ("amqp091", "kafka", …).
	Name string
	// Endpoint is logged on connect (never with credentials).
	Endpoint string
	// Shape of the source entries.
	Shape Shape
	// ConnectTimeout bounds Connect when its ctx has no deadline (default 30 s).
	ConnectTimeout time.Duration
	// PublishTimeout bounds Publish when its ctx has no deadline (0: none).
	PublishTimeout time.Duration
	// CloseTimeout bounds Close when its ctx has no deadline, and the
	// teardown of a lost session (default 10 s).
	CloseTimeout time.Duration
}

// Lifecycle is a Client made of a Protocol: it owns the state machine
// (connecting, open, lost, failed, closed), the status entries, the events
// and Close, so that a protocol only opens, watches, consumes, publishes
// and closes sessions. A Lifecycle connects once: the grain builds a fresh
// client for every attempt.
//
// One mutex guards the state; no I/O happens under it, so Status never
// blocks on the broker.
type Lifecycle struct {
	proto  Protocol
	opts   Options
	log    zerolog.Logger
	events func(Event)

	errClosed, errNotConnected error

	mu          sync.Mutex
	state       state
	closed      bool
	sess        *liveSession       // set from Open's success until Close
	cancel      context.CancelFunc // ends a Connect under way
	connectDone chan struct{}      // closed when Connect returns
	pendingLoss error              // a loss reported before the client was open
	pending     map[string]targetReport
	self        resource
	sources     []*resource
	targets     []*resource
}

type state int

const (
	idle state = iota
	connecting
	open
	lost
	failed
)

var _ Client = (*Lifecycle)(nil)

// NewLifecycle is the Client of env's connection over proto; it does no I/O.
func NewLifecycle(env Env, proto Protocol, opts Options) *Lifecycle {
	if opts.ConnectTimeout <= 0 {
		opts.ConnectTimeout = 30 * time.Second
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 10 * time.Second
	}
	l := &Lifecycle{
		proto: proto, opts: opts, log: ClientLogger(env), events: env.Events,
		errClosed:       fmt.Errorf("%s: client is closed", opts.Name),
		errNotConnected: fmt.Errorf("%s: client is not connected", opts.Name),
	}
	now := time.Now()
	l.self = resource{Type: "client"}
	l.self.Set(StatusClosed, DetailsDisconnected, now)
	if c := env.Connection; c != nil {
		for _, e := range SourceEntries(c, now, opts.Shape == PerSource) {
			r := &resource{Type: "source", Address: e.Address}
			r.Set(StatusClosed, DetailsConsumerStopped, now)
			l.sources = append(l.sources, r)
		}
		for _, t := range c.Targets {
			r := &resource{Type: "target", Address: t.Address, onDemand: template.HasPlaceholders(t.Address)}
			r.Set(StatusClosed, DetailsProducerStopped, now)
			l.targets = append(l.targets, r)
		}
	}
	return l
}

// ClientLogger is the logger of a client of env: the grain's, which names
// the connection and the client index, with the connection type.
func ClientLogger(env Env) zerolog.Logger {
	typ := ""
	if env.Connection != nil {
		typ = env.Connection.ConnectionType
	}
	return env.Logger.With().Str("connection_type", typ).Logger()
}

// WithDefaultTimeout bounds ctx by d unless it has a deadline already.
func WithDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok || d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// ConnectContextError is the error of a connect to addr whose ctx ended, or
// whose deadline passed (a socket deadline set from ctx's fires a moment
// before ctx reports it): ErrTimeout for a deadline, else ctx's error,
// prefixed by name. It is nil while ctx is live.
func ConnectContextError(ctx context.Context, name, addr string) error {
	dl, hasDeadline := ctx.Deadline()
	ctxErr := ctx.Err()
	if ctxErr == nil && (!hasDeadline || time.Now().Before(dl)) {
		return nil
	}
	if ctxErr == nil || errors.Is(ctxErr, context.DeadlineExceeded) {
		return fmt.Errorf("%w: connecting to %s did not finish in time", ErrTimeout, addr)
	}
	return fmt.Errorf("%s: connecting to %s: %w", name, addr, ctxErr)
}

func (l *Lifecycle) emit(kind EventKind, err error) {
	if l.events != nil {
		l.events(Event{Kind: kind, Err: err, At: time.Now()})
	}
}

// setAllLocked moves the client and all its sources and targets at once.
func (l *Lifecycle) setAllLocked(status Status, clientDetail, sourceDetail, targetDetail string) {
	now := time.Now()
	l.self.Set(status, clientDetail, now)
	for _, r := range l.sources {
		r.Set(status, sourceDetail, now)
	}
	for _, r := range l.targets {
		if status == StatusOpen && r.onDemand {
			r.Set(StatusUnknown, DetailsProducerOnDemand, now)
			continue
		}
		r.Set(status, targetDetail, now)
	}
}

// Connect opens a session and starts it; it may be called once.
func (l *Lifecycle) Connect(ctx context.Context) error {
	ctx, cancel := WithDefaultTimeout(ctx, l.opts.ConnectTimeout)
	defer cancel()

	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return l.errClosed
	case l.state != idle:
		l.mu.Unlock()
		return fmt.Errorf("%s: Connect was called before on this client", l.opts.Name)
	}
	l.state = connecting
	l.cancel = cancel
	done := make(chan struct{})
	l.connectDone = done
	l.mu.Unlock()
	defer close(done)

	s, err := l.proto.Open(ctx, &Reporter{l: l})
	var ls *liveSession
	if s != nil {
		ls = &liveSession{Session: s, done: make(chan struct{})}
	}
	if err == nil {
		l.mu.Lock()
		if l.closed {
			err = l.errClosed
		} else {
			l.sess = ls // publishable from now on
		}
		l.mu.Unlock()
		if err == nil {
			err = s.Start(ctx)
		}
	}

	l.mu.Lock()
	l.cancel = nil
	if l.closed {
		// Close owns the session once it was handed over.
		owned := l.sess == ls
		l.mu.Unlock()
		if ls != nil && !owned {
			l.closeQuietly(ls)
		}
		return l.errClosed
	}
	if err != nil {
		l.state = failed
		l.sess = nil
		l.setAllLocked(StatusFailed, err.Error(), err.Error(), err.Error())
		l.mu.Unlock()
		if ls != nil {
			l.closeQuietly(ls)
		}
		l.log.Warn().Err(err).Msg(l.opts.Name + " connect failed")
		return err
	}
	l.state = open
	l.setAllLocked(StatusOpen, DetailsConnected, DetailsConsumerStarted, DetailsProducerStarted)
	now := time.Now()
	for addr, tr := range l.pending {
		l.setTargetLocked(addr, tr.status, tr.details, now)
	}
	l.pending = nil
	loss := l.pendingLoss
	l.mu.Unlock()

	ev := l.log.Info()
	if l.opts.Endpoint != "" {
		ev = ev.Str("endpoint", l.opts.Endpoint)
	}
	ev.Msg(l.opts.Name + " connected")
	l.emit(Connected, nil)
	if loss != nil {
		l.lost(loss) // it dropped while connecting: connected, then lost at once
	}
	return nil
}

// closeQuietly closes a session that failed to connect.
func (l *Lifecycle) closeQuietly(ls *liveSession) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = ls.close(ctx, l.opts.Name)
}

// lost handles the end of a session the client did not ask for.
func (l *Lifecycle) lost(cause error) {
	if cause == nil {
		cause = fmt.Errorf("%s: the connection was closed", l.opts.Name)
	}
	l.mu.Lock()
	switch {
	case l.closed:
		l.mu.Unlock()
		return
	case l.state == idle || l.state == connecting:
		if l.pendingLoss == nil {
			l.pendingLoss = cause
		}
		l.mu.Unlock()
		return
	case l.state != open:
		l.mu.Unlock()
		return
	}
	l.state = lost
	detail := "connection lost: " + cause.Error()
	l.setAllLocked(StatusFailed, detail, detail, detail)
	ls := l.sess
	l.mu.Unlock()
	if ls != nil {
		// Stop consuming and the library's own retrying at once; Close waits
		// for this teardown.
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), l.opts.CloseTimeout)
			defer cancel()
			_ = ls.close(ctx, l.opts.Name)
		}()
	}
	l.log.Warn().Err(cause).Msg(l.opts.Name + " connection lost")
	l.emit(ConnectionLost, cause)
}

// Current is the session Publish would use, or why there is none: for a
// client's optional extras (AsyncPublisher).
func (l *Lifecycle) Current() (Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, l.errClosed
	case l.sess == nil || l.state != connecting && l.state != open:
		return nil, l.errNotConnected
	}
	return l.sess.Session, nil
}

// Publish hands msg to the session; it fails when there is none.
func (l *Lifecycle) Publish(ctx context.Context, msg Message) error {
	s, err := l.Current()
	if err != nil {
		return err
	}
	ctx, cancel := WithDefaultTimeout(ctx, l.opts.PublishTimeout)
	defer cancel()
	return s.Publish(ctx, msg)
}

// Status reports the client entry, the source entries (Options.Shape) and
// one entry per target.
func (l *Lifecycle) Status() []ResourceStatus {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]ResourceStatus, 0, 1+len(l.sources)+len(l.targets))
	out = append(out, l.self.Entry())
	for _, r := range l.sources {
		out = append(out, r.Entry())
	}
	for _, r := range l.targets {
		out = append(out, r.Entry())
	}
	return out
}

// Close stops a Connect under way, closes the session and reports
// Disconnected; later calls return nil.
func (l *Lifecycle) Close(ctx context.Context) error {
	ctx, cancel := WithDefaultTimeout(ctx, l.opts.CloseTimeout)
	defer cancel()

	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	stop, connectDone := l.cancel, l.connectDone
	l.setAllLocked(StatusClosed, DetailsDisconnected, DetailsConsumerStopped, DetailsProducerStopped)
	l.mu.Unlock()
	if stop != nil {
		stop()
		select {
		case <-connectDone:
		case <-ctx.Done():
		}
	}
	l.mu.Lock()
	ls := l.sess
	l.sess = nil
	l.mu.Unlock()

	var err error
	if ls != nil {
		err = ls.close(ctx, l.opts.Name)
	}
	l.log.Info().Msg(l.opts.Name + " disconnected")
	l.emit(Disconnected, nil)
	return err
}

// setTargetLocked moves the entries of a target address.
func (l *Lifecycle) setTargetLocked(address string, status Status, details string, now time.Time) {
	for _, r := range l.targets {
		if r.Address == address && (r.Status != status || r.Details != details) {
			r.Set(status, details, now)
		}
	}
}

// Reporter is a session's line back to its Lifecycle.
type Reporter struct {
	l    *Lifecycle
	once sync.Once
}

// Lost reports that the session ended without being asked to; only the
// first call counts. A loss before the client is open is reported right
// after it opened.
func (r *Reporter) Lost(cause error) {
	r.once.Do(func() { r.l.lost(cause) })
}

// Target sets the entries of a target address (e.g. failed while the
// broker refuses its link); it has no effect unless the client is
// connecting or open, and a connecting client applies it once open.
func (r *Reporter) Target(address string, status Status, details string) {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
	case l.state == connecting:
		if l.pending == nil {
			l.pending = map[string]targetReport{}
		}
		l.pending[address] = targetReport{status, details}
	case l.state == open:
		l.setTargetLocked(address, status, details, time.Now())
	}
}

// Client sets the client entry alone while the client is open: a session
// that reconnects by itself (AMQP 1.0's failover transport) says it is
// interrupted or restored without a loss.
func (r *Reporter) Client(status Status, details string) {
	l := r.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed && l.state == open {
		l.self.Set(status, details, time.Now())
	}
}

// targetReport is a target status reported while the client connects.
type targetReport struct {
	status  Status
	details string
}

// liveSession closes its Session once, whoever asks first (a loss or
// Close), and lets every asker wait for the end.
type liveSession struct {
	Session
	once sync.Once
	done chan struct{}
	err  error
}

func (ls *liveSession) close(ctx context.Context, name string) error {
	ls.once.Do(func() {
		go func() {
			ls.err = ls.Session.Close(ctx)
			close(ls.done)
		}()
	})
	select {
	case <-ls.done:
		return ls.err
	case <-ctx.Done():
		return fmt.Errorf("%s: the connection did not close in time: %w", name, ctx.Err())
	}
}

// errPending is a Pending that failed before it started.
type errPending struct{ err error }

var closedCh = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

func (p errPending) Done() <-chan struct{} { return closedCh }
func (p errPending) Err() error            { return p.err }

// FailedPending is a Pending whose outcome is err already.
func FailedPending(err error) Pending { return errPending{err: err} }
