package connection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
	"github.com/dittoconn/dittoconn/persistence"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Kind is the cluster kind of the connection grain.
const Kind = "connection"

// PIDPrefix prefixes a connection id to make its persistence id.
const PIDPrefix = "connection:"

// Store is what the grain needs of persistence (declared here, where it is used).
type Store interface {
	persistence.Journal
	persistence.Snapshots
	persistence.Pruner
}

// Settings are the grain's tunable values: what an operator configures.
// DefaultSettings holds Ditto's values; a zero field in a Config's Settings
// takes the default.
type Settings struct {
	// SnapshotThreshold: snapshot when this many events passed since the last one.
	SnapshotThreshold int
	// PassivateAfter: an idle grain whose desired status is not open stops after this long.
	PassivateAfter time.Duration
	// PassivateDeletedAfter: the same for deleted connections.
	PassivateDeletedAfter time.Duration
	// PassivateUnknownAfter: the same for ids that never had a connection,
	// shorter than for deleted ones: retrieving arbitrary ids must not pin
	// memory for minutes.
	PassivateUnknownAfter time.Duration
	// StoreTimeout bounds each store call when the command carries no deadline.
	StoreTimeout time.Duration
	// Validation: Ditto's connection validation settings (not filled when
	// zero: callers pass model.DefaultValidationConfig or their own).
	Validation model.ValidationConfig
	// DialTimeout bounds the reachability check of testConnection for types
	// without a live client.
	DialTimeout time.Duration
	// Backoff bounds the waits between connect attempts.
	Backoff client.Backoff
	// ConnectTimeout bounds one connect attempt.
	ConnectTimeout time.Duration
	// TestTimeout bounds testConnection (Ditto's testing-timeout).
	TestTimeout time.Duration
	// Mapping configures the payload mappers (zero: Ditto's defaults).
	Mapping mapping.Config
	// Logs configures the in-memory connection logs; Logs.LogDuration is how
	// long enabled connection logs stay enabled.
	Logs monitor.LogConfig
	// Tunnel tunes the SSH tunnels of connections that have one (Ditto's
	// ditto.connectivity.tunnel).
	Tunnel sshtunnel.Config
	// StandaloneRouting authorizes targets for other connections' signals
	// (DITTOCONN_STANDALONE_ROUTING; zero: dataplane.RoutingSubjects).
	StandaloneRouting dataplane.Routing
}

// DefaultSettings are Ditto's values.
func DefaultSettings() Settings {
	return Settings{
		SnapshotThreshold:     10,
		PassivateAfter:        45 * time.Minute,
		PassivateDeletedAfter: 5 * time.Minute,
		PassivateUnknownAfter: 30 * time.Second,
		StoreTimeout:          ditto.DefaultAskTimeout,
		Validation:            model.DefaultValidationConfig(),
		DialTimeout:           10 * time.Second,
		Backoff:               client.DefaultBackoff,
		ConnectTimeout:        10 * time.Second,
		TestTimeout:           10 * time.Second,
		Logs:                  monitor.DefaultLogConfig(),
		Tunnel:                sshtunnel.DefaultConfig(),
		StandaloneRouting:     dataplane.RoutingSubjects,
	}
}

// Config carries the grain's settings and dependencies.
type Config struct {
	Settings
	Store    Store
	Instance string // this node's instance id ("client" of status entries)
	WriterID string // journal writer UUID (_w)
	// Clients are the known connection types: their validation rules (a
	// type without an entry is refused as unknown) and their live clients (a
	// type without a factory gets none: open only changes the desired
	// status).
	Clients client.Specs
	// Runners owns the client goroutines of all grains; nil: one per kind.
	Runners *Runners
	// Bus routes data-plane signals between connections; nil: an
	// in-process bus of this kind.
	Bus bus.Bus
	// Ditto opens a connection's link to Ditto's gateway (internal/bridge):
	// its data plane then works next to Ditto instead of routing on Bus;
	// nil: standalone.
	Ditto func(connectionID string) dataplane.DittoLink
	// Collector exports message counters to Prometheus; nil: none.
	Collector *monitor.Collector
	// LogPublisher receives every connection log entry (Fluentd); nil: none.
	LogPublisher monitor.Publisher
	// Members places clients 1…clientCount-1 on other cluster members;
	// nil: a single member (they are Ditto's misconfigured entries).
	Members Members
	Logger  zerolog.Logger
	Now     func() time.Time
}

