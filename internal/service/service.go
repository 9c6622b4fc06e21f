// Package service builds one dittoconn member from one Config: the store
// engine, the encrypting store decorator, the actor system (with the
// encryption-migration singleton when the keys call for it), the connection
// log publisher and Prometheus metrics, the HTTP gateway and the route of
// piggyback commands other members forward to this one.
//
// It is the only wiring root: cmd/dittoconn fills a Config from flags and
// the environment, test/kit from test options, and both start through
// Start, so tests run what the binary runs. It lives apart from actors
// (which must not know HTTP) and from cmd (which tests may not import).
//
// A Service is started once and stopped once; its methods may be called
// from any goroutine.
package service

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors"
	"github.com/dittoconn/dittoconn/actors/migration"
	"github.com/dittoconn/dittoconn/gateway"
	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clients"
	"github.com/dittoconn/dittoconn/internal/client/hono"
	"github.com/dittoconn/dittoconn/internal/client/httppush"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/cleanup"
	"github.com/dittoconn/dittoconn/persistence/encryptedstore"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	"github.com/dittoconn/dittoconn/persistence/mongo"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Config is everything one member needs. The service sets what it builds
// itself: Actors' Store, Instance, Logger, Migration and LogPublisher, and
// Gateway's Instance and Logger.
type Config struct {
	// Instance is this member's id (INSTANCE_INDEX): the key of aggregated
	// answers and the "client" of status entries.
	Instance string
	// HTTPAddr is where the gateway listens ("127.0.0.1:0": any free port).
	HTTPAddr string
	// Store chooses and opens the engine; ignored when Engine is set.
	Store StoreConfig
	// Engine is an engine the caller opened (tests); the service closes it
	// on Stop as it would its own.
	Engine persistence.Store
	// Encryption is Ditto's connection field encryption: the grains see
	// plaintext, the engine holds what Ditto would store.
	Encryption fieldcrypto.Settings
	// Migration tunes the encryption-migration singleton, which runs when
	// Encryption makes a migration possible; its Store, Settings and Logger
	// are set here.
	Migration migration.Config
	// Cleanup is Ditto's background journal cleanup (CLEANUP_*), run on
	// the engine while the service runs; the zero value is disabled.
	Cleanup cleanup.Config
	// Fluent publishes connection log entries to Fluentd when enabled.
	Fluent monitor.FluentConfig
	// HTTPPush tunes the clients of http-push connections (request timeout,
	// proxy); ignored when Actors.Clients is set.
	HTTPPush httppush.Options
	// Hono is the service-wide Hono settings (Ditto's
	// ditto.connectivity.hono); ignored when Actors.Clients is set.
	Hono hono.Config
	// Ditto is the bridge to Ditto's gateway (DITTOCONN_DITTO_*); a zero
	// URI: standalone.
	Ditto bridge.Config
	// ClientSettings are the service-wide settings the broker clients read
	// (Ditto's MQTT and consumer-throttling variables), variable → value;
	// installed with client.UseSettings at start.
	ClientSettings map[string]string
	// Actors are the actor system's settings; a Collector set there is
	// also served at /metrics, with the Go runtime's and the process's.
	Actors  actors.Config
	Gateway gateway.Config
	Logger  zerolog.Logger
}

// StoreConfig chooses the engine: MongoDB when MongoURI is set, else the
// embedded store in DataDir.
type StoreConfig struct {
	MongoURI      string
	MongoDatabase string
	DataDir       string
}

// Defaults of the store settings (Ditto's database name).
const (
	DefaultMongoDatabase = "connectivity"
	DefaultDataDir       = "./dittoconn-data"
	DefaultHTTPAddr      = "127.0.0.1:8080"
)

// Time bounds of opening and closing the store.
const (
	openTimeout  = 30 * time.Second
	closeTimeout = 10 * time.Second
)

// DefaultConfig holds the defaults of every setting.
func DefaultConfig() Config {
	return Config{
		HTTPAddr:   DefaultHTTPAddr,
		Store:      StoreConfig{MongoDatabase: DefaultMongoDatabase, DataDir: DefaultDataDir},
		Encryption: fieldcrypto.DefaultSettings(),
		Migration:  migration.Config{LeaseTTL: migration.DefaultLeaseTTL},
		Cleanup:    cleanup.Defaults(),
		Fluent:     monitor.DefaultFluentConfig(),
		HTTPPush:   httppush.Options{RequestTimeout: httppush.DefaultRequestTimeout, TokenSkew: httppush.DefaultTokenSkew},
		Hono:       hono.DefaultConfig(),
		Actors:     actors.DefaultConfig(),
		Gateway:    gateway.DefaultConfig(),
	}
}

