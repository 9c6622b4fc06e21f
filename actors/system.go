package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/google/uuid"
	"github.com/rs/zerolog"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dittoconn/dittoconn/actors/connection"
	"github.com/dittoconn/dittoconn/actors/ids"
	"github.com/dittoconn/dittoconn/actors/migration"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clients"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/persistence"
)

// Config configures the actor system. Zero settings take the defaults of
// DefaultConfig, so a Config literal need only name what it changes.
type Config struct {
	// Settings are the connection grains' (zero fields: Ditto's defaults).
	connection.Settings
	Store    persistence.Store
	Instance string
	// Migration configures the encryption-migration singleton; nil: none
	// (its path then has no answer, as in Ditto without encryption keys).
	Migration *migration.Config
	// Clients are the live broker clients per connection type; nil: the
	// default table (internal/client/clients).
	Clients client.Specs
	// MaxConnecting bounds concurrent connect attempts of all connections.
	MaxConnecting int
	// ReopenParallelism bounds how many stored open connections are woken
	// at once on start.
	ReopenParallelism int
	// Bus routes data-plane signals between connections; nil: in-process.
	Bus bus.Bus
	// Ditto opens a connection's link to Ditto's gateway; nil: standalone
	// (connection.Config.Ditto).
	Ditto func(connectionID string) dataplane.DittoLink
	// Collector exports the message counters to Prometheus; nil: none.
	Collector *monitor.Collector
	// LogPublisher receives every connection log entry (Fluentd); nil: none.
	LogPublisher monitor.Publisher
	// Cluster joins this member to a cluster found through etcd when it
	// names etcd endpoints; without them: a single member on loopback with
	// no discovery service (the other cluster settings are then unused).
	Cluster ClusterConfig
	// Piggyback serves the piggyback commands other members forward to this
	// one; nil: they get NO_ANSWER.
	Piggyback PiggybackHandler
	Logger    zerolog.Logger
}

// DefaultReopenParallelism is how many connections the reopen sweep wakes at
// once after a restart.
const DefaultReopenParallelism = 32

// DefaultConfig holds the defaults of every setting (no dependencies).
func DefaultConfig() Config {
	return Config{
		Settings:          connection.DefaultSettings(),
		MaxConnecting:     connection.DefaultMaxConnecting,
		ReopenParallelism: DefaultReopenParallelism,
		Cluster:           DefaultClusterConfig(),
	}
}

// System is the running actor system.
type System struct {
	actors  *actor.ActorSystem
	cluster *cluster.Cluster
	idsPID  *actor.PID
	runners *connection.Runners
	lister  *ids.Lister
	log     zerolog.Logger

	members   *members
	lost      chan string
	etcd      *clientv3.Client // cluster mode only
	provider  *etcdProvider    // cluster mode only
	reopenPar int

	stopReopen context.CancelFunc
	reopenDone chan struct{}
}

