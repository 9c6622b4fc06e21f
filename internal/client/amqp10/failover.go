package amqp10

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// failoverEnabled: Ditto wraps the URI of such a connection in Qpid JMS's
// failover transport, "failover:(amqp://host:port?…)?failover.…", so that
// the JMS client itself reconnects to the same broker when the connection
// drops, and the client actor sees the connection "interrupted" and
// "restored" instead of failed. This file is that transport: a
// failoverSession holds the current AMQP connection and, when it drops,
// opens a new one with Qpid's reconnect schedule and Ditto's defaults,
// reattaching the links; the Lifecycle hears of a loss only when the
// attempts run out (or the broker refuses the login), and the grain's own
// backoff takes over, as Ditto's client actor does on a JMS connection
// failure. What it costs: while reconnecting, publishes wait (bounded by
// their context) and messages consumed but not settled on the old
// connection are delivered again by the broker.

// Qpid JMS's failover URI options (FailoverProviderFactory's "failover."
// prefix) that the transport acts on.
const (
	failoverPrefix             = "failover."
	cfgInitialReconnectDelay   = "failover.initialReconnectDelay" // ms
	cfgReconnectDelay          = "failover.reconnectDelay"        // ms
	cfgMaxReconnectDelay       = "failover.maxReconnectDelay"     // ms
	cfgUseReconnectBackOff     = "failover.useReconnectBackOff"   // bool
	cfgReconnectBackOffMult    = "failover.reconnectBackOffMultiplier"
	cfgMaxReconnectAttempts    = "failover.maxReconnectAttempts"        // -1: no limit
	cfgStartupMaxReconnects    = "failover.startupMaxReconnectAttempts" // -1: maxReconnectAttempts
	cfgWarnAfterReconnects     = "failover.warnAfterReconnectAttempts"
	cfgRandomize               = "failover.randomize" // one URI: shuffling it changes nothing
	detailsInterrupted         = "JMS Interrupted"    // Ditto's failure description
	detailsRestored            = "Connection restored"
	defaultWarnAfterReconnects = 10 // Qpid's
)

// failoverKeys are the failover options accepted (with failoverEnabled);
// Qpid's others (amqpOpenServerListAction, nested.*) concern a list of
// several brokers, which a Ditto connection never has, and are refused.
var failoverKeys = []string{
	cfgInitialReconnectDelay, cfgReconnectDelay, cfgMaxReconnectDelay, cfgUseReconnectBackOff,
	cfgReconnectBackOffMult, cfgMaxReconnectAttempts, cfgStartupMaxReconnects, cfgWarnAfterReconnects,
	cfgRandomize,
}

type failoverConfig struct {
	enabled                       bool
	initialDelay, delay, maxDelay time.Duration
	useBackOff                    bool
	multiplier                    float64
	maxAttempts, startupAttempts  int // -1: no limit
	warnAfter                     int
}

// parseFailover reads failoverEnabled and the failover.* options over the
// values Ditto sets (AmqpSpecificConfig): 5 attempts at startup, then
// without limit, from 128 ms doubling up to 15 minutes.
func parseFailover(conn *model.Connection) (failoverConfig, error) {
	f := failoverConfig{
		enabled:      conn.FailoverEnabled,
		initialDelay: 128 * time.Millisecond, delay: 128 * time.Millisecond, maxDelay: 15 * time.Minute,
		useBackOff: true, multiplier: 2, maxAttempts: -1, startupAttempts: 5,
		warnAfter: defaultWarnAfterReconnects,
	}
	sc := conn.SpecificConfig
	for key, dst := range map[string]*time.Duration{
		cfgInitialReconnectDelay: &f.initialDelay, cfgReconnectDelay: &f.delay, cfgMaxReconnectDelay: &f.maxDelay,
	} {
		if err := millisOption(sc, key, 0, dst); err != nil {
			return f, err
		}
	}
	for key, dst := range map[string]*int{
		cfgMaxReconnectAttempts: &f.maxAttempts, cfgStartupMaxReconnects: &f.startupAttempts, cfgWarnAfterReconnects: &f.warnAfter,
	} {
		if v, ok := sc[key]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < -1 {
				return f, fmt.Errorf("%w: %s %q is not a number >= -1", client.ErrConfig, key, v)
			}
			*dst = n
		}
	}
	if err := boolOption(sc, cfgUseReconnectBackOff, &f.useBackOff); err != nil {
		return f, err
	}
	var randomize bool // checked only: with one URI it changes nothing
	if err := boolOption(sc, cfgRandomize, &randomize); err != nil {
		return f, err
	}
	if v, ok := sc[cfgReconnectBackOffMult]; ok {
		m, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || m < 1 || math.IsInf(m, 0) {
			return f, fmt.Errorf("%w: %s %q is not a number >= 1", client.ErrConfig, cfgReconnectBackOffMult, v)
		}
		f.multiplier = m
	}
	return f, nil
}