// Service is one running member.
type Service struct {
	// Engine is the store engine (beneath the encrypting decorator).
	Engine persistence.Store
	Sys    *actors.System
	HTTP   *gateway.Server

	addr     net.Addr
	serveErr chan error
	log      zerolog.Logger
	closers  []func() error // in the order Stop runs them, after the actors
}

// Start opens the store and starts the actors and the gateway, listening on
// cfg.HTTPAddr. On an error everything started so far is closed again.
func Start(ctx context.Context, cfg Config) (_ *Service, err error) {
	log := cfg.Logger
	svc := &Service{log: log, serveErr: make(chan error, 1)}
	if cfg.ClientSettings != nil {
		client.UseSettings(cfg.ClientSettings)
	}
	defer func() {
		if err != nil {
			if cerr := svc.close(); cerr != nil {
				log.Error().Err(cerr).Msg("closing after a failed start")
			}
		}
	}()

	engine, engineName := cfg.Engine, fmt.Sprintf("%T", cfg.Engine)
	if engine == nil {
		if engine, engineName, err = openStore(ctx, cfg.Store, log); err != nil {
			return nil, err
		}
		log.Info().Str("engine", engineName).Msg("store opened")
	}
	svc.Engine = engine
	svc.closers = append(svc.closers, func() error {
		cctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := engine.Close(cctx); err != nil {
			return fmt.Errorf("close store: %w", err)
		}
		return nil
	})

	if cfg.Cleanup.Enabled {
		if err := cfg.Cleanup.Validate(); err != nil {
			return nil, err
		}
		// On the engine: the cleanup reads sequence numbers, never payloads.
		cctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		done := make(chan struct{})
		go func() {
			defer close(done)
			cleanup.New(cfg.Cleanup, engine, log.With().Str("component", "journal-cleanup").Logger()).Run(cctx)
		}()
		// Stopped before the store closes (closers run in order): a delete
		// cut short is finished by the next run.
		svc.closers = append([]func() error{func() error { stop(); <-done; return nil }}, svc.closers...)
	}

	connStore, err := encryptedstore.New(engine, cfg.Encryption, log.With().Str("component", "encryption").Logger())
	if err != nil {
		return nil, err
	}
	log.Info().Bool("encryption_enabled", cfg.Encryption.Enabled).Bool("key_set", cfg.Encryption.Key != "").
		Bool("old_key_set", cfg.Encryption.OldKey != "").Msg("connection field encryption")

	ac := cfg.Actors
	ac.Store, ac.Instance, ac.Logger = connStore, cfg.Instance, log
	if ac.Clients == nil {
		ac.Clients = clients.Specs().With(client.Registry{model.TypeHTTPPush: httppush.NewFactory(cfg.HTTPPush)})
		ac.Clients[model.TypeHono] = clients.Hono(cfg.Hono)
	}
	if err := ac.Validation.CheckHostSettings(); err != nil {
		return nil, fmt.Errorf("blocked host settings: %w", err)
	}
	if cfg.Encryption.MigrationAvailable() {
		engineOps, ok := engine.(persistence.Migration)
		if !ok {
			return nil, fmt.Errorf("the %s store cannot run the encryption migration", engineName)
		}
		mc := cfg.Migration
		mc.Store, mc.Settings = engineOps, cfg.Encryption
		mc.Logger = log.With().Str("component", "encryption-migration").Logger()
		ac.Migration = &mc
	}
	if cfg.Ditto.URI != "" {
		bc := cfg.Ditto
		bc.Logger = log.With().Str("component", "ditto-bridge").Logger()
		col := ac.Collector
		ac.Ditto = func(id string) dataplane.DittoLink {
			l := bridge.Open(bc, id)
			if col == nil {
				return l
			}
			return &exportedLink{Link: l, remove: col.AddBridge(id, func() monitor.BridgeStats {
				st := l.Stats()
				return monitor.BridgeStats{Sessions: st.Sessions, SessionsOpen: st.SessionsOpen, InFlight: st.InFlight,
					Reconnects: st.Reconnects, Dropped: st.Dropped, Timeouts: st.Timeouts}
			})}
		}
		log.Info().Str("uri", ditto.MaskUserInfo(bc.URI)).Str("auth", bc.Auth).Msg("working next to Ditto")
	}
	if cfg.Fluent.Enabled {
		p, err := monitor.NewFluentPublisher(cfg.Fluent, cfg.Instance)
		if err != nil {
			return nil, fmt.Errorf("connection log publisher: %w", err)
		}
		ac.LogPublisher = p
		svc.closers = append([]func() error{func() error {
			if err := p.Close(); err != nil {
				return fmt.Errorf("flushing connection logs to Fluentd: %w", err)
			}
			return nil
		}}, svc.closers...)
		log.Info().Str("host", cfg.Fluent.Host).Int("port", cfg.Fluent.Port).Msg("publishing connection logs to Fluentd")
	}

	// The gateway decides which piggyback commands this instance receives,
	// also for those other members forward: the actors get that decision
	// when they start, the gateway gets the actors as Dispatcher and Peers.
	serveForwarded := gateway.ServeForwarded(cfg.Instance, log)
	ac.Piggyback = func(ctx context.Context, local actors.Dispatcher, cmd *pb.Command) *pb.Reply {
		return serveForwarded(ctx, local, cmd)
	}
	if svc.Sys, err = actors.Start(ac); err != nil {
		return nil, err
	}

	gc := cfg.Gateway
	gc.Instance, gc.Logger = cfg.Instance, log // the gateway names itself in its lines
	if ac.Collector != nil && gc.Metrics == nil {
		gc.Metrics = metricsHandler(ac.Collector, svc.Sys)
	}
	gc.Peers, gc.Cluster = svc.Sys, svc.Sys
	svc.HTTP = gateway.New(gc, svc.Sys)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	svc.addr = ln.Addr()
	go func() { svc.serveErr <- svc.HTTP.Start(ln) }()
	return svc, nil
}

