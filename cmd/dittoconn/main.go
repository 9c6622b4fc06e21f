// Command dittoconn runs the connectivity service: the devops piggyback
// gateway, the connection grains and the store.
//
//	dittoconn [serve] [flags]
//	dittoconn connections|migration COMMAND [flags]   (a client of a running server)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors"
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/migration"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/gateway"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/encrypted"
	"github.com/dittoconn/dittoconn/persistence/mongo"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && isCLICommand(os.Args[1]) { // client subcommands (cli.go)
		code := runCLI(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "dittoconn:", err)
		os.Exit(1)
	}
}

// run serves until ctx is done, then shuts down in order: stop accepting and
// finish in-flight requests, stop the actors, close the store.
func run(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	if len(args) > 0 && args[0] == "serve" {
		args = args[1:]
	}
	cfg, err := parseConfig(args, getenv)
	if err != nil {
		return err
	}
	log, err := newLogger(cfg, logOut)
	if err != nil {
		return err
	}

	store, engine, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	log.Info().Str("engine", engine).Msg("store opened")
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := store.Close(cctx); err != nil {
			log.Error().Err(err).Msg("closing store failed")
		}
	}()

	// The grains see plaintext; the engine holds what Ditto would store.
	connStore, err := encrypted.New(store, cfg.Encryption, log.With().Str("component", "encryption").Logger())
	if err != nil {
		return err
	}
	log.Info().Bool("encryption_enabled", cfg.Encryption.Enabled).Bool("key_set", cfg.Encryption.Key != "").
		Bool("old_key_set", cfg.Encryption.OldKey != "").Msg("connection field encryption")

	var migrationCfg *migration.Config
	if cfg.Encryption.MigrationAvailable() {
		engineOps, ok := store.(persistence.Migration)
		if !ok {
			return fmt.Errorf("the %s store cannot run the encryption migration", engine)
		}
		migrationCfg = &migration.Config{Store: engineOps, Settings: cfg.Encryption, LeaseTTL: cfg.MigrationLease,
			Logger: log.With().Str("component", "encryption-migration").Logger()}
	}

	dp, err := newDataPlaneMonitoring(cfg.Instance, getenv, log)
	if err != nil {
		return err
	}
	defer dp.close()

	validation := model.DefaultValidationConfig()
	validation.MaxSources, validation.MaxTargets = cfg.MaxSources, cfg.MaxTargets
	sys, err := actors.Start(actors.Config{
		Store:             connStore,
		Instance:          cfg.Instance,
		SnapshotThreshold: cfg.SnapshotThreshold,
		PassivateAfter:    cfg.PassivateAfter,
		Validation:        validation,
		Migration:         migrationCfg,
		Backoff:           client.Backoff{Min: cfg.ClientBackoffMin, Max: cfg.ClientBackoffMax},
		ConnectTimeout:    cfg.ClientConnectTimeout,
		TestTimeout:       cfg.ClientTestTimeout,
		MaxConnecting:     cfg.ClientMaxConnecting,
		Collector:         dp.collector,
		LogPublisher:      dp.publisher,
		Logs:              dp.logs,
		Cluster:           clusterConfig(cfg),
		Logger:            log,
	})
	if err != nil {
		return err
	}
	defer sys.Stop()

	srv := gateway.New(gateway.Config{
		Instance:       cfg.Instance,
		DevopsSecured:  cfg.DevopsSecured,
		DevopsPassword: cfg.DevopsPassword,
		BodyLimit:      cfg.BodyLimit,
		Limits:         cfg.HTTPLimits,
		Logger:         log.With().Str("component", "gateway").Logger(),

		CORSAllowedOrigins: corsOrigins(getenv),
		Metrics:            dp.handler,
	}, sys)
	sys.ServePiggyback(srv.ServePeer)
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.HTTPAddr, err)
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Start(ln) }()
	log.Info().Str("http_addr", ln.Addr().String()).Str("instance", cfg.Instance).
		Str("member", sys.Member()).Int("members", sys.Members()).Msg("dittoconn ready")

	select {
	case err := <-serveErr:
		return fmt.Errorf("http server: %w", err)
	case reason := <-sys.Lost():
		// This member can never rejoin under its id: exit at once (a
		// graceful leave would wait on the etcd that is gone) so that a
		// supervisor starts a new member.
		log.Error().Str("reason", reason).Msg("exiting: left the cluster")
		exitLost()
	case <-ctx.Done():
	}
	log.Info().Msg("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		log.Error().Err(err).Msg("http shutdown incomplete")
	}
	return nil
}

// exitLost ends the process when this member has dropped out of the
// cluster; exit status 3 tells a supervisor to start it again.
var exitLost = func() { os.Exit(3) }

// clusterConfig is the actors' cluster configuration; nil: one node.
func clusterConfig(cfg config) *actors.ClusterConfig {
	if len(cfg.ClusterEtcd) == 0 {
		return nil
	}
	return &actors.ClusterConfig{
		Name:          cfg.ClusterName,
		Bind:          cfg.ClusterBind,
		Advertise:     cfg.ClusterAdvertise,
		Etcd:          cfg.ClusterEtcd,
		EtcdLostAfter: cfg.ClusterEtcdLostAfter,
		TLSCertFile:   cfg.ClusterTLSCert,
		TLSKeyFile:    cfg.ClusterTLSKey,
		TLSCAFile:     cfg.ClusterTLSCA,
	}
}

func openStore(ctx context.Context, cfg config) (persistence.Store, string, error) {
	if cfg.MongoURI != "" {
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
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
	s, err := bolt.Open(cfg.DataDir)
	if err != nil {
		return nil, "", fmt.Errorf("open embedded store in %s: %w", cfg.DataDir, err)
	}
	return s, "embedded", nil
}

func newLogger(cfg config, out io.Writer) (zerolog.Logger, error) {
	level, err := zerolog.ParseLevel(cfg.LogLevel)
	if err != nil {
		return zerolog.Logger{}, fmt.Errorf("log level %q: %w", cfg.LogLevel, err)
	}
	if cfg.LogFormat == "console" {
		out = zerolog.ConsoleWriter{Out: out, TimeFormat: time.RFC3339}
	}
	return zerolog.New(out).Level(level).With().Timestamp().Logger(), nil
}
