package migration

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/encryptedstore"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

const (
	keyA = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="
	keyB = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

func settings(enabled bool, key, old string, batch, perMinute int) fieldcrypto.Settings {
	return fieldcrypto.Settings{Enabled: enabled, Key: key, OldKey: old, BatchSize: batch, MaxDocsPerMinute: perMinute}
}

// seed stores n connections (a created event and a snapshot each, plus an
// opened event without secrets) under settings s.
func seed(t *testing.T, engine persistence.Store, s fieldcrypto.Settings, n int) {
	t.Helper()
	st, err := encryptedstore.New(engine, s, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// A large seed (the benchmark's) uses 32 writers: bbolt batches
	// concurrent appends into one fsync, so it takes seconds instead of
	// minutes. Small seeds stay sequential: tests expect _id order = id order.
	writers := 1
	if n > 200 {
		writers = 32
	}
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				seedOne(t, st, ctx, i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}

func seedOne(t *testing.T, st persistence.Store, ctx context.Context, i int) {
	{
		id := fmt.Sprintf("c%03d", i)
		conn := fmt.Sprintf(`{"__lifecycle":"ACTIVE","id":%q,"uri":"tcp://user:pw-%s@h:1883","credentials":{"type":"plain","password":"secret-%s"}}`, id, id, id)
		pid := "connection:" + id
		if err := st.Append(ctx, persistence.Event{PID: pid, Seq: 1, Payload: json.RawMessage(`{"type":"connectivity.events:connectionCreated","connection":` + conn + `}`)}); err != nil {
			t.Error(err)
			return
		}
		if err := st.Append(ctx, persistence.Event{PID: pid, Seq: 2, Payload: json.RawMessage(`{"type":"connectivity.events:connectionOpened"}`)}); err != nil {
			t.Error(err)
			return
		}
		if err := st.SaveSnapshot(ctx, persistence.Snapshot{PID: pid, Seq: 2, Timestamp: 1, Payload: json.RawMessage(conn)}); err != nil {
			t.Error(err)
			return
		}
	}
}

func send(t *testing.T, s *Service, typ string, body string) (int32, map[string]any) {
	t.Helper()
	r := s.Handle(&pb.Command{Type: typ, Payload: []byte(body), DeadlineUnixNano: time.Now().Add(5 * time.Second).UnixNano()})
	var m map[string]any
	if err := json.Unmarshal(r.Payload, &m); err != nil {
		t.Fatalf("%s: reply %q: %v", typ, r.Payload, err)
	}
	return r.Status, m
}

func waitIdle(t *testing.T, s *Service) {
	t.Helper()
	poll.Until(t, 30*time.Second, "migration idle", func() bool { return !s.Running() })
}

func newService(t *testing.T, engine *bolt.Store, s fieldcrypto.Settings) *Service {
	t.Helper()
	svc := NewService(Config{Store: engine, Settings: s, LeaseTTL: time.Second, Logger: zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.WarnLevel)})
	t.Cleanup(func() { svc.Stop(5 * time.Second) })
	return svc
}

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// storedValues returns every password value at rest (snapshot and journal).
func storedValues(t *testing.T, engine *bolt.Store) []string {
	t.Helper()
	var out []string
	_ = engine.ForEachRaw(document.SnapshotCollection, func(d bson.Raw) error {
		out = append(out, d.Lookup("s2", "credentials", "password").StringValue())
		return nil
	})
	_ = engine.ForEachRaw(document.JournalCollection, func(d bson.Raw) error {
		if v, err := d.Lookup("events").Array().Index(0).Document().LookupErr("p", "connection", "credentials", "password"); err == nil {
			out = append(out, v.StringValue())
		}
		return nil
	})
	return out
}

func TestResponsesAndRotation(t *testing.T) {
	engine := openBolt(t)
	seed(t, engine, settings(true, keyA, "", 10, 0), 25)
	svc := newService(t, engine, settings(true, keyB, keyA, 7, 0))

	// Nothing to resume yet.
	st, m := send(t, svc, ditto.MigrateEncryption, `{"dryRun":false,"resume":true}`)
	if st != 200 || m["phase"] != "already_completed" || m["resumed"] != true || m["dryRun"] != false || m["type"] != "connectivity.responses:migrateEncryption" {
		t.Fatalf("resume with nothing = %d %v", st, m)
	}
	// Abort when idle.
	r := svc.Handle(&pb.Command{Type: ditto.MigrateEncryptionAbort})
	if r.Kind != pb.Reply_PARSE_ERROR || r.Status != 503 || !strings.Contains(string(r.Payload), `"message":"No migration is currently running."`) || !strings.Contains(string(r.Payload), `"error":"ask.error"`) {
		t.Fatalf("abort when idle = %v %s", r.Kind, r.Payload)
	}
	// Status before any run: default progress.
	st, m = send(t, svc, ditto.MigrateEncryptionStatus, ``)
	if st != 200 || m["phase"] != "snapshots" || m["migrationActive"] != false || m["progress"] != nil {
		t.Fatalf("status before any run = %v", m)
	}

	// Dry run: counts, changes nothing.
	before := storedValues(t, engine)
	st, m = send(t, svc, ditto.MigrateEncryption, `{"dryRun":true}`)
	if st != 202 || m["phase"] != "started" || m["dryRun"] != true || m["resumed"] != false {
		t.Fatalf("dry run = %d %v", st, m)
	}
	waitIdle(t, svc)
	_, m = send(t, svc, ditto.MigrateEncryptionStatus, ``)
	if m["phase"] != "completed" || m["dryRun"] != true {
		t.Fatalf("dry-run status = %v", m)
	}
	wantCounters(t, m, "snapshots", 25, 0, 0)
	wantCounters(t, m, "journalEvents", 25, 0, 0)
	if after := storedValues(t, engine); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatal("the dry run changed documents")
	}
	if _, err := engine.LoadProgress(context.Background()); err == nil {
		t.Error("the dry run saved progress")
	}

	// The real run.
	st, _ = send(t, svc, ditto.MigrateEncryption, `{}`)
	if st != 202 {
		t.Fatalf("migrate = %d", st)
	}
	waitIdle(t, svc)
	_, m = send(t, svc, ditto.MigrateEncryptionStatus, ``)
	if m["phase"] != "completed" || m["migrationActive"] != false {
		t.Fatalf("status after run = %v", m)
	}
	wantCounters(t, m, "snapshots", 25, 0, 0)
	wantCounters(t, m, "journalEvents", 25, 0, 0)
	if p := field(m, "progress", "lastProcessedJournalPid"); p != "connection:c024" {
		t.Errorf("last journal pid = %v", p)
	}
	b, _ := fieldcrypto.ParseKey(keyB)
	a, _ := fieldcrypto.ParseKey(keyA)
	cb, _ := fieldcrypto.NewCipher(b)
	ca, _ := fieldcrypto.NewCipher(a)
	for _, v := range storedValues(t, engine) {
		if _, err := ca.DecryptString(v); err == nil {
			t.Fatal("a value still decrypts with the old key")
		}
		if pt, err := cb.DecryptString(v); err != nil || !strings.HasPrefix(pt, "secret-") {
			t.Fatalf("a value does not decrypt with the new key: %v", err)
		}
	}
	stored, err := engine.LoadProgress(context.Background())
	if err != nil || stored.Phase != "completed" || stored.SnapshotsProcessed != 25 || stored.JournalProcessed != 25 {
		t.Fatalf("stored progress = %+v, %v", stored, err)
	}
	// A second run skips everything (already migrated).
	send(t, svc, ditto.MigrateEncryption, `{}`)
	waitIdle(t, svc)
	_, m = send(t, svc, ditto.MigrateEncryptionStatus, ``)
	wantCounters(t, m, "snapshots", 0, 25, 0)
	wantCounters(t, m, "journalEvents", 0, 25, 0)
	// Resume after completion.
	if _, m = send(t, svc, ditto.MigrateEncryption, `{"resume":true}`); m["phase"] != "already_completed" {
		t.Errorf("resume after completion = %v", m)
	}
}

func field(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, _ := v.(map[string]any)
		v = mm[k]
	}
	return v
}