// Addr is the address the gateway listens on.
func (s *Service) Addr() net.Addr { return s.addr }

// ServeErr yields the gateway's error if it stops serving before Stop
// (nil after a clean shutdown).
func (s *Service) ServeErr() <-chan error { return s.serveErr }

// Stop shuts down in order: stop accepting and finish in-flight requests
// until ctx ends, stop the actors, flush the log publisher, close the store.
// Every step runs regardless; requests cut off by ctx are logged, the other
// failures returned.
func (s *Service) Stop(ctx context.Context) error {
	if err := s.HTTP.Shutdown(ctx); err != nil {
		s.log.Error().Err(err).Msg("http shutdown incomplete")
	}
	return s.close()
}

// close stops what Start started besides the gateway.
func (s *Service) close() error {
	if s.Sys != nil {
		s.Sys.Stop()
	}
	var errs []error
	for _, c := range s.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func openStore(ctx context.Context, cfg StoreConfig, log zerolog.Logger) (persistence.Store, string, error) {
	if cfg.MongoURI != "" {
		octx, cancel := context.WithTimeout(ctx, openTimeout)
		defer cancel()
		s, err := mongo.Open(octx, cfg.MongoURI, cfg.MongoDatabase)
		if err != nil {
			return nil, "", fmt.Errorf("open MongoDB store (database %s): %w", cfg.MongoDatabase, err)
		}
		return s, "mongodb", nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, "", fmt.Errorf("create data dir: %w", err)
	}
	s, err := bolt.Open(cfg.DataDir, bolt.WithLogger(log))
	if err != nil {
		return nil, "", fmt.Errorf("open embedded store in %s: %w", cfg.DataDir, err)
	}
	return s, "embedded", nil
}

// exportedLink is a bridge link whose Stats are on /metrics while it is
// open.
type exportedLink struct {
	*bridge.Link
	remove func()
}

func (l *exportedLink) Close() {
	l.remove()
	l.Link.Close()
}

// metricsHandler is the Prometheus exposition of the message counters with
// the Go runtime's and the process's collectors, and in a cluster this
// member's view of it.
func metricsHandler(c *monitor.Collector, cl gateway.ClusterHealth) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if clustered, _, _ := cl.ClusterHealth(); clustered {
		reg.MustRegister(
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dittoconn_cluster_etcd_unreachable",
				Help: "1 while etcd does not answer this member (it serves with the membership it last saw), else 0"},
				func() float64 {
					if _, _, since := cl.ClusterHealth(); !since.IsZero() {
						return 1
					}
					return 0
				}),
			prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dittoconn_cluster_members",
				Help: "members of the cluster in this member's view"},
				func() float64 { _, n, _ := cl.ClusterHealth(); return float64(n) }))
	}
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