// defaults fills zero settings from DefaultSettings and nil dependencies
// with their single-member stand-ins.
func (c *Config) defaults() {
	d := DefaultSettings()
	positive := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.SnapshotThreshold <= 0 {
		c.SnapshotThreshold = d.SnapshotThreshold
	}
	positive(&c.PassivateAfter, d.PassivateAfter)
	positive(&c.PassivateDeletedAfter, d.PassivateDeletedAfter)
	positive(&c.PassivateUnknownAfter, d.PassivateUnknownAfter)
	positive(&c.Logs.LogDuration, d.Logs.LogDuration)
	positive(&c.StoreTimeout, d.StoreTimeout)
	positive(&c.DialTimeout, d.DialTimeout)
	positive(&c.ConnectTimeout, d.ConnectTimeout)
	positive(&c.TestTimeout, d.TestTimeout)
	c.Backoff = c.Backoff.WithDefaults()
	positive(&c.Tunnel.HeartbeatInterval, d.Tunnel.HeartbeatInterval)
	positive(&c.Tunnel.DialTimeout, d.Tunnel.DialTimeout)
	// every live client goes through the connection's SSH tunnel when it
	// has one (wrapping twice tunnels once); what a host resolves to may
	// change after validation, so every connect attempt and every dial is
	// checked again, outside the tunnel (whose client dials loopback)
	c.Clients = sshtunnel.Specs(c.Clients, c.Tunnel).Guarded(c.Validation)
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Runners == nil {
		c.Runners = NewRunners(0)
	}
	if c.Bus == nil {
		c.Bus = bus.NewLocal()
	}
}

// NewKind returns the cluster kind that hosts connection grains.
func NewKind(cfg Config) *cluster.Kind {
	cfg.defaults()
	pol := newPolicy(&cfg)
	props := actor.PropsFromProducer(func() actor.Actor { return &grain{cfg: &cfg, pol: pol} })
	return cluster.NewKind(Kind, props)
}

// newPolicy is the entity's view of the configured checks, shared by all
// grains of a kind.
func newPolicy(cfg *Config) policy {
	v := cfg.Validation
	if v.Mappers == nil {
		v.Mappers = mapping.Factory{Config: cfg.Mapping}
	}
	return policy{
		validate:     func(c *model.Connection) error { return model.Validate(c, v, cfg.Clients) },
		checkMapping: func(c *model.Connection) error { return dataplane.Check(c, cfg.Mapping) },
	}
}

// grain is one connection's actor: it wires the entity (what commands mean),
// the store (the journal of the entity) and the supervisor (the live side).
// Everything in it is touched only by the actor's own goroutine, and nothing
// about a command outlives its message: a command answered later is the
// supervisor's waiter or test.
//
// A grain of an id without a connection builds neither its logger nor its
// supervisor until a command needs them, and passivates after
// PassivateUnknownAfter: requests for arbitrary ids cost little and briefly.
type grain struct {
	cfg *Config
	log *zerolog.Logger // nil until first used (logger)
	pid string
	pol policy

	started time.Time // the grain's activation: the supervisor's first inStateSince
	root    *actor.RootContext
	self    *actor.PID

	recovered       bool
	recoverErr      error
	lastSnapshotSeq int64
	// forgetDue: the entity is deleted and its past may still be in the
	// store (see forget).
	forgetDue bool

	ent entity
	sup *supervisor // nil until first needed (live)
}

// logger is the grain's logger, naming the connection.
func (g *grain) logger() *zerolog.Logger {
	if g.log == nil {
		l := g.cfg.Logger.With().Str("connection_id", g.ent.id).Logger()
		g.log = &l
	}
	return g.log
}

// live is the grain's supervisor, built on first use.
func (g *grain) live() *supervisor {
	if g.sup == nil {
		g.sup = newSupervisor(g.ent.id, g.cfg, *g.logger(), g.root, g.self)
		g.sup.live.since = g.started
	}
	return g.sup
}