func wantCounters(t *testing.T, m map[string]any, key string, processed, skipped, failed float64) {
	t.Helper()
	c, _ := m[key].(map[string]any)
	if c["processed"] != processed || c["skipped"] != skipped || c["failed"] != failed {
		t.Errorf("%s = %v, want %v/%v/%v", key, c, processed, skipped, failed)
	}
}

// TestAbortResumeAndDryRunKeepsProgress: a throttled run is started twice
// (the second start fails), aborted, dry-run (which keeps the aborted
// progress), then resumed to completion; each document is migrated once.
func TestAbortResumeAndDryRunKeepsProgress(t *testing.T) {
	engine := openBolt(t)
	const n = 40
	seed(t, engine, settings(true, keyA, "", 10, 0), n)
	// 30 a minute, batches of 5: the first 30 documents pass at once, then
	// one batch every 10 s, so the run is surely still going.
	svc := newService(t, engine, settings(true, keyB, keyA, 5, 30))
	if st, _ := send(t, svc, ditto.MigrateEncryption, `{}`); st != 202 {
		t.Fatal("start")
	}
	r := svc.Handle(&pb.Command{Type: ditto.MigrateEncryption, Payload: []byte(`{}`)})
	if r.Status != 503 || !strings.Contains(string(r.Payload), "Migration already in progress. Use migrateEncryptionStatus to check progress or migrateEncryptionAbort to cancel.") {
		t.Fatalf("second start = %d %s", r.Status, r.Payload)
	}
	poll.Until(t, 10*time.Second, "the first 30 documents processed", func() bool {
		_, m := send(t, svc, ditto.MigrateEncryptionStatus, ``)
		if m["phase"] != "in_progress:snapshots" || m["migrationActive"] != true {
			t.Fatalf("status while running = %v", m)
		}
		c, _ := m["snapshots"].(map[string]any)
		return c["processed"].(float64) >= 30
	})
	st, m := send(t, svc, ditto.MigrateEncryptionAbort, ``)
	if st != 200 || m["phase"] != "aborted:snapshots" || m["abortedAt"] == nil || m["type"] != "connectivity.responses:migrateEncryptionAbort" {
		t.Fatalf("abort = %d %v", st, m)
	}
	waitIdle(t, svc)
	_, m = send(t, svc, ditto.MigrateEncryptionStatus, ``)
	if m["phase"] != "snapshots" || m["migrationActive"] != false {
		t.Fatalf("status after abort = %v", m)
	}
	stored, err := engine.LoadProgress(context.Background())
	if err != nil || stored.Phase != "snapshots" || stored.SnapshotsProcessed != 30 || stored.LastSnapshotID == "" {
		t.Fatalf("progress after abort = %+v, %v", stored, err)
	}

	// A dry run (unthrottled) does not wipe the aborted run's progress.
	svc2 := newService(t, engine, settings(true, keyB, keyA, 5, 0))
	send(t, svc2, ditto.MigrateEncryption, `{"dryRun":true}`)
	waitIdle(t, svc2)
	if again, err := engine.LoadProgress(context.Background()); err != nil || again != stored {
		t.Fatalf("progress after a dry run = %+v, %v; want %+v", again, err, stored)
	}
	st, m = send(t, svc2, ditto.MigrateEncryption, `{"resume":true}`)
	if st != 202 || m["resumed"] != true || m["phase"] != "started" {
		t.Fatalf("resume = %d %v", st, m)
	}
	waitIdle(t, svc2)
	_, m = send(t, svc2, ditto.MigrateEncryptionStatus, ``)
	if m["phase"] != "completed" {
		t.Fatalf("after resume = %v", m)
	}
	// Counters carry on from the saved progress: every document once.
	wantCounters(t, m, "snapshots", n, 0, 0)
	wantCounters(t, m, "journalEvents", n, 0, 0)
	if tm, _ := m["timing"].(map[string]any); tm["startedAt"] != stored.StartedAt {
		t.Errorf("startedAt %v, want the original %s", tm["startedAt"], stored.StartedAt)
	}
}

