package encryption

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/actors/migration"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
	"github.com/dittoconn/dittoconn/persistence/mongo"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

func encSettings(enabled bool, key, old string) fieldcrypto.Settings {
	s := fieldcrypto.DefaultSettings()
	s.Enabled, s.Key, s.OldKey = enabled, key, old
	s.BatchSize, s.MaxDocsPerMinute = 100, 0
	return s
}

// startEncrypted runs a node on engine with the decorator and, as the
// binary does, the migration singleton when the settings call for it.
func startEncrypted(t *testing.T, engine persistence.Store, s fieldcrypto.Settings) *kit.Node {
	t.Helper()
	if _, slow := engine.(*mongo.Store); slow && s.BatchSize > 20 {
		s.BatchSize = 20 // FerretDB replaces documents one by one, slowly
	}
	return kit.Start(t, engine, kit.Options{SnapshotThreshold: 1, Encryption: &s,
		Migration: migration.Config{LeaseTTL: 2 * time.Second, StoreTimeout: time.Minute}})
}

func piggy(t *testing.T, n *kit.Node, target string, command map[string]any) (int, map[string]any) {
	t.Helper()
	st, body := n.Piggyback(t, kit.Envelope(target, command, nil))
	if st != http.StatusOK {
		return st, nil
	}
	return st, blackbox.Decode(t, body)
}

// migrateAndWait starts a migration and polls the status until it is no
// longer active; it returns the final status.
func migrateAndWait(t *testing.T, n *kit.Node, dryRun, resume bool) map[string]any {
	t.Helper()
	st, m := piggy(t, n, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", dryRun, "resume", resume))
	if st != 200 || m["status"] != 202.0 || m["phase"] != "started" || m["dryRun"] != dryRun || m["resumed"] != resume {
		t.Fatalf("migrateEncryption(dryRun=%v, resume=%v) = %d %v", dryRun, resume, st, m)
	}
	return waitMigration(t, n)
}

func waitMigration(t *testing.T, n *kit.Node) map[string]any {
	t.Helper()
	var m map[string]any
	poll.Until(t, 3*time.Minute, "migration ends", func() bool {
		_, m = piggy(t, n, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionStatus))
		return m != nil && m["migrationActive"] == false
	})
	return m
}

func createAll(t *testing.T, n *kit.Node, ids []string) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan string)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range work {
				st, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.SecuredConnection(id)), nil))
				if st != 200 || !strings.Contains(string(body), `"status":201`) {
					t.Errorf("create %s: %d %s", id, st, body)
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	wg.Wait()
}

func retrieveAll(t *testing.T, n *kit.Node, ids []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, id := range ids {
		st, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id,
			"selectedFields", "id,name,_revision,_created,_modified,connectionStatus,uri,sources,targets,tags"), nil))
		if st != 200 {
			t.Fatalf("retrieve %s: %d", id, st)
		}
		if strings.Contains(string(body), fieldcrypto.Prefix) {
			t.Fatalf("the API shows an encrypted value: %s", body)
		}
		out[id] = string(body)
	}
	return out
}

