package connection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors/bus"
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/dataplane"
	"github.com/dittoconn/dittoconn/actors/mapping"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/actors/monitor"
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
}

// Settings are the grain's tunable values: what an operator configures.
// DefaultSettings holds Ditto's values; a zero field in a Config's Settings
// takes the default.
type Settings struct {
	// SnapshotThreshold: snapshot when this many events passed since the last one.
	SnapshotThreshold int
	// PassivateAfter: an idle grain whose desired status is not open stops after this long.
	PassivateAfter time.Duration
	// PassivateDeletedAfter: the same for deleted or never created ids.
	PassivateDeletedAfter time.Duration
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
}

// DefaultSettings are Ditto's values.
func DefaultSettings() Settings {
	return Settings{
		SnapshotThreshold:     10,
		PassivateAfter:        45 * time.Minute,
		PassivateDeletedAfter: 5 * time.Minute,
		StoreTimeout:          ditto.DefaultAskTimeout,
		Validation:            model.DefaultValidationConfig(),
		DialTimeout:           10 * time.Second,
		Backoff:               client.DefaultBackoff,
		ConnectTimeout:        10 * time.Second,
		TestTimeout:           10 * time.Second,
		Logs:                  monitor.DefaultLogConfig(),
	}
}

// Config carries the grain's settings and dependencies.
type Config struct {
	Settings
	Store    Store
	Instance string // this node's instance id ("client" of status entries)
	WriterID string // journal writer UUID (_w)
	// Clients builds the live clients per connection type; a type without an
	// entry gets no live client (open only changes the desired status).
	Clients client.Registry
	// Runners owns the client goroutines of all grains; nil: one per kind.
	Runners *Runners
	// Bus routes data-plane signals between connections; nil: an
	// in-process bus of this kind.
	Bus bus.Bus
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
	positive(&c.Logs.LogDuration, d.Logs.LogDuration)
	positive(&c.StoreTimeout, d.StoreTimeout)
	positive(&c.DialTimeout, d.DialTimeout)
	positive(&c.ConnectTimeout, d.ConnectTimeout)
	positive(&c.TestTimeout, d.TestTimeout)
	c.Backoff = c.Backoff.WithDefaults()
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
	props := actor.PropsFromProducer(func() actor.Actor { return &grain{cfg: &cfg} })
	return cluster.NewKind(Kind, props)
}

// grain is one connection's actor. Everything in it is touched only by the
// actor's own goroutine.
type grain struct {
	cfg *Config
	log zerolog.Logger

	id  string
	pid string

	recovered  bool
	recoverErr error

	seq             int64 // last persisted sequence number (= revision)
	lastSnapshotSeq int64
	conn            *model.Connection // nil: never created, or deleted
	deleted         bool
	// connJSON caches conn.JSON(false): retrieve is the hot path and the
	// entity changes only through persist and recover, which clear it.
	connJSON []byte

	live    liveState
	clients clientSet
	plane   *dataplane.Plane // data plane of the running clients; nil: none
	// satellites: clients 1…clientCount-1 on other members
	sats     []satSlot
	satTimer *time.Timer
	root     *actor.RootContext
	self     *actor.PID

	// sender and cmd of the command being handled (for answers given later)
	actx   actor.Context
	sender *actor.PID
	cmd    *pb.Command
}

// deferred is what a handler returns when it answers later (a waiter or a
// goroutine sends the reply).
var deferred = &pb.Reply{}