// TestModes: initial encryption, disable (only the old key) and the fixed
// last row of Ditto's table (encryption off, both keys: disable).
func TestModes(t *testing.T) {
	for _, tt := range []struct {
		name        string
		written     fieldcrypto.Settings
		migrate     fieldcrypto.Settings
		wantPlain   bool
		wantKey     string
		wantSkipped bool
	}{
		{"initial encryption", settings(false, "", "", 10, 0), settings(true, keyA, "", 10, 0), false, keyA, false},
		{"disable", settings(true, keyA, "", 10, 0), settings(false, "", keyA, 10, 0), true, "", false},
		{"encryption off with both keys disables", settings(true, keyA, "", 10, 0), settings(false, keyB, keyA, 10, 0), true, "", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			engine := openBolt(t)
			seed(t, engine, tt.written, 12)
			svc := newService(t, engine, tt.migrate)
			send(t, svc, ditto.MigrateEncryption, `{}`)
			waitIdle(t, svc)
			_, m := send(t, svc, ditto.MigrateEncryptionStatus, ``)
			wantCounters(t, m, "snapshots", 12, 0, 0)
			for _, v := range storedValues(t, engine) {
				if tt.wantPlain != strings.HasPrefix(v, "secret-") {
					t.Fatalf("stored value plain=%v, want %v", !tt.wantPlain, tt.wantPlain)
				}
			}
		})
	}
	t.Run("no keys", func(t *testing.T) {
		svc := newService(t, openBolt(t), settings(false, "", "", 10, 0))
		r := svc.Handle(&pb.Command{Type: ditto.MigrateEncryption})
		if r.Status != 503 || !strings.Contains(string(r.Payload), "Encryption is not enabled and no old key configured. Cannot migrate without encryption keys.") {
			t.Errorf("no keys = %s", r.Payload)
		}
	})
}