// wait is Qpid's pause before reconnect attempt n (0-based) after a loss:
// initialReconnectDelay, then reconnectDelay, multiplied by the back-off
// multiplier from the third attempt on, at most maxReconnectDelay.
func (f failoverConfig) wait(n int) time.Duration {
	if n == 0 {
		return f.initialDelay
	}
	d := float64(f.delay)
	if f.useBackOff {
		d *= math.Pow(f.multiplier, float64(n-1))
	}
	return time.Duration(min(d, float64(f.maxDelay)))
}

// limit is the number of attempts allowed: startupMaxReconnectAttempts
// before the first connection (-1 there means maxReconnectAttempts's), then
// maxReconnectAttempts; -1 has no limit.
func (f failoverConfig) limit(startup bool) int {
	if startup && f.startupAttempts != -1 {
		return f.startupAttempts
	}
	return f.maxAttempts
}

// failoverSession is the failover transport: it is the Lifecycle's Session
// and passes work to the current connection's session.
type failoverSession struct {
	p *protocol
	r *client.Reporter

	ctx    context.Context // ends with Close: stops reconnecting
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cur     *session      // nil while reconnecting
	gen     int           // counts connections; a report of an older one is stale
	ready   chan struct{} // closed while cur is set
	started bool
	closed  bool
}

// openFailover connects with up to startupMaxReconnectAttempts attempts on
// an unreachable broker (a refused login or a missing source fails at
// once, as Qpid gives up on a permanent failure), all within ctx.
func (c *protocol) openFailover(ctx context.Context, r *client.Reporter) (client.Session, error) {
	fctx, cancel := context.WithCancel(context.Background())
	f := &failoverSession{p: c, r: r, ctx: fctx, cancel: cancel, ready: make(chan struct{})}
	limit := c.cfg.failover.limit(true)
	for n := 0; ; n++ {
		s, err := c.open(ctx, f.reporter(0))
		if err == nil {
			f.cur = s
			close(f.ready)
			return f, nil
		}
		if !errors.Is(err, client.ErrUnreachable) || limit != -1 && n+1 >= limit || ctx.Err() != nil {
			cancel()
			if s == nil {
				return nil, err
			}
			return s, err // the Lifecycle closes it
		}
		if s != nil {
			go closeSession(s)
		}
		c.log.Debug().Err(err).Int("attempt", n+1).Msg("amqp10 failover: connect attempt failed")
		t := time.NewTimer(c.cfg.failover.wait(n + 1))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			cancel()
			return nil, c.connectError(ctx, ctx.Err(), false)
		}
	}
}

// closeSession closes a session nobody else holds.
func closeSession(s *session) {
	ctx, cancel := context.WithTimeout(context.Background(), defaultOpTimeout)
	defer cancel()
	_ = s.Close(ctx)
}

// reporter is the line of connection number gen back to f.
func (f *failoverSession) reporter(gen int) reporter { return failoverReporter{f: f, gen: gen} }

type failoverReporter struct {
	f   *failoverSession
	gen int
}

func (fr failoverReporter) Lost(cause error) { fr.f.lost(fr.gen, cause) }

func (fr failoverReporter) Target(address string, status client.Status, details string) {
	fr.f.r.Target(address, status, details)
}

// brokerDetached: the broker ended a link or session on a live connection
// (a deleted queue, say). The connection is fine, so failover has nothing
// to do; the loss goes to the Lifecycle as without failover.
func brokerDetached(err error) bool {
	var le *amqp.LinkError
	var se *amqp.SessionError
	return errors.As(err, &le) && le.RemoteErr != nil || errors.As(err, &se) && se.RemoteErr != nil
}