func (g *grain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *cluster.ClusterInit:
		id := msg.Identity.Identity
		g.ent = entity{id: id}
		g.pid = PIDPrefix + id
		g.started, g.root, g.self = g.cfg.Now(), ctx.ActorSystem().Root, ctx.Self()
		g.recover()
		if g.ent.conn != nil {
			g.live()
		}
		if g.recovered && g.ent.conn != nil && desired(g.ent.conn) == client.StatusOpen {
			// as Ditto: a desired-open connection reconnects right after recovery
			g.sup.reopen(g.ent.conn)
		}
		g.forget()
		g.armPassivation(ctx)
	case *pb.Command:
		if m, known := decodeInternal(msg); known {
			if st, ok := m.(*satState); ok {
				g.live().onSatState(st)
			}
			return
		}
		reply := g.handle(ctx, msg)
		if reply != nil {
			ctx.Respond(msg.Answer(reply))
		}
		g.forget() // after the answer: the delete is durable already
		g.armPassivation(ctx)
		if g.recoverErr != nil {
			// A grain that could not read its journal must not linger with a
			// wrong view: the next command activates a fresh one.
			ctx.Poison(ctx.Self())
		}
	case *clientReport:
		// runners, timers and satellites exist only once the supervisor does
		if g.sup != nil {
			g.sup.onReport(msg, &g.ent)
			g.armPassivation(ctx)
		}
	case *logsCheck:
		if g.sup != nil {
			g.sup.live.onCheck(g.cfg.Now())
		}
	case *satRenew:
		if g.sup != nil {
			g.sup.onSatRenew(msg, g.ent.conn)
		}
	case *actor.ReceiveTimeout:
		if g.desiredOpen() || (g.sup != nil && g.sup.busy()) {
			return // desired-open connections stay in memory, as in Ditto
		}
		ctx.Poison(ctx.Self())
	case *actor.Stopping:
		if g.sup != nil {
			g.sup.stopAll()
		}
	}
}

func (g *grain) desiredOpen() bool {
	return g.ent.conn != nil && desired(g.ent.conn) == client.StatusOpen
}

// armPassivation sets the idle timeout that fits the current state.
func (g *grain) armPassivation(ctx actor.Context) {
	switch {
	case g.ent.conn == nil && g.ent.seq == 0: // never created
		ctx.SetReceiveTimeout(g.cfg.PassivateUnknownAfter)
	case g.ent.conn == nil:
		ctx.SetReceiveTimeout(g.cfg.PassivateDeletedAfter)
	case g.desiredOpen() || (g.sup != nil && g.sup.running()):
		ctx.CancelReceiveTimeout()
	default:
		ctx.SetReceiveTimeout(g.cfg.PassivateAfter)
	}
}

// handle decides cmd, persists the decided events and lets the supervisor
// act on them; nil: the supervisor answers later.
func (g *grain) handle(ctx actor.Context, cmd *pb.Command) *pb.Reply {
	if !g.recovered {
		g.recover() // a transient store failure may have passed
		if !g.recovered {
			return errorReply(ditto.ConnectionUnavailable(g.ent.id), g.ent.seq)
		}
	}
	now := g.cfg.Now()
	d := g.ent.decide(cmd, g.pol, now)
	if d.logFailure != "" {
		g.live().live.logFailure(now, d.logFailure)
	}
	if d.err != nil {
		if d.parseErr {
			return parseErrorReply(d.err)
		}
		return errorReply(d.err, g.ent.seq)
	}
	if d.action == actOpened {
		g.live().live.enableLogs() // open enables logging, even when persisting fails
	}
	for _, ev := range d.events {
		if err := g.persist(cmd, ev); err != nil {
			return g.storeFailure(cmd.Type, err)
		}
	}
	return g.live().act(request{sender: ctx.Sender(), cmd: cmd}, d, &g.ent)
}

// storeFailure maps a failed write to Ditto's answer: a conflicting writer
// means someone else owns this journal right now.
func (g *grain) storeFailure(op string, err error) *pb.Reply {
	g.logger().Error().Err(err).Str("op", op).Msg("persisting event failed")
	if errors.Is(err, persistence.ErrConflict) {
		g.recovered = false // re-read the journal before the next command
	}
	return errorReply(ditto.ConnectionUnavailable(g.ent.id), g.ent.seq)
}

// storeCtx bounds a store call by the command's deadline, or by StoreTimeout.
// The store gets a little less than the command's remaining time, so that a
// store outage is answered with 503 connection.unavailable before the caller
// gives up, instead of with no answer at all.
func (g *grain) storeCtx(cmd *pb.Command) (context.Context, context.CancelFunc) {
	timeout := g.cfg.StoreTimeout
	if cmd != nil && cmd.DeadlineUnixNano > 0 {
		left := time.Until(time.Unix(0, cmd.DeadlineUnixNano))
		margin := min(left/5, 500*time.Millisecond)
		timeout = min(timeout, left-margin)
	}
	return context.WithTimeout(context.Background(), timeout)
}