// TestLeaseKeepsSecondRunOut: with a live lease held elsewhere a run does
// not start its work; once the holder stops renewing, the lease is broken.
func TestLeaseKeepsSecondRunOut(t *testing.T) {
	engine := openBolt(t)
	seed(t, engine, settings(true, keyA, "", 10, 0), 5)
	ctx := context.Background()
	if err := engine.InsertLease(ctx, persistence.Lease{Owner: "elsewhere", ExpiresAt: time.Now().Add(1500 * time.Millisecond).UnixMilli()}); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, engine, settings(true, keyB, keyA, 10, 0))
	send(t, svc, ditto.MigrateEncryption, `{}`)
	time.Sleep(500 * time.Millisecond)
	if _, m := send(t, svc, ditto.MigrateEncryptionStatus, ``); field(m, "snapshots", "processed") != 0.0 {
		t.Fatalf("work started while another held the lease: %v", m)
	}
	waitIdle(t, svc) // the lease expires (1.5 s) and is broken
	_, m := send(t, svc, ditto.MigrateEncryptionStatus, ``)
	if m["phase"] != "completed" {
		t.Fatalf("after the lease expired = %v", m)
	}
	if _, err := engine.LoadLease(ctx); err == nil {
		t.Error("the lease was not released")
	}
}

func TestTokenBucket(t *testing.T) {
	now := time.Unix(0, 0)
	clock := func() time.Time { return now }
	b := newTokenBucket(60, clock)
	if !b.take(60, nil) {
		t.Fatal("burst refused")
	}
	stop := make(chan struct{})
	time.AfterFunc(50*time.Millisecond, func() { close(stop) })
	if b.take(1, stop) {
		t.Fatal("took a token from an empty bucket")
	}
	abort := make(chan struct{})
	close(abort)
	b2 := newTokenBucket(1, clock)
	b2.take(1, nil)
	if b2.take(1, abort) {
		t.Error("take did not give up on abort")
	}
}

// TestStatusTotals: the status carries how many documents the run has to
// look at (not in Ditto), so that clients can estimate the time left.
func TestStatusTotals(t *testing.T) {
	engine := openBolt(t)
	seed(t, engine, settings(true, keyA, "", 10, 0), 12)
	svc := newService(t, engine, settings(true, keyB, keyA, 5, 0))
	if _, m := send(t, svc, ditto.MigrateEncryptionStatus, ``); field(m, "snapshots", "total") != nil {
		t.Fatalf("totals before any run: %v", m)
	}
	// throttled to a burst of 10 documents, so that the run of 24 is still
	// going when the status asks
	svc = newService(t, engine, settings(true, keyB, keyA, 5, 10))
	if st, _ := send(t, svc, ditto.MigrateEncryption, `{}`); st != 202 {
		t.Fatalf("migrate = %d", st)
	}
	send(t, svc, ditto.MigrateEncryptionStatus, ``) // starts the counting
	poll.Check(t, 10*time.Second, func() error {
		_, m := send(t, svc, ditto.MigrateEncryptionStatus, ``)
		if field(m, "snapshots", "total") != float64(12) || field(m, "journalEvents", "total") != float64(12) {
			return fmt.Errorf("no totals: %v", m)
		}
		if m["migrationActive"] != true {
			t.Fatalf("the run ended before the totals were checked: %v", m)
		}
		return nil
	})
}
