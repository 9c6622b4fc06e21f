// Package kit starts dittoconn in-process for tests, wired by internal/service
// exactly as the binary is (encrypting decorator, actors, gateway, peer
// route), on a per-test store engine and a loopback port. Tests talk to grains
// directly with protobuf commands (Node.Send) or over HTTP (Node.Piggyback).
// It is imported by tests only; the MongoDB engine needs a server whose URI a
// test's TestMain provides (test/blackbox's Main starts an embedded FerretDB).
package kit

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors"
	"github.com/dittoconn/dittoconn/actors/migration"
	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clients"
	"github.com/dittoconn/dittoconn/internal/client/hono"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/service"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/cleanup"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	"github.com/dittoconn/dittoconn/persistence/mongo"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Password is the devops password of kit nodes (user "devops").
const Password = "kit-secret"

// Instance is the instance id of kit nodes.
const Instance = "kit-1"

// Engine opens a store for a test; calling it again with the same t-scoped
// location reopens the same data.
type Engine struct {
	Name string
	// Open returns a store on the engine's storage for this test; Reopen
	// opens the same storage again after the first store was closed.
	Open func(t *testing.T) (open func() persistence.Store)
}

// Bolt is the embedded engine in a per-test temp dir.
func Bolt() Engine {
	return Engine{Name: "bolt", Open: func(t *testing.T) func() persistence.Store {
		t.Helper()
		dir := t.TempDir()
		return func() persistence.Store {
			s, err := bolt.Open(dir)
			if err != nil {
				t.Fatalf("open bolt store: %v", err)
			}
			return s
		}
	}}
}

// Mongo is the MongoDB engine on uri, one database per test.
func Mongo(uri string) Engine {
	return Engine{Name: "mongo", Open: func(t *testing.T) func() persistence.Store {
		t.Helper()
		db := "kit_" + sanitize(t.Name())
		return func() persistence.Store {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s, err := mongo.Open(ctx, uri, db)
			if err != nil {
				t.Fatalf("open mongo store: %v", err)
			}
			return s
		}
	}}
}

func sanitize(s string) string {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s) && len(out) < 40; i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			out = append(out, c)
		} else {
			out = append(out, '_')
		}
	}
	return string(out) + "_" + time.Now().Format("150405.000000")[7:]
}

// Options tune a node; zero values take the service defaults.
type Options struct {
	SnapshotThreshold int
	PassivateAfter    time.Duration
	// PassivateDeletedAfter: idle time before a deleted connection's grain stops.
	PassivateDeletedAfter time.Duration
	// PassivateUnknownAfter: idle time before the grain of an id that never
	// had a connection stops.
	PassivateUnknownAfter time.Duration
	Unsecured             bool
	Validation            *model.ValidationConfig
	// Hono is the service's Hono settings; nil: Hono not configured.
	Hono *hono.Config
	// Live clients: nil Clients = the default table, else its factories replace the
	// default ones of their types; zero Backoff = 50 ms … 1 s
	// (tests must not wait Ditto's 5 s).
	Clients        client.Registry
	Backoff        client.Backoff
	ConnectTimeout time.Duration
	TestTimeout    time.Duration
	// MaxConnecting bounds concurrent connect attempts, and as many tests.
	MaxConnecting int
	// Verbose logs debug (default: warnings only).
	Verbose bool
	// LogOutput receives the node's log lines (nil: t's log).
	LogOutput io.Writer
	// Encryption is the connection field encryption (nil: off); the
	// migration singleton runs when it makes a migration possible, tuned by
	// Migration (its Store, Settings and Logger are the service's).
	Encryption *fieldcrypto.Settings
	Migration  migration.Config
	// Collector, when set, receives the message counters and is served
	// at /metrics (Prometheus).
	Collector *monitor.Collector
	// Ditto, when set, works next to the Ditto gateway it names (the
	// bridge); nil: standalone.
	Ditto *bridge.Config
	// Cleanup is the journal cleanup (nil: Ditto's defaults, which delete
	// nothing younger than 30 days).
	Cleanup *cleanup.Config
}

// Node is one running dittoconn.
type Node struct {
	Store persistence.Store // the engine (beneath the encrypting decorator)
	Sys   *actors.System
	URL   string // http://127.0.0.1:port
	svc   *service.Service
	t     *testing.T
	done  bool
}

