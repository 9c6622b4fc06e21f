package encryption

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
)

// TestBinaryMigrationSurvivesSIGKILL: the real binary migrates a key
// rotation throttled to a crawl, is killed with SIGKILL in the middle,
// started again, and `resume: true` finishes; every secret is then under
// the new key exactly once (a second encryption would not decrypt to the
// plaintext) and the counters add up. On both engines; the MongoDB engine
// (the embedded FerretDB replaces documents one by one, slowly) with fewer
// connections.
func TestBinaryMigrationSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	t.Run("bolt", func(t *testing.T) {
		dataDir := t.TempDir()
		// 90 documents a minute in batches of 5: the burst covers the 60
		// snapshots and half the journal, which then crawls.
		migrationCrash(t, bin, migrationCrashCase{
			env:   []string{"DITTOCONN_DATA_DIR=" + dataDir, "MONGO_DB_URI="},
			total: 60, perMinute: 90, killAfter: 10,
			open: func() persistence.Store { return blackbox.OpenBoltAt(t, dataDir) },
		})
	})
	t.Run("mongo", func(t *testing.T) {
		db := fmt.Sprintf("enccrash_%d", time.Now().UnixNano()%1e9)
		// 30 a minute in batches of 5: the 20 snapshots and 10 journal
		// documents pass in the burst, then one batch every 10 s.
		migrationCrash(t, bin, migrationCrashCase{
			env:   []string{"MONGO_DB_URI=" + blackbox.MongoURI, "MONGO_DB_DATABASE=" + db},
			total: 20, perMinute: 30, killAfter: 5,
			open: func() persistence.Store { return blackbox.OpenMongoAt(t, blackbox.MongoURI, db) },
		})
	})
}

// migrationCrashCase is one engine's run: total connections, the throttle
// of the killed run, the journal documents processed before the kill, and
// how to open the store afterwards.
type migrationCrashCase struct {
	env                         []string
	total, perMinute, killAfter int
	open                        func() persistence.Store
}

func migrationCrash(t *testing.T, bin string, c migrationCrashCase) {
	base := append([]string{"INSTANCE_INDEX=crash-1", "CONNECTION_SNAPSHOT_THRESHOLD=1",
		"DITTOCONN_ENCRYPTION_MIGRATION_LEASE=2s", "CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED=true"}, c.env...)
	total := c.total
	p := blackbox.StartBinary(t, bin, append(base, "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY="+blackbox.EncKeyA)...)
	for i := 0; i < total; i++ {
		id := fmt.Sprintf("crash-%02d", i)
		st, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard, "headers": map[string]any{"aggregate": false},
			"piggybackCommand": blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.SecuredConnection(id))})
		if st != 200 || m["status"] != 201.0 {
			t.Fatalf("create %s: %d %v", id, st, m)
		}
	}
	p.Stop(t)

	rotate := append(base, "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY="+blackbox.EncKeyB, "CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY="+blackbox.EncKeyA,
		"CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE=5", fmt.Sprintf("CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE=%d", c.perMinute))
	p2 := blackbox.StartBinary(t, bin, rotate...)
	status := func(p *blackbox.Proc) map[string]any {
		_, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.MigrationPath, "headers": map[string]any{"aggregate": false},
			"piggybackCommand": blackbox.Cmd(ditto.MigrateEncryptionStatus)})
		return m
	}
	if _, m := p2.Piggyback(t, map[string]any{"targetActorSelection": blackbox.MigrationPath, "headers": map[string]any{"aggregate": false},
		"piggybackCommand": blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", false)}); m["status"] != 202.0 {
		t.Fatalf("migrate: %v", m)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := status(p2)
		if jp, _, _ := blackbox.CounterSum(m, "journalEvents"); m["phase"] == "in_progress:journal" && jp >= c.killAfter {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration did not reach the journal: %v", m)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := p2.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p2.Done

	p3 := blackbox.StartBinary(t, bin, append(rotate[:len(rotate)-1], "CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE=0")...)
	if m := status(p3); m["phase"] != "journal" || m["migrationActive"] != false {
		t.Fatalf("status after the crash = %v", m)
	}
	if _, m := p3.Piggyback(t, map[string]any{"targetActorSelection": blackbox.MigrationPath, "headers": map[string]any{"aggregate": false},
		"piggybackCommand": blackbox.Cmd(ditto.MigrateEncryption, "dryRun", false, "resume", true)}); m["status"] != 202.0 || m["resumed"] != true {
		t.Fatalf("resume: %v", m)
	}
	var final map[string]any
	deadline = time.Now().Add(60 * time.Second) // includes waiting out the dead process's lease
	for {
		final = status(p3)
		if final["phase"] == "completed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("resumed migration did not complete: %v", final)
		}
		time.Sleep(50 * time.Millisecond)
	}
	sp, ss, sf := blackbox.CounterSum(final, "snapshots")
	jp, js, jf := blackbox.CounterSum(final, "journalEvents")
	t.Logf("after the resume: snapshots %d/%d/%d, journal %d/%d/%d (processed/skipped/failed)", sp, ss, sf, jp, js, jf)
	if sp != total || ss != 0 || sf != 0 || jf != 0 {
		t.Errorf("snapshots %d/%d/%d, journal failed %d; want %d/0/0, 0", sp, ss, sf, jf, total)
	}
	// A batch replaced but not yet recorded when the process died is seen
	// again and counted as skipped (it is under the new key already).
	if jp+js < total || jp+js > total+5 || jp > total {
		t.Errorf("journal processed %d + skipped %d, want %d (+ at most one batch re-read)", jp, js, total)
	}
	p3.Stop(t)

	engine := c.open()
	defer engine.Close(context.Background())
	blackbox.WantRotated(t, engine, total, "crash-")
	if strings.Contains(p.Logs.String()+p2.Logs.String()+p3.Logs.String(), "pw-crash-") {
		t.Error("a secret reached the log")
	}
}