// lost handles the end of connection gen: the client entry says
// "JMS Interrupted" as Ditto's does, and reconnecting begins.
func (f *failoverSession) lost(gen int, cause error) {
	f.mu.Lock()
	if f.closed || gen != f.gen || f.cur == nil {
		f.mu.Unlock()
		return
	}
	if !f.started || brokerDetached(cause) {
		f.mu.Unlock()
		f.r.Lost(cause)
		return
	}
	old := f.cur
	f.cur = nil
	f.gen++
	f.ready = make(chan struct{})
	f.wg.Add(2)
	f.mu.Unlock()

	f.p.log.Warn().Err(cause).Msg("amqp10 connection interrupted; failover reconnects")
	f.r.Client(client.StatusMisconfigured, detailsInterrupted)
	go func() {
		defer f.wg.Done()
		closeSession(old)
	}()
	go func() {
		defer f.wg.Done()
		f.reconnect(cause)
	}()
}

// reconnect opens connections with Qpid's schedule until one starts, the
// attempts run out or the login is refused (both reported as the loss), or
// Close.
func (f *failoverSession) reconnect(cause error) {
	fc := f.p.cfg.failover
	limit := fc.limit(false)
	for n := 0; ; n++ {
		if limit != -1 && n >= limit {
			f.r.Lost(fmt.Errorf("amqp10: failover gave up after %d reconnect attempts: %w", n, cause))
			return
		}
		t := time.NewTimer(fc.wait(n))
		select {
		case <-t.C:
		case <-f.ctx.Done():
			t.Stop()
			return
		}
		f.mu.Lock()
		gen := f.gen
		f.mu.Unlock()
		ctx, cancel := context.WithTimeout(f.ctx, f.p.cfg.connectTimeout)
		s, err := f.p.open(ctx, f.reporter(gen))
		if err == nil {
			err = f.install(ctx, s)
		}
		cancel()
		if err == nil {
			f.p.log.Info().Int("attempts", n+1).Msg("amqp10 connection restored")
			f.r.Client(client.StatusOpen, detailsRestored)
			return
		}
		if s != nil {
			closeSession(s)
		}
		if f.ctx.Err() != nil {
			return
		}
		cause = err
		if errors.Is(err, client.ErrUnauthorized) {
			f.r.Lost(err)
			return
		}
		ev := f.p.log.Debug()
		if fc.warnAfter > 0 && (n+1)%fc.warnAfter == 0 {
			ev = f.p.log.Warn()
		}
		ev.Err(err).Int("attempt", n+1).Msg("amqp10 failover: reconnect attempt failed")
	}
}

// install makes s the current connection and starts it.
func (f *failoverSession) install(ctx context.Context, s *session) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return errors.New("amqp10: closed while reconnecting")
	}
	f.cur = s
	close(f.ready)
	f.mu.Unlock()
	// A loss during Start finds s current and starts the next round.
	return s.Start(ctx)
}

// Start starts the first connection.
func (f *failoverSession) Start(ctx context.Context) error {
	f.mu.Lock()
	f.started = true
	s := f.cur
	f.mu.Unlock()
	if s == nil {
		return nil // interrupted already: reconnect starts the next
	}
	return s.Start(ctx)
}

// Publish waits, within ctx, for a connection while failover reconnects,
// as a JMS send does.
func (f *failoverSession) Publish(ctx context.Context, msg client.Message) error {
	for {
		f.mu.Lock()
		s, ready, closed := f.cur, f.ready, f.closed
		f.mu.Unlock()
		switch {
		case closed:
			return errors.New("amqp10: client is closed")
		case s != nil:
			return s.Publish(ctx, msg)
		}
		select {
		case <-ready:
		case <-ctx.Done():
			return fmt.Errorf("amqp10: the connection is interrupted and failover is reconnecting: %w", ctx.Err())
		case <-f.ctx.Done():
		}
	}
}

// Close stops reconnecting and closes the current connection.
func (f *failoverSession) Close(ctx context.Context) error {
	f.mu.Lock()
	f.closed = true
	s := f.cur
	f.cur = nil
	f.mu.Unlock()
	f.cancel()
	var err error
	if s != nil {
		err = s.Close(ctx)
	}
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		if err == nil {
			err = fmt.Errorf("amqp10: reconnecting did not stop in time: %w", ctx.Err())
		}
	}
	return err
}
