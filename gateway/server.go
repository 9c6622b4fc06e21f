package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/gateway/connections"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// DefaultBodyLimit is the largest request body accepted when Config.BodyLimit
// is not set (Ditto's pekko.http.server.parsing.max-content-length is 1m).
const DefaultBodyLimit int64 = 1 << 20

// HTTP server timeouts. Writes must outlive the longest piggyback deadline
// (maxTimeout); reads are bounded so a slow client cannot hold a connection.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = maxTimeout + 15*time.Second
	idleTimeout       = 120 * time.Second
	maxHeaderBytes    = 64 << 10
)

// Config configures the HTTP edge.
type Config struct {
	// Addr is informational for callers that build their own listener.
	Addr string
	// Instance is this instance's identifier (INSTANCE_INDEX); it is matched
	// against /devops/piggyback/connectivity/{instance} and keys aggregated
	// responses.
	Instance string
	// DevopsSecured enables basic authentication on /devops.
	DevopsSecured  bool
	DevopsPassword string
	// BodyLimit caps request bodies in bytes; <= 0 means DefaultBodyLimit.
	BodyLimit int64
	// Limits bound what one request or client may take; zero fields take the
	// defaults above.
	Limits Limits
	// CORSAllowedOrigins are the browser origins (e.g. "https://ui.example:8443",
	// or "*") allowed to call the API from another origin; empty turns CORS off.
	CORSAllowedOrigins []string
	// Peers, when set, reaches the other members of a cluster: piggyback
	// commands Ditto's pub/sub would deliver to several instances are
	// forwarded to them. Nil for a single member: nothing is forwarded.
	Peers Peers
	// Cluster, when set, adds this member's view of the cluster to /health.
	Cluster ClusterHealth
	// Metrics, when set, is served at GET /metrics without authentication
	// (the Prometheus exposition of the message counters), as /health is.
	Metrics http.Handler
	// Logger receives structured logs; the zero value discards them.
	Logger zerolog.Logger
}

// Limits are the HTTP server's read/write/idle timeouts, header cap and the
// cap on concurrent requests per client address.
type Limits struct {
	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	MaxHeaderBytes    int
	// MaxConcurrentPerClient caps in-flight requests per remote IP; 0 = no
	// cap. Off by default: behind a reverse proxy or Ditto's own gateway all
	// requests share one address.
	MaxConcurrentPerClient int
}

// DefaultPassword is Ditto's default devops password.
const DefaultPassword = "foobar"

// DefaultConfig holds the defaults of every setting: Ditto's where Ditto has
// one (devops authentication on, its default password). A zero Config's
// numbers take these defaults too; its DevopsSecured stays false.
func DefaultConfig() Config {
	return Config{DevopsSecured: true, DevopsPassword: DefaultPassword, BodyLimit: DefaultBodyLimit,
		Limits: DefaultLimits()}
}

// DefaultLimits are the HTTP server's default bounds (no per-client cap).
func DefaultLimits() Limits {
	return Limits{ReadHeaderTimeout: readHeaderTimeout, ReadTimeout: readTimeout, WriteTimeout: writeTimeout,
		IdleTimeout: idleTimeout, MaxHeaderBytes: maxHeaderBytes}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	def := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ReadHeaderTimeout, d.ReadHeaderTimeout)
	def(&l.ReadTimeout, d.ReadTimeout)
	def(&l.WriteTimeout, d.WriteTimeout)
	def(&l.IdleTimeout, d.IdleTimeout)
	if l.MaxHeaderBytes <= 0 {
		l.MaxHeaderBytes = d.MaxHeaderBytes
	}
	return l
}

// Server is dittoconn's HTTP edge: the devops piggyback endpoint and health.
type Server struct {
	cfg   Config
	d     Dispatcher
	local devops // this instance's devops receiver
	log   zerolog.Logger
	echo  *echo.Echo
	srv   *http.Server
}

// New builds the server and its routes; it does not listen yet.
func New(cfg Config, d Dispatcher) *Server {
	if cfg.BodyLimit <= 0 {
		cfg.BodyLimit = DefaultBodyLimit
	}
	cfg.Limits = cfg.Limits.withDefaults()
	// The gateway names its own component; callers pass their logger as is.
	s := &Server{cfg: cfg, d: d, local: devops{instance: cfg.Instance, d: d},
		log: cfg.Logger.With().Str("component", "gateway").Logger()}
	if !cfg.DevopsSecured {
		s.log.Warn().Msg("devops authentication is disabled: /devops accepts requests without credentials")
	} else if cfg.DevopsPassword == DefaultPassword {
		// Ditto's default is public knowledge: anyone reaching the port
		// could manage every connection.
		s.log.Warn().Msg("the devops password is Ditto's default: set DEVOPS_PASSWORD")
	}

	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.Logger.SetOutput(io.Discard) // we log through zerolog only
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverer, s.accessLog)
	if cfg.Limits.MaxConcurrentPerClient > 0 {
		e.Use(perClientCap(cfg.Limits.MaxConcurrentPerClient))
	}
	if origins := newCORSOrigins(cfg.CORSAllowedOrigins); !origins.empty() {
		e.Use(cors(origins)) // before any group's authentication
	}
	s.echo = e
	s.routes()

	s.srv = &http.Server{
		Addr:              cfg.Addr,
		Handler:           e,
		ReadHeaderTimeout: cfg.Limits.ReadHeaderTimeout,
		ReadTimeout:       cfg.Limits.ReadTimeout,
		WriteTimeout:      cfg.Limits.WriteTimeout,
		IdleTimeout:       cfg.Limits.IdleTimeout,
		MaxHeaderBytes:    cfg.Limits.MaxHeaderBytes,
	}
	return s
}