func (g *grain) Receive(ctx actor.Context) {
	switch msg := ctx.Message().(type) {
	case *cluster.ClusterInit:
		g.id = msg.Identity.Identity
		g.pid = PIDPrefix + g.id
		g.log = g.cfg.Logger.With().Str("connection_id", g.id).Logger()
		g.live.since = g.cfg.Now()
		g.live.logs = monitor.NewLogs(monitor.LogOptions{ConnectionID: g.id, Config: g.cfg.Logs, Now: g.cfg.Now,
			Publisher: g.cfg.LogPublisher})
		root, self := ctx.ActorSystem().Root, ctx.Self()
		g.root, g.self = root, self
		g.live.send = func(m any) { root.Send(self, m) }
		g.recover()
		if g.recovered && g.conn != nil && g.conn.ConnectionStatus == "open" {
			// as Ditto: a desired-open connection reconnects right after recovery
			g.live.enableLogs(g.cfg.Now(), g.cfg.Logs.LogDuration)
			g.startClients(ctx)
		}
		g.armPassivation(ctx)
	case *pb.Command:
		if msg.Type == satStateType {
			g.onSatState(msg)
			return
		}
		g.actx, g.sender, g.cmd = ctx, ctx.Sender(), msg
		reply := g.handle(msg)
		g.actx, g.sender, g.cmd = nil, nil, nil
		if reply != deferred {
			if msg.Headers[ditto.HeaderResponseRequired] == "false" {
				reply = &pb.Reply{Kind: pb.Reply_NO_ANSWER}
			}
			ctx.Respond(reply)
		}
		g.armPassivation(ctx)
		if g.recoverErr != nil {
			// A grain that could not read its journal must not linger with a
			// wrong view: the next command activates a fresh one.
			ctx.Poison(ctx.Self())
		}
	case *clientReport:
		g.onReport(ctx, msg)
		g.armPassivation(ctx)
	case *logsCheck:
		g.live.onCheck(g.cfg.Now())
	case *satRenew:
		g.onSatRenew(msg)
	case *actor.ReceiveTimeout:
		if g.conn != nil && g.conn.ConnectionStatus == "open" || g.running() || len(g.clients.waiters) > 0 {
			return // desired-open connections stay in memory, as in Ditto
		}
		ctx.Poison(ctx.Self())
	case *actor.Stopping:
		g.stopAll()
		g.live.stopCheck()
	}
}

// armPassivation sets the idle timeout that fits the current state.
func (g *grain) armPassivation(ctx actor.Context) {
	switch {
	case g.conn == nil:
		ctx.SetReceiveTimeout(g.cfg.PassivateDeletedAfter)
	case g.conn.ConnectionStatus == "open" || g.running():
		ctx.CancelReceiveTimeout()
	default:
		ctx.SetReceiveTimeout(g.cfg.PassivateAfter)
	}
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
	g.seq, g.lastSnapshotSeq, g.conn, g.deleted = 0, 0, nil, false
	g.recoverErr, g.connJSON = nil, nil

	snap, err := g.cfg.Store.LatestSnapshot(ctx, g.pid)
	switch {
	case err == nil:
		g.seq, g.lastSnapshotSeq = snap.Seq, snap.Seq
		if err := g.applySnapshot(snap.Payload); err != nil {
			g.recoverErr = fmt.Errorf("snapshot %d: %w", snap.Seq, err)
		}
	case errors.Is(err, persistence.ErrNotFound):
	default:
		g.recoverErr = fmt.Errorf("load snapshot: %w", err)
	}
	if g.recoverErr == nil {
		err = g.cfg.Store.Replay(ctx, g.pid, g.seq+1, func(ev persistence.Event) error {
			if err := g.applyStored(ev); err != nil {
				// Ditto skips an event it cannot read (e.g. one it cannot decrypt);
				// the sequence number still advances.
				g.log.Error().Err(err).Int64("seq", ev.Seq).Str("manifest", ev.Manifest).Msg("skipping unreadable event")
			}
			g.seq = ev.Seq
			return nil
		})
		if err != nil {
			g.recoverErr = fmt.Errorf("replay: %w", err)
		}
	}
	if g.recoverErr != nil {
		g.log.Error().Err(g.recoverErr).Msg("recovery failed")
		return
	}
	g.recovered = true
	g.log.Debug().Int64("seq", g.seq).Bool("exists", g.conn != nil).Msg("recovered")
}