// TestEncryptionMigrationEndToEnd is the proof over HTTP: N
// connections under key A; restart rotating to B; dry run; migrate; all
// secrets under B and none under A; identical reads with B alone; then
// disable: all plaintext. N is 1,000 on bolt and 100 on the MongoDB engine
// (the embedded FerretDB is slow).
func TestEncryptionMigrationEndToEnd(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			total := 1000
			if eng.Name == "mongo" {
				total = 100
			}
			if testing.Short() {
				total = 50
			}
			open := eng.Open(t)
			ids := make([]string, total)
			for i := range ids {
				ids[i] = fmt.Sprintf("enc-%04d", i)
			}

			// Key A.
			engine := open()
			n1 := startEncrypted(t, engine, encSettings(true, blackbox.EncKeyA, ""))
			createAll(t, n1, ids)
			want := retrieveAll(t, n1, ids)
			uris := blackbox.StoredURIs(t, engine)
			if len(uris) != 2*total {
				t.Fatalf("%d stored uris, want %d (a snapshot and an event each)", len(uris), 2*total)
			}
			for _, u := range uris {
				if strings.Contains(u, "pw-enc-") || !strings.Contains(u, ":encrypted_") {
					t.Fatalf("a password is stored in clear (encryption on)")
				}
			}
			n1.Stop()

			// Rotate: B current, A old.
			engine = open()
			n2 := startEncrypted(t, engine, encSettings(true, blackbox.EncKeyB, blackbox.EncKeyA))
			if _, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", true)); m["status"] != 200.0 || m["phase"] != "already_completed" {
				t.Fatalf("resume with nothing to resume = %v", m)
			}
			if _, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionAbort)); m["type"] != "devops.responses:errorResponse" || m["status"] != 503.0 ||
				blackbox.Field(m, "payload", "message") != "No migration is currently running." {
				t.Fatalf("abort when idle = %v", m)
			}
			before := blackbox.StoredURIs(t, engine)
			m := migrateAndWait(t, n2, true, false)
			if m["phase"] != "completed" || m["dryRun"] != true {
				t.Fatalf("dry run status = %v", m)
			}
			if p, s, f := blackbox.CounterSum(m, "snapshots"); p != total || s != 0 || f != 0 {
				t.Errorf("dry run snapshots %d/%d/%d, want %d/0/0", p, s, f, total)
			}
			if p, s, f := blackbox.CounterSum(m, "journalEvents"); p != total || s != 0 || f != 0 {
				t.Errorf("dry run journal %d/%d/%d, want %d/0/0", p, s, f, total)
			}
			if after := blackbox.StoredURIs(t, engine); strings.Join(after, "\n") != strings.Join(before, "\n") {
				t.Fatal("the dry run changed stored documents")
			}
			m = migrateAndWait(t, n2, false, false)
			if m["phase"] != "completed" {
				t.Fatalf("status = %v", m)
			}
			if p, s, f := blackbox.CounterSum(m, "snapshots"); p != total || s+f != 0 {
				t.Errorf("snapshots %d/%d/%d, want %d/0/0", p, s, f, total)
			}
			if p, s, f := blackbox.CounterSum(m, "journalEvents"); p != total || s+f != 0 {
				t.Errorf("journal %d/%d/%d, want %d/0/0", p, s, f, total)
			}
			a, b := blackbox.KeyCipher(t, blackbox.EncKeyA), blackbox.KeyCipher(t, blackbox.EncKeyB)
			for _, u := range blackbox.StoredURIs(t, engine) {
				pw := u[strings.Index(u, "user:")+5 : strings.LastIndex(u, "@")]
				if _, err := a.DecryptString(pw); err == nil {
					t.Fatal("a stored secret still decrypts with A")
				}
				if pt, err := b.DecryptString(pw); err != nil || !strings.HasPrefix(pt, "pw-enc-") {
					t.Fatalf("a stored secret does not decrypt with B: %v", err)
				}
			}
			n2.Stop()

			// B alone reads everything back identically.
			engine = open()
			n3 := startEncrypted(t, engine, encSettings(true, blackbox.EncKeyB, ""))
			for id, body := range retrieveAll(t, n3, ids) {
				if body != want[id] {
					t.Fatalf("%s reads back differently:\n got %s\nwant %s", id, body, want[id])
				}
			}
			n3.Stop()

			// Disable: encryption off, B as the old key.
			engine = open()
			n4 := startEncrypted(t, engine, encSettings(false, "", blackbox.EncKeyB))
			m = migrateAndWait(t, n4, false, false)
			if p, _, _ := blackbox.CounterSum(m, "snapshots"); m["phase"] != "completed" || p != total {
				t.Fatalf("disable status = %v", m)
			}
			for _, u := range blackbox.StoredURIs(t, engine) {
				if strings.Contains(u, fieldcrypto.Prefix) || !strings.Contains(u, "pw-enc-") {
					t.Fatal("a secret is still encrypted after disabling")
				}
			}
			for id, body := range retrieveAll(t, n4, ids[:min(total, 50)]) {
				if body != want[id] {
					t.Fatalf("%s after disabling:\n got %s\nwant %s", id, body, want[id])
				}
			}
			n4.Stop()

			// Without encryption and without an old key there is no singleton.
			n5 := startEncrypted(t, open(), encSettings(false, "", ""))
			if st, body := n5.Piggyback(t, kit.Envelope(blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionStatus), nil)); st != 408 || string(body) != "null" {
				t.Errorf("status without the singleton = %d %s, want 408 null", st, body)
			}
		})
	}
}

