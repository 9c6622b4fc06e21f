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
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/service"
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
	cfg.Logger = log
	cfg.Actors.Collector = monitor.NewCollector() // served at /metrics
	mapping.SetRegexpTimeout(cfg.Actors.Mapping.JavaScript.MaxScriptExecutionTime)
	svc, err := service.Start(ctx, cfg.Config)
	if err != nil {
		return err
	}
	log.Info().Str("http_addr", svc.Addr().String()).Str("instance", cfg.Instance).
		Str("member", svc.Sys.Member()).Int("members", svc.Sys.Members()).Msg("dittoconn ready")

	var serveErr error
	select {
	case err := <-svc.ServeErr():
		serveErr = fmt.Errorf("http server: %w", err)
	case reason := <-svc.Sys.Lost():
		// This member can never rejoin under its id: exit at once (a
		// graceful leave would wait on the etcd that is gone) so that a
		// supervisor starts a new member.
		log.Error().Str("reason", reason).Msg("exiting: left the cluster")
		exitLost()
	case <-ctx.Done():
		log.Info().Msg("shutting down")
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := svc.Stop(sctx); err != nil {
		log.Error().Err(err).Msg("shutdown incomplete")
	}
	return serveErr
}

// shutdownTimeout bounds the wait for in-flight requests on shutdown.
const shutdownTimeout = 30 * time.Second

// exitLost ends the process when this member has dropped out of the
// cluster; exit status 3 tells a supervisor to start it again.
var exitLost = func() { os.Exit(3) }

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