// Start runs a node on store, wired as the binary is (internal/service); it
// is stopped, and store closed, at the end of the test (or by Stop).
func Start(t *testing.T, store persistence.Store, opts Options) *Node {
	t.Helper()
	level := zerolog.WarnLevel
	if opts.Verbose {
		level = zerolog.DebugLevel
	}
	cfg := service.DefaultConfig()
	out := opts.LogOutput
	if out == nil {
		out = zerolog.NewTestWriter(t)
	}
	cfg.Logger = zerolog.New(out).Level(level).With().Timestamp().Logger()
	cfg.Instance, cfg.HTTPAddr, cfg.Engine = Instance, "127.0.0.1:0", store
	if opts.Encryption != nil {
		cfg.Encryption = *opts.Encryption
	}
	cfg.Migration = opts.Migration
	if opts.Cleanup != nil {
		cfg.Cleanup = *opts.Cleanup
	}
	if opts.Hono != nil {
		cfg.Hono = *opts.Hono
	}
	cfg.Gateway.DevopsSecured, cfg.Gateway.DevopsPassword = !opts.Unsecured, Password

	a := &cfg.Actors
	a.Backoff = opts.Backoff
	if a.Backoff.Min == 0 {
		a.Backoff = client.Backoff{Min: 50 * time.Millisecond, Max: time.Second}
	}
	if opts.Validation != nil {
		a.Validation = *opts.Validation
	}
	set := func(dst *time.Duration, v time.Duration) {
		if v > 0 {
			*dst = v
		}
	}
	if opts.MaxConnecting > 0 {
		a.MaxConnecting = opts.MaxConnecting
	}
	if opts.SnapshotThreshold > 0 {
		a.SnapshotThreshold = opts.SnapshotThreshold
	}
	set(&a.PassivateAfter, opts.PassivateAfter)
	set(&a.PassivateDeletedAfter, opts.PassivateDeletedAfter)
	set(&a.PassivateUnknownAfter, opts.PassivateUnknownAfter)
	set(&a.ConnectTimeout, opts.ConnectTimeout)
	set(&a.TestTimeout, opts.TestTimeout)
	if opts.Clients != nil {
		a.Clients = clients.Specs().With(opts.Clients)
		if opts.Hono != nil {
			a.Clients[model.TypeHono] = clients.Hono(*opts.Hono)
		}
	}
	a.Collector = opts.Collector
	if opts.Ditto != nil {
		cfg.Ditto = *opts.Ditto
	}

	svc, err := service.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("start dittoconn: %v", err)
	}
	n := &Node{Store: store, Sys: svc.Sys, URL: "http://" + svc.Addr().String(), svc: svc, t: t}
	t.Cleanup(n.Stop)
	return n
}

// Stop shuts the node down in the binary's order and closes its store.
func (n *Node) Stop() {
	if n.done {
		return
	}
	n.done = true
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	if err := n.svc.Stop(ctx); err != nil {
		n.t.Errorf("stop: %v", err)
	}
}

// Handler is the node's HTTP handler with every route, for tests that
// inspect the routes or serve requests without a connection.
func (n *Node) Handler() http.Handler { return n.svc.HTTP.Handler() }

// stopTimeout bounds the wait for in-flight requests when a node stops.
const stopTimeout = 10 * time.Second

// Send dispatches one command to an actor path with protobuf messages only,
// as the gateway does, and returns the reply (nil when nobody answered).
func (n *Node) Send(t *testing.T, target string, headers map[string]string, command any) *pb.Reply {
	t.Helper()
	payload, err := json.Marshal(command)
	if err != nil {
		t.Fatalf("marshal command: %v", err)
	}
	var head struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(payload, &head)
	if headers == nil {
		headers = map[string]string{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), ditto.DefaultAskTimeout)
	defer cancel()
	r, err := n.Sys.Dispatch(ctx, target, &pb.Command{Type: head.Type, Headers: headers, Payload: payload})
	if err != nil {
		t.Logf("dispatch %s to %s: %v", head.Type, target, err)
		return nil
	}
	return r
}

// Piggyback POSTs an envelope to /devops/piggyback/connectivity with the kit's
// devops credentials and returns status and body.
func (n *Node) Piggyback(t *testing.T, envelope any) (int, []byte) {
	t.Helper()
	return n.Do(t, http.MethodPost, "/devops/piggyback/connectivity", envelope, true)
}

// Do sends one HTTP request; body may be nil, []byte, string or a value to marshal.
func (n *Node) Do(t *testing.T, method, path string, body any, auth bool) (int, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("marshal body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, n.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth {
		req.SetBasicAuth("devops", Password)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, out
}

// Envelope builds a piggyback envelope with aggregate=false.
func Envelope(target string, command any, extraHeaders map[string]any) map[string]any {
	h := map[string]any{"aggregate": false, "is-group-topic": false}
	for k, v := range extraHeaders {
		h[k] = v
	}
	return map[string]any{"targetActorSelection": target, "headers": h, "piggybackCommand": command}
}