// TestEncryptionMigrationAbortResume is the singleton's command protocol
// over HTTP on both engines: resume with nothing to resume answers
// already_completed, abort when idle is an error, a second start while a
// run is going is refused, an abort stops the run between batches with its
// progress saved (the documents after it still under the old key), and a
// resume finishes from there with every document counted once.
func TestEncryptionMigrationAbortResume(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			// 15 connections: 15 snapshots and 15 journal documents. The
			// first run may take 20 documents a minute in batches of 5: the
			// burst covers the snapshots and one journal batch, the next
			// batch waits 15 s, and the abort comes first. The resumed run
			// starts with a full burst, enough for the 10 left.
			const total = 15
			open := eng.Open(t)
			ids := make([]string, total)
			for i := range ids {
				ids[i] = fmt.Sprintf("abort-%02d", i)
			}
			engine := open()
			n1 := startEncrypted(t, engine, encSettings(true, blackbox.EncKeyA, ""))
			createAll(t, n1, ids)
			want := retrieveAll(t, n1, ids)
			n1.Stop()

			engine = open()
			s := encSettings(true, blackbox.EncKeyB, blackbox.EncKeyA)
			s.BatchSize, s.MaxDocsPerMinute = 5, 20
			n2 := startEncrypted(t, engine, s)
			refused := func(what string, m map[string]any, msg string) {
				t.Helper()
				if m["type"] != "devops.responses:errorResponse" || m["status"] != 503.0 || blackbox.Field(m, "payload", "message") != msg {
					t.Fatalf("%s = %v", what, m)
				}
			}
			if _, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", true)); m["status"] != 200.0 ||
				m["phase"] != "already_completed" || m["resumed"] != true {
				t.Fatalf("resume with nothing to resume = %v", m)
			}
			_, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionAbort))
			refused("abort when idle", m, "No migration is currently running.")

			if st, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", false)); st != 200 ||
				m["status"] != 202.0 || m["phase"] != "started" || m["resumed"] != false {
				t.Fatalf("start = %d %v", st, m)
			}
			const busy = "Migration already in progress. Use migrateEncryptionStatus to check progress or migrateEncryptionAbort to cancel."
			_, m = piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", false))
			refused("start while running", m, busy)
			_, m = piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", true, "resume", true))
			refused("resume while running", m, busy)

			poll.Until(t, time.Minute, "the first journal batch", func() bool {
				_, m = piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionStatus))
				jp, _, _ := blackbox.CounterSum(m, "journalEvents")
				return m["phase"] == "in_progress:journal" && jp >= 5
			})
			_, m = piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionAbort))
			if m["type"] != "connectivity.responses:migrateEncryptionAbort" || m["status"] != 200.0 || m["phase"] != "aborted:journal" || m["abortedAt"] == nil {
				t.Fatalf("abort = %v", m)
			}
			m = waitMigration(t, n2)
			sp, _, _ := blackbox.CounterSum(m, "snapshots")
			jp, js, jf := blackbox.CounterSum(m, "journalEvents")
			if m["phase"] != "journal" || sp != total || jp != 5 || js+jf != 0 {
				t.Fatalf("status after the abort = %v", m)
			}
			a, b := blackbox.KeyCipher(t, blackbox.EncKeyA), blackbox.KeyCipher(t, blackbox.EncKeyB)
			underA, underB := 0, 0
			for _, u := range blackbox.StoredURIs(t, engine) {
				pw := u[strings.Index(u, "user:")+5 : strings.LastIndex(u, "@")]
				if _, err := a.DecryptString(pw); err == nil {
					underA++
				} else if _, err := b.DecryptString(pw); err == nil {
					underB++
				}
			}
			if underA != total-5 || underB != total+5 {
				t.Fatalf("after the abort %d secrets under A and %d under B, want %d and %d", underA, underB, total-5, total+5)
			}

			if st, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", true)); st != 200 ||
				m["status"] != 202.0 || m["phase"] != "started" || m["resumed"] != true {
				t.Fatalf("resume = %d %v", st, m)
			}
			m = waitMigration(t, n2)
			if m["phase"] != "completed" {
				t.Fatalf("after the resume = %v", m)
			}
			if p, s, f := blackbox.CounterSum(m, "snapshots"); p != total || s+f != 0 {
				t.Errorf("snapshots %d/%d/%d, want %d/0/0", p, s, f, total)
			}
			if p, s, f := blackbox.CounterSum(m, "journalEvents"); p != total || s+f != 0 {
				t.Errorf("journal %d/%d/%d, want %d/0/0 (every document once)", p, s, f, total)
			}
			for _, u := range blackbox.StoredURIs(t, engine) {
				pw := u[strings.Index(u, "user:")+5 : strings.LastIndex(u, "@")]
				if pt, err := b.DecryptString(pw); err != nil || !strings.HasPrefix(pt, "pw-abort-") {
					t.Fatalf("a stored secret does not decrypt once with B: %v", err)
				}
			}
			for id, body := range retrieveAll(t, n2, ids) {
				if body != want[id] {
					t.Fatalf("%s reads back differently:\n got %s\nwant %s", id, body, want[id])
				}
			}
			if _, m := piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", true)); m["status"] != 200.0 || m["phase"] != "already_completed" {
				t.Fatalf("resume after completion = %v", m)
			}
			_, m = piggy(t, n2, blackbox.MigrationPath, blackbox.Cmd(ditto.MigrateEncryptionAbort))
			refused("abort after completion", m, "No migration is currently running.")
			n2.Stop()
		})
	}
}