// routes registers every endpoint. Each API is one group with its own auth,
// so /api/2/connections can be added beside /devops.
func (s *Server) routes() {
	s.echo.GET("/health", s.health)
	if s.cfg.Metrics != nil {
		s.echo.GET("/metrics", echo.WrapHandler(s.cfg.Metrics))
	}

	devops := s.echo.Group("/devops")
	if s.cfg.DevopsSecured {
		devops.Use(devopsAuth(s.cfg.DevopsPassword))
	}
	// Any method is routed so that non-POST requests are answered 405 after
	// authentication, as in Ditto.
	devops.Any("/piggyback", s.piggyback)
	devops.Any("/piggyback/:service", s.piggyback)
	devops.Any("/piggyback/:service/:instance", s.piggyback)

	// Ditto guards /api/2/connections with the devops credentials too.
	api := s.echo.Group("/api/2/connections")
	if s.cfg.DevopsSecured {
		api.Use(devopsAuth(s.cfg.DevopsPassword))
	}
	connections.New(connections.Config{
		BodyLimit:    s.cfg.BodyLimit,
		ParseTimeout: parseTimeout,
		Logger:       s.log,
	}, s.d).Register(api)
}

// Handler is the HTTP handler with every route, for tests and embedding.
func (s *Server) Handler() http.Handler { return s.echo }

// Start serves on ln until Shutdown; it returns nil after a clean shutdown.
func (s *Server) Start(ln net.Listener) error {
	s.log.Info().Str("addr", ln.Addr().String()).Msg("gateway listening")
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// (each bounded by its piggyback deadline) until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	if err := s.srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("gateway: shutdown: %w", err)
	}
	return nil
}

// ClusterHealth is this member's view of the cluster (actors implements
// it): whether it is a cluster member, how many members it sees, and since
// when etcd has not answered (zero: it answers).
type ClusterHealth interface {
	ClusterHealth() (clustered bool, members int, etcdUnreachableSince time.Time)
}

// health reports liveness only: no versions, no configuration. A cluster
// member adds its view of the cluster: an unreachable etcd makes the
// cluster DEGRADED while the node stays UP (it serves with the membership
// it last saw; a probe that restarted it would only make things worse).
func (s *Server) health(c echo.Context) error {
	if s.cfg.Cluster == nil {
		return c.JSONBlob(http.StatusOK, []byte(`{"status":"UP"}`))
	}
	clustered, members, since := s.cfg.Cluster.ClusterHealth()
	if !clustered {
		return c.JSONBlob(http.StatusOK, []byte(`{"status":"UP"}`))
	}
	cl := map[string]any{"status": "UP", "members": members, "etcd": "reachable"}
	if !since.IsZero() {
		cl["status"], cl["etcd"], cl["etcdUnreachableSince"] = "DEGRADED", "unreachable", since.UTC().Format(time.RFC3339Nano)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "UP", "cluster": cl})
}

// recoverer turns a panic anywhere below into Ditto's 500 internalerror JSON
// instead of a dropped connection.
func (s *Server) recoverer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			s.log.Error().
				Str("correlation_id", c.Response().Header().Get(ditto.HeaderCorrelationID)).
				Str("path", c.Path()).
				Str("panic", fmt.Sprint(r)).
				Bytes("stack", debug.Stack()).
				Msg("panic while handling request")
			err = nil
			if !c.Response().Committed {
				err = writeError(c, ditto.GatewayInternalError())
			}
		}()
		return next(c)
	}
}

// accessLog logs one line per request at debug level; never headers or body,
// which may carry credentials.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		s.log.Debug().
			Str("method", c.Request().Method).
			Str("path", c.Request().URL.Path).
			Int("status", c.Response().Status).
			Dur("took", time.Since(start)).
			Str("correlation_id", c.Response().Header().Get(ditto.HeaderCorrelationID)).
			Msg("http request")
		return err
	}
}

// handleError answers errors that escaped a handler: router rejections in
// Pekko's plain-text wording, anything else as Ditto's internal error.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		s.log.Warn().Err(err).Msg("error after response was committed")
		return
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			_ = c.String(http.StatusNotFound, "The requested resource could not be found.")
			return
		case http.StatusMethodNotAllowed:
			allow, _ := c.Get(echo.ContextKeyHeaderAllow).(string)
			_ = methodNotAllowed(c, allow)
			return
		}
	}
	s.log.Error().Err(err).Str("path", c.Path()).Msg("unhandled error")
	_ = writeError(c, ditto.GatewayInternalError())
}

// methodNotAllowed is Pekko's answer to a method no route accepts; allow
// lists the accepted methods ("GET, HEAD").
func methodNotAllowed(c echo.Context, allow string) error {
	c.Response().Header().Set(echo.HeaderAllow, allow)
	return c.String(http.StatusMethodNotAllowed, "HTTP method not allowed, supported methods: "+allow)
}

// writeError sends a Ditto error with its own HTTP status.
func writeError(c echo.Context, e *ditto.Error) error {
	return c.JSONBlob(e.Status, e.JSON())
}

// marshalNoEscape is json.Marshal without HTML escaping.
func marshalNoEscape(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only our own structs of strings, ints and valid raw JSON reach here.
		panic(fmt.Sprintf("gateway: marshal %T: %v", v, err))
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}
