package migration

import (
	"context"
	"os"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestMigrationThroughput compares, on the bolt engine in one run, the
// unthrottled key-rotation migration (documents/s) with a raw scan and bulk
// replace of the same documents (no crypto, no rewriting). Run it with
// DITTOCONN_BENCH=1 (optionally DITTOCONN_BENCH_N=connections and
// DITTOCONN_BENCH_ROUNDS); it logs the numbers docs/BENCHMARKS.md reports.
// Each round times a raw pass and then a migration (A→B, then B→A, ...)
// over the same file, so a round's ratio compares passes that ran next to
// each other on the shared machine; the median ratio is the summary.
func TestMigrationThroughput(t *testing.T) {
	if os.Getenv("DITTOCONN_BENCH") == "" {
		t.Skip("set DITTOCONN_BENCH=1")
	}
	n, rounds := 2000, 3
	if v, err := strconv.Atoi(os.Getenv("DITTOCONN_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	if v, err := strconv.Atoi(os.Getenv("DITTOCONN_BENCH_ROUNDS")); err == nil && v > 0 {
		rounds = v
	}
	engine := openBolt(t)
	seed(t, engine, settings(true, keyA, "", 10, 0), n)
	docs := 2 * n // a snapshot and a connection event per connection
	const batch = 100

	var ratios []float64
	from, to := keyA, keyB
	for round := 1; round <= rounds; round++ {
		// Raw: the same scans and bulk replaces, documents written back as read.
		start := time.Now()
		for _, coll := range []string{document.SnapshotCollection, document.JournalCollection} {
			paths := []string{"s2.uri"}
			if coll == document.JournalCollection {
				paths = []string{"events.p.connection.uri"}
			}
			after := ""
			for {
				var page [][]byte
				if err := engine.ScanAfterID(context.Background(), coll, after, paths, batch, func(d []byte) error { page = append(page, d); return nil }); err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				if _, err := engine.ReplaceByID(context.Background(), coll, page); err != nil {
					t.Fatal(err)
				}
				after, _ = document.IDString(page[len(page)-1])
			}
		}
		raw := time.Since(start)

		svc := NewService(Config{Store: persistence.Migration(engine), Settings: settings(true, to, from, batch, 0), Logger: zerolog.Nop()})
		start = time.Now()
		send(t, svc, ditto.MigrateEncryption, `{}`)
		waitIdle(t, svc)
		mig := time.Since(start)
		_, m := send(t, svc, ditto.MigrateEncryptionStatus, ``)
		wantCounters(t, m, "snapshots", float64(n), 0, 0)
		wantCounters(t, m, "journalEvents", float64(n), 0, 0)
		from, to = to, from

		rawRate, migRate := float64(docs)/raw.Seconds(), float64(docs)/mig.Seconds()
		ratios = append(ratios, migRate/rawRate)
		t.Logf("round %d: documents=%d raw scan+bulk replace: %.0f docs/s; migration (key rotation): %.0f docs/s; ratio %.2f", round, docs, rawRate, migRate, migRate/rawRate)
	}
	sort.Float64s(ratios)
	t.Logf("median ratio %.2f (min %.2f, max %.2f)", ratios[len(ratios)/2], ratios[0], ratios[len(ratios)-1])
}