// recover loads the latest snapshot and replays the later events.
func (g *grain) recover() {
	ctx, cancel := g.storeCtx(nil)
	defer cancel()
	g.ent = entity{id: g.ent.id}
	g.lastSnapshotSeq, g.recoverErr = 0, nil

	snap, err := g.cfg.Store.LatestSnapshot(ctx, g.pid)
	switch {
	case err == nil:
		g.ent.seq, g.lastSnapshotSeq = snap.Seq, snap.Seq
		if g.ent.conn, err = decodeSnapshot(snap.Payload); err != nil {
			g.recoverErr = fmt.Errorf("snapshot %d: %w", snap.Seq, err)
		}
	case errors.Is(err, persistence.ErrNotFound):
	default:
		g.recoverErr = fmt.Errorf("load snapshot: %w", err)
	}
	if g.recoverErr == nil {
		err = g.cfg.Store.Replay(ctx, g.pid, g.ent.seq+1, func(stored persistence.Event) error {
			ev, err := decodeEvent(stored)
			if err != nil {
				// Ditto skips an event it cannot read (e.g. one it cannot decrypt);
				// the sequence number still advances.
				g.logger().Error().Err(err).Int64("seq", stored.Seq).Str("manifest", stored.Manifest).Msg("skipping unreadable event")
				g.ent.seq = stored.Seq
				return nil
			}
			g.ent.apply(ev)
			return nil
		})
		if err != nil {
			g.recoverErr = fmt.Errorf("replay: %w", err)
		}
	}
	if g.recoverErr != nil {
		g.logger().Error().Err(g.recoverErr).Msg("recovery failed")
		return
	}
	g.recovered = true
	// A deleted entity's cleanup may have been cut short (see forget); it
	// is repeated on every activation, and costs reads when nothing is left.
	g.forgetDue = g.ent.conn == nil && g.ent.seq > 0
	// the kind's logger: building the grain's costs more than a disabled line
	g.cfg.Logger.Debug().Str("connection_id", g.ent.id).Int64("seq", g.ent.seq).Bool("exists", g.ent.conn != nil).Msg("recovered")
}

// persist appends ev and, when due, a snapshot. The entity moves past ev
// only after the journal accepted it.
func (g *grain) persist(cmd *pb.Command, ev event) error {
	ctx, cancel := g.storeCtx(cmd)
	defer cancel()
	if err := g.cfg.Store.Append(ctx, encodeEvent(g.pid, g.ent.id, g.cfg.WriterID, ev, g.ent.after(ev))); err != nil {
		return err
	}
	g.ent.apply(ev)
	switch {
	case ev.typ == ditto.EventConnectionDeleted:
		g.forgetDue = true
	case g.ent.seq-g.lastSnapshotSeq >= int64(g.cfg.SnapshotThreshold):
		g.snapshot(ctx, ev.at)
	}
	return nil
}

// forget removes a deleted connection's past from the store, so that its
// secrets (the URI password, credentials) do not stay at rest: Ditto's
// cleanup of a deleted entity, done at once. Steps, each durable before the
// next starts:
//
//  1. the deleted event is in the journal (persist, before the answer);
//  2. a snapshot of the deleted state at its sequence number N
//     ({"__lifecycle":"DELETED"}, no connection, no secret);
//  3. Prune(N): events up to N and snapshots below N go.
//
// A crash after 1 recovers the older snapshot plus the events up to the
// deleted one: deleted. After 2 or during 3 it recovers the snapshot of
// step 2: deleted, at N. Step 3 never removes that snapshot (Prune refuses
// without a snapshot at N or above), so no crash loses the deleted event's
// effect or resurrects the connection, and a re-create continues at N+1.
// A failed or cut step is tried once more by the next activation, whose
// recovery finds the entity deleted (both steps are idempotent); not by
// every command, which would stall a deleted id's answers while the store
// fails.
func (g *grain) forget() {
	due := g.forgetDue && g.ent.conn == nil
	g.forgetDue = false
	if !due {
		return
	}
	ctx, cancel := g.storeCtx(nil)
	defer cancel()
	if g.lastSnapshotSeq < g.ent.seq {
		g.snapshot(ctx, g.cfg.Now())
		if g.lastSnapshotSeq < g.ent.seq {
			return // logged; the next activation tries again
		}
	}
	if err := g.cfg.Store.Prune(ctx, g.pid, g.ent.seq); err != nil {
		g.logger().Warn().Err(err).Int64("seq", g.ent.seq).Msg("removing the deleted connection's history failed")
	}
}

// snapshot saves the current entity; a failure only delays the next one.
func (g *grain) snapshot(ctx context.Context, now time.Time) {
	err := g.cfg.Store.SaveSnapshot(ctx, persistence.Snapshot{
		PID: g.pid, Seq: g.ent.seq, Timestamp: now.UnixMilli(), Payload: encodeSnapshot(g.ent.conn),
	})
	if err != nil {
		g.logger().Warn().Err(err).Int64("seq", g.ent.seq).Msg("snapshot failed")
		return
	}
	g.lastSnapshotSeq = g.ent.seq
}