// Start starts the actor system: one member on loopback, or a member of
// the cluster cfg.Cluster describes; with the connection kind, the
// id-listing actor, the migration singleton's kind when configured, and
// the per-member receivers of forwarded piggyback commands and signals.
func Start(cfg Config) (sys *System, err error) {
	log := cfg.Logger
	as := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			return slog.New(newSlogBridge(log.With().Str("component", "protoactor").Logger(), slog.LevelWarn))
		}),
		actor.WithDeadLetterRequestLogging(false),
	)
	sys = &System{actors: as, log: log, members: newMembers(), lost: make(chan string, 1),
		reopenPar: cfg.ReopenParallelism}
	sys.subscribeTopology(as)

	specs := cfg.Clients
	if specs == nil {
		specs = clients.Specs()
	}
	localBus := cfg.Bus
	if localBus == nil {
		localBus = bus.NewLocal()
	}
	signalBus := bus.Bus(localBus)
	// Configuration errors first, before anything is dialled.
	var clusterCfg *ClusterConfig // nil: one member
	if cfg.Cluster.Enabled() {
		clusterCfg = &cfg.Cluster
	}
	remoteCfg, barrier, err := remoteConfig(clusterCfg)
	if err != nil {
		return nil, err
	}
	var cc ClusterConfig // zero: one member (its defaults name it and bound its start)
	if clusterCfg != nil {
		cc = *clusterCfg
	}
	cc = cc.withDefaults()
	var provider cluster.ClusterProvider = selfProvider{}
	if clusterCfg != nil {
		cli, err := newEtcd(cc)
		if err != nil {
			return nil, err
		}
		sys.etcd = cli
		sys.provider = newEtcdProvider(etcdRegistry{cli}, cc.Name, cc,
			log.With().Str("component", "cluster").Logger(), sys.reportLost)
		provider = sys.provider
		signalBus = &clusterBus{local: localBus, members: sys.members, root: as.Root}
	}
	runners := connection.NewRunners(cfg.MaxConnecting)
	connCfg := connection.Config{
		Settings:     cfg.Settings,
		Store:        cfg.Store,
		Instance:     cfg.Instance,
		WriterID:     uuid.NewString(),
		Clients:      specs,
		Runners:      runners,
		Bus:          signalBus,
		Ditto:        cfg.Ditto,
		Collector:    cfg.Collector,
		LogPublisher: cfg.LogPublisher,
		Members:      sys.members,
		Logger:       log.With().Str("component", "connection").Logger(),
	}
	kind := connection.NewKind(connCfg)
	c := cluster.New(as, cluster.Configure(cc.Name, provider, disthash.New(), remoteCfg,
		cluster.WithKinds(append([]*cluster.Kind{kind}, migrationKinds(cfg.Migration)...)...)))
	sys.cluster, sys.runners = c, runners

	// The receivers exist before this member joins: others may forward to
	// it as soon as they see it.
	relayLog := func(err error, stream string) {
		log.Warn().Err(err).Str("stream", stream).Msg("dropped a signal relayed from another member")
	}
	local := sys
	receivers := map[string]*actor.Props{
		piggybackName:                actor.PropsFromProducer(func() actor.Actor { return &piggybackReceiver{handler: cfg.Piggyback, local: local} }),
		relayName:                    actor.PropsFromProducer(func() actor.Actor { return &signalRelay{local: localBus, log: relayLog} }),
		connection.SatelliteHostName: connection.NewSatelliteHost(connCfg),
	}
	for name, props := range receivers {
		if _, err := as.Root.SpawnNamed(props, name); err != nil {
			sys.closeEtcd()
			return nil, fmt.Errorf("actors: spawn %s: %w", name, err)
		}
	}

	if err := startMember(c, barrier, cc.StartTimeout); err != nil {
		sys.closeEtcd()
		return nil, err
	}
	sys.subscribeLeft(as)

	sys.lister = &ids.Lister{Heads: cfg.Store, Logger: log.With().Str("component", "ids").Logger()}
	sys.idsPID, err = as.Root.SpawnNamed(sys.lister.Props(), ids.Name)
	if err != nil {
		c.Shutdown(true)
		sys.closeEtcd()
		return nil, fmt.Errorf("actors: spawn %s: %w", ids.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sys.stopReopen, sys.reopenDone = cancel, make(chan struct{})
	go sys.reopenLoop(ctx)
	if clusterCfg != nil {
		go sys.watchdog(ctx, cc)
	}
	return sys, nil
}

func (s *System) closeEtcd() {
	if s.etcd != nil {
		_ = s.etcd.Close()
	}
}

// Stop closes every live client (closed announcements first), stops all
// grains (they have persisted everything already) and leaves the cluster.
func (s *System) Stop() {
	s.stopReopen()
	<-s.reopenDone
	if !s.runners.Stop(15 * time.Second) {
		s.log.Warn().Msg("some broker clients did not close in time")
	}
	s.actors.Root.Stop(s.idsPID)
	// A graceful leave deregisters from etcd with no deadline of its own:
	// do not let an unreachable etcd hold the process.
	done := make(chan struct{})
	go func() { s.cluster.Shutdown(true); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.log.Warn().Msg("leaving the cluster did not finish in time")
	}
	s.closeEtcd()
}

// ActivatedGrains counts the connection grains alive on this member.
func (s *System) ActivatedGrains() int {
	if k, ok := s.cluster.TryGetClusterKind(connection.Kind); ok {
		return int(k.Count())
	}
	return 0
}

// selfProvider makes a cluster of exactly this member: no discovery service.
type selfProvider struct{}

func (selfProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	c.MemberList.UpdateClusterTopology([]*cluster.Member{{
		Id: c.ActorSystem.ID, Host: host, Port: int32(port), Kinds: c.GetClusterKinds(),
	}})
	return nil
}

func (selfProvider) StartClient(*cluster.Cluster) error { return nil }
func (selfProvider) Shutdown(bool) error                { return nil }

// slogBridge sends protoactor's slog records to zerolog.
type slogBridge struct {
	log   zerolog.Logger
	level slog.Level
	attrs []slog.Attr
}

func newSlogBridge(log zerolog.Logger, level slog.Level) *slogBridge {
	return &slogBridge{log: log, level: level}
}

func (b *slogBridge) Enabled(_ context.Context, l slog.Level) bool { return l >= b.level }

func (b *slogBridge) Handle(_ context.Context, r slog.Record) error {
	var ev *zerolog.Event
	switch {
	case r.Level >= slog.LevelError:
		ev = b.log.Error()
	case r.Level >= slog.LevelWarn:
		ev = b.log.Warn()
	case r.Level >= slog.LevelInfo:
		ev = b.log.Info()
	default:
		ev = b.log.Debug()
	}
	for _, a := range b.attrs {
		ev = ev.Str(a.Key, a.Value.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		ev = ev.Str(a.Key, a.Value.String())
		return true
	})
	ev.Msg(r.Message)
	return nil
}

func (b *slogBridge) WithAttrs(as []slog.Attr) slog.Handler {
	return &slogBridge{log: b.log, level: b.level, attrs: append(append([]slog.Attr(nil), b.attrs...), as...)}
}

func (b *slogBridge) WithGroup(string) slog.Handler { return b }
