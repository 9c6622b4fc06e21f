package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

const keyA = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="

func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.Instance, cfg.HTTPAddr, cfg.Store.DataDir = "svc-1", "127.0.0.1:0", t.TempDir()
	cfg.Logger = zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)
	return cfg
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestStartServeStop: a member on the embedded engine answers over HTTP,
// serves the collector at /metrics, and on Stop closes the store (it opens
// again at once: bolt locks its file while open).
func TestStartServeStop(t *testing.T) {
	cfg := testConfig(t)
	cfg.Actors.Collector = monitor.NewCollector()
	svc, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + svc.Addr().String()
	if code, body := get(t, base+"/health"); code != http.StatusOK || body != `{"status":"UP"}` {
		t.Errorf("/health = %d %s", code, body)
	}
	if code, body := get(t, base+"/metrics"); code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics = %d, %d bytes", code, len(body))
	}
	if code, _ := get(t, base+"/api/2/connections"); code != http.StatusUnauthorized {
		t.Errorf("/api/2/connections without credentials = %d, want 401 (devops auth on by default)", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := svc.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if err := <-svc.ServeErr(); err != nil {
		t.Errorf("serve ended with %v", err)
	}
	again, err := bolt.Open(cfg.Store.DataDir)
	if err != nil {
		t.Fatalf("the store was not closed: %v", err)
	}
	_ = again.Close(ctx)
}

// TestGrainsWriteThroughTheDecorator: with encryption on, what the grains
// persist reaches the engine encrypted.
func TestGrainsWriteThroughTheDecorator(t *testing.T) {
	cfg := testConfig(t)
	cfg.Encryption.Enabled, cfg.Encryption.Key = true, keyA
	svc, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Stop(context.Background()) }()
	conn := map[string]any{"id": "enc-1", "connectionType": "mqtt", "connectionStatus": "closed",
		"uri":     "tcp://user:secret-pw@127.0.0.1:1883",
		"sources": []any{map[string]any{"addresses": []string{"a/#"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}}}
	payload, _ := json.Marshal(map[string]any{"type": ditto.CreateConnection, "connection": conn})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r, err := svc.Sys.Dispatch(ctx, ditto.PathConnectionShard,
		&pb.Command{Type: ditto.CreateConnection, Headers: map[string]string{}, Payload: payload})
	if err != nil || r == nil || r.Status != http.StatusCreated {
		t.Fatalf("create = %+v, %v", r, err)
	}
	var stored []string
	if err := svc.Engine.Replay(ctx, "connection:enc-1", 1, func(ev persistence.Event) error {
		stored = append(stored, string(ev.Payload))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(stored) == 0 {
		t.Fatal("no event reached the engine")
	}
	for _, p := range stored {
		if strings.Contains(p, "secret-pw") || !strings.Contains(p, fieldcrypto.Prefix) {
			t.Errorf("the engine holds %s, want the password encrypted", p)
		}
	}
}

// noMigration is an engine without the migration's operations.
type noMigration struct {
	persistence.Store
	closed bool
}

func (s *noMigration) Close(ctx context.Context) error { s.closed = true; return s.Store.Close(ctx) }

// TestMigrationNeedsTheEngine: keys that call for the migration on an engine
// that cannot run it stop the start, and the engine is closed again.
func TestMigrationNeedsTheEngine(t *testing.T) {
	cfg := testConfig(t)
	inner, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	engine := &noMigration{Store: inner}
	cfg.Engine = engine
	cfg.Encryption.Enabled, cfg.Encryption.Key = true, keyA
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "cannot run the encryption migration") {
		t.Fatalf("Start = %v, want the migration refused", err)
	}
	if !engine.closed {
		t.Error("the engine was left open after a failed start")
	}
}

// TestListenFailure: an address in use fails the start with the address
// named, after the actors have stopped again.
func TestListenFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	cfg := testConfig(t)
	cfg.HTTPAddr = taken.Addr().String()
	_, err = Start(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "listen on "+cfg.HTTPAddr) {
		t.Fatalf("Start = %v, want a listen error", err)
	}
	var opErr *net.OpError
	if !errors.As(err, &opErr) {
		t.Errorf("the cause is lost: %v", err)
	}
	again, err := bolt.Open(cfg.Store.DataDir)
	if err != nil {
		t.Fatalf("the store was left open: %v", err)
	}
	_ = again.Close(context.Background())
}

// TestJournalCleanupRuns: the service runs Ditto's journal cleanup on its
// engine (CLEANUP_*): a connection's events below its snapshot older than
// the retention go, the event at the snapshot and those after it stay;
// Stop ends the cleanup before the store closes.
func TestJournalCleanupRuns(t *testing.T) {
	cfg := testConfig(t)
	engine, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const pid = "connection:cleaned"
	for seq := int64(1); seq <= 12; seq++ {
		if err := engine.Append(ctx, persistence.Event{PID: pid, Seq: seq, Manifest: ditto.EventConnectionModified,
			Tags: []string{"always-alive"}, Payload: json.RawMessage(`{}`)}); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	if err := engine.SaveSnapshot(ctx, persistence.Snapshot{PID: pid, Seq: 10, Timestamp: old, Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	cfg.Engine = engine
	cfg.Cleanup.HistoryRetention, cfg.Cleanup.QuietPeriod, cfg.Cleanup.Interval = time.Hour, 10*time.Millisecond, 10*time.Millisecond
	svc, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 20*time.Second, "events 1..9 deleted", func() bool {
		low, _, err := engine.LowestSeqs(ctx, pid)
		return err == nil && low == 10
	})
	if err := svc.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
