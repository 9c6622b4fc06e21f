package cleanup

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/document"
)

// The entity of these tests is what the connection grain writes, reduced to
// what recovery must get right: each modification is an event carrying the
// whole state (its revision and a name), tagged always-alive as the grain
// tags an open connection's events, and every snapshotEvery events the
// state is snapshotted, as the grain does with its SnapshotThreshold (10).
const snapshotEvery = 10

type state struct {
	Revision int64  `json:"revision"`
	Name     string `json:"name"`
	Pad      string `json:"pad,omitempty"` // a connection's size
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// modify writes modifications from..to of pid as the grain would, one
// event each and a snapshot on the threshold, in one commit per collection:
// one fsync'ed commit per event would make 10,000 of them take minutes on
// a shared machine, and the documents are the same.
func modify(s *bolt.Store, pid string, from, to int64, now time.Time, pad string) error {
	var events, snaps []bson.Raw
	for seq := from; seq <= to; seq++ {
		p, _ := json.Marshal(state{Revision: seq, Name: fmt.Sprintf("%s-%d", pid, seq), Pad: pad})
		ev, err := document.Journal(bson.NewObjectID(), persistence.Event{PID: pid, Seq: seq,
			Manifest: "connectivity.events:connectionModified", Tags: []string{"always-alive", "priority-0"}, Writer: "w", Payload: p})
		if err != nil {
			return err
		}
		events = append(events, ev)
		if seq%snapshotEvery == 0 {
			sn, err := document.Snapshot(bson.NewObjectID(), persistence.Snapshot{PID: pid, Seq: seq, Timestamp: now.UnixMilli(), Payload: p})
			if err != nil {
				return err
			}
			snaps = append(snaps, sn)
		}
	}
	if err := s.PutRaw(document.JournalCollection, events...); err != nil {
		return err
	}
	if len(snaps) == 0 {
		return nil
	}
	return s.PutRaw(document.SnapshotCollection, snaps...)
}

// recoverState is the grain's recovery: the latest snapshot, then the
// events after it, which must follow one another.
func recoverState(ctx context.Context, s persistence.Store, pid string) (state, error) {
	var st state
	from := int64(1)
	snap, err := s.LatestSnapshot(ctx, pid)
	switch {
	case err == nil:
		if err := json.Unmarshal(snap.Payload, &st); err != nil {
			return st, err
		}
		from = snap.Seq + 1
	case !errors.Is(err, persistence.ErrNotFound):
		return st, err
	}
	err = s.Replay(ctx, pid, from, func(ev persistence.Event) error {
		if ev.Seq != st.Revision+1 {
			return fmt.Errorf("%s: event %d after revision %d", pid, ev.Seq, st.Revision)
		}
		return json.Unmarshal(ev.Payload, &st)
	})
	return st, err
}

// newestTags are the tags of pid's newest event, which the reopen sweep
// lists connections by.
func newestTags(ctx context.Context, s persistence.Store, pid string) ([]string, error) {
	var tags []string
	err := s.LatestEvents(ctx, pid, func(ev persistence.Event) error {
		if ev.PID == pid {
			tags = ev.Tags
		}
		return nil
	})
	return tags, err
}

// counts are pid's journal and snapshot documents (the snapshots are
// every snapshotEvery sequence numbers between the lowest and the latest).
func counts(ctx context.Context, s persistence.Store, pid string) (events, snaps int, err error) {
	if err = s.Replay(ctx, pid, 1, func(persistence.Event) error { events++; return nil }); err != nil {
		return 0, 0, err
	}
	_, lowSnap, err := s.LowestSeqs(ctx, pid)
	if err != nil || lowSnap == 0 {
		return events, 0, err
	}
	latest, err := s.LatestSnapshot(ctx, pid)
	if err != nil {
		return 0, 0, err
	}
	return events, int((latest.Seq-lowSnap)/snapshotEvery) + 1, nil
}

func fast() Config {
	c := Defaults()
	c.HistoryRetention, c.QuietPeriod, c.Interval = 0, 0, time.Millisecond
	c.CreditsPerBatch, c.WritesPerCredit = 1000, 100
	return c
}

func openBolt(t *testing.T, dir string, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCleanupBoundsJournalOfTenThousandModifications: a connection modified
// 10,000 times while the cleanup runs keeps at most a snapshot interval
// plus one event and two snapshots, reads back exactly, keeps its newest
// event's always-alive tag and its highest sequence number, and the
// embedded store's file stops growing. Store and entity level: the
// grain's write pattern (an event per modification, a snapshot every 10)
// on the real engine, with its recovery.
func TestCleanupBoundsJournalOfTenThousandModifications(t *testing.T) {
	dir := t.TempDir()
	s := openBolt(t, dir, bolt.WithScrubDelay(0))
	defer s.Close(context.Background())
	ctx := ctxT(t)
	c := New(fast(), s, zerolog.Nop())
	const pid, total, runEvery = "connection:busy", 10000, 500
	pad := strings.Repeat("p", 1000)
	var sizes []int64
	for seq := int64(runEvery); seq <= total; seq += runEvery {
		if err := modify(s, pid, seq-runEvery+1, seq, time.Now(), pad); err != nil {
			t.Fatal(err)
		}
		{
			if _, _, err := c.RunOnce(ctx, ""); err != nil {
				t.Fatalf("RunOnce after %d: %v", seq, err)
			}
			ev, sn, err := counts(ctx, s, pid)
			if err != nil {
				t.Fatal(err)
			}
			if ev > snapshotEvery+1 || sn > 2 {
				t.Fatalf("after %d modifications and a cleanup: %d events, %d snapshots; want at most %d and 2", seq, ev, sn, snapshotEvery+1)
			}
			fi, err := os.Stat(filepath.Join(dir, bolt.FileName))
			if err != nil {
				t.Fatal(err)
			}
			sizes = append(sizes, fi.Size())
		}
	}
	got, err := recoverState(ctx, s, pid)
	if want := (state{Revision: total, Name: fmt.Sprintf("%s-%d", pid, total), Pad: pad}); err != nil || got != want {
		t.Fatalf("recovered %+v, %v; want %+v", got, err, want)
	}
	if n, err := s.HighestSeq(ctx, pid); err != nil || n != total {
		t.Fatalf("HighestSeq = %d, %v; want %d", n, err, total)
	}
	if tags, err := newestTags(ctx, s, pid); err != nil || !slices.Contains(tags, "always-alive") {
		t.Fatalf("newest event's tags %v, %v: the reopen sweep would miss the connection", tags, err)
	}
	// The file stops growing: after the first run its size is flat, and
	// far below the 10 MB of events written (each run compacts it).
	first, last := sizes[1], slices.Max(sizes[1:])
	if last > first+first/2 || last > total*int64(len(pad))/10 {
		t.Errorf("store file grew from %d to %d bytes over the runs (sizes %v)", first, last, sizes)
	}
	t.Logf("file sizes after each run: %v", sizes)
}

// TestCleanupRespectsRetentionAndPacing: snapshots younger than the
// retention keep what lies below them; the work is one delete per credit
// of at most WritesPerCredit sequence numbers.
func TestCleanupRespectsRetentionAndPacing(t *testing.T) {
	s := openBolt(t, t.TempDir(), bolt.WithScrubDelay(0))
	defer s.Close(context.Background())
	ctx := ctxT(t)
	now := time.Date(2026, 1, 31, 0, 0, 0, 0, time.UTC)
	// snapshots at 10..50 are 40 days old, 60..100 one day old
	if err := modify(s, "connection:a", 1, 50, now.Add(-40*24*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	if err := modify(s, "connection:a", 51, 100, now.Add(-24*time.Hour), ""); err != nil {
		t.Fatal(err)
	}
	cfg := fast()
	cfg.HistoryRetention, cfg.WritesPerCredit = 30*24*time.Hour, 20
	c := New(cfg, s, zerolog.Nop())
	c.Now = func() time.Time { return now }
	var deletes []int64
	c.Deleted = func(_ string, to int64) { deletes = append(deletes, to) }
	st, _, err := c.RunOnce(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	// events 1..49 in batches of 20: up to 20, 40, 49
	if want := []int64{20, 40, 49}; !slices.Equal(deletes, want) || st.Deletes != 3 || st.PIDs != 1 {
		t.Errorf("deletes up to %v (%+v), want %v", deletes, st, want)
	}
	if lowEv, lowSnap, err := s.LowestSeqs(ctx, "connection:a"); err != nil || lowEv != 50 || lowSnap != 50 {
		t.Errorf("lowest after the run: event %d, snapshot %d, %v; want 50, 50", lowEv, lowSnap, err)
	}
	// a second run finds nothing to do
	deletes = nil
	if st, _, err := c.RunOnce(ctx, ""); err != nil || st.Deletes != 0 || deletes != nil {
		t.Errorf("second run: %+v %v %v, want nothing", st, deletes, err)
	}
	if got, err := recoverState(ctx, s, "connection:a"); err != nil || got.Revision != 100 {
		t.Errorf("recovered %+v, %v", got, err)
	}
}

// TestCreditsPaceDeletes: with one credit per interval, n deletes take
// n-1 intervals; a slow delete withholds the next interval's credit.
func TestCreditsPaceDeletes(t *testing.T) {
	cfg := fast()
	cfg.Interval, cfg.CreditsPerBatch, cfg.TimerThreshold = 20*time.Millisecond, 1, time.Second
	cr := newCredits(cfg)
	defer cr.stop()
	ctx := ctxT(t)
	began := time.Now()
	for range 4 {
		if err := cr.take(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(began); took < 3*cfg.Interval {
		t.Errorf("4 credits in %v, want at least 3 intervals (%v)", took, 3*cfg.Interval)
	}
	cr.observe(2 * time.Second) // over the threshold: the next tick gives nothing
	began = time.Now()
	if err := cr.take(ctx); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < 2*cfg.Interval-5*time.Millisecond {
		t.Errorf("credit after a slow delete in %v, want a withheld interval first", took)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := cr.take(cctx); !errors.Is(err, context.Canceled) {
		t.Errorf("take on a cancelled context = %v", err)
	}
}

func TestValidate(t *testing.T) {
	if err := Defaults().Validate(); err != nil {
		t.Fatalf("Ditto's defaults: %v", err)
	}
	for name, mod := range map[string]func(*Config){
		"final deleted snapshot": func(c *Config) { c.DeleteFinalDeletedSnapshot = true },
		"interval":               func(c *Config) { c.Interval = 0 },
		"writes":                 func(c *Config) { c.WritesPerCredit = 0 },
		"reads":                  func(c *Config) { c.ReadsPerQuery = 0 },
		"retention":              func(c *Config) { c.HistoryRetention = -time.Second },
	} {
		c := Defaults()
		mod(&c)
		if err := c.Validate(); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// childDirEnv makes the test binary the child of
// TestCleanupSurvivesSIGKILL: it runs the cleanup on that directory and
// prints a line per delete.
const childDirEnv = "DITTOCONN_CLEANUP_CHILD_DIR"

func TestCleanupChild(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("the child of TestCleanupSurvivesSIGKILL")
	}
	// A compaction after every delete: the kill can land in one too.
	s := openBolt(t, dir, bolt.WithScrubDelay(0))
	cfg := fast()
	cfg.WritesPerCredit = 7
	c := New(cfg, s, zerolog.Nop())
	c.Deleted = func(pid string, to int64) { fmt.Printf("deleted %s %d\n", pid, to) }
	fmt.Println("started")
	_, _, err := c.RunOnce(context.Background(), "")
	fmt.Println("done", err)
}

// TestCleanupSurvivesSIGKILL: a process running the cleanup is killed with
// SIGKILL in the middle of its deletes; every connection then recovers to
// the state it had before, with its highest sequence number and the newest
// event's tags, and a second cleanup finishes the work.
func TestCleanupSurvivesSIGKILL(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("in the child")
	}
	dir := t.TempDir()
	ctx := ctxT(t)
	const pids, mods = 20, 155
	s := openBolt(t, dir)
	name := func(i int) string { return fmt.Sprintf("connection:c%02d", i) }
	for i := range pids {
		if err := modify(s, name(i), 1, mods, time.Now().Add(-time.Hour), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCleanupChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	deleted := 0
	for deleted < 60 && lines.Scan() {
		if strings.HasPrefix(lines.Text(), "deleted ") {
			deleted++
		}
		if strings.HasPrefix(lines.Text(), "done") {
			t.Fatalf("the child finished before the kill: %s", lines.Text())
		}
	}
	if deleted < 60 {
		t.Fatalf("the child stopped after %d deletes", deleted)
	}
	t.Logf("killing the child after %d deletes (%v)", deleted, time.Since(start))
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for lines.Scan() { // drain what the pipe holds
	}
	if err := cmd.Wait(); err == nil {
		t.Fatal("the child exited normally, not killed")
	}

	s = openBolt(t, dir)
	defer s.Close(context.Background())
	check := func(when string) {
		t.Helper()
		for i := range pids {
			pid := name(i)
			got, err := recoverState(ctx, s, pid)
			if want := (state{Revision: mods, Name: fmt.Sprintf("%s-%d", pid, mods)}); err != nil || got != want {
				t.Fatalf("%s: %s recovered %+v, %v; want %+v", when, pid, got, err, want)
			}
			if n, err := s.HighestSeq(ctx, pid); err != nil || n != mods {
				t.Fatalf("%s: %s HighestSeq %d, %v", when, pid, n, err)
			}
			if tags, err := newestTags(ctx, s, pid); err != nil || !slices.Contains(tags, "always-alive") {
				t.Fatalf("%s: %s newest tags %v, %v", when, pid, tags, err)
			}
		}
	}
	check("after the kill")
	t.Logf("checked after the kill (%v)", time.Since(start))
	if _, _, err := New(fast(), s, zerolog.Nop()).RunOnce(ctx, ""); err != nil {
		t.Fatal(err)
	}
	check("after a second cleanup")
	for i := range pids {
		if ev, sn, err := counts(ctx, s, name(i)); err != nil || ev != 6 || sn != 1 {
			// 155 modifications: snapshot at 150, events 150..155 stay
			t.Errorf("%s after the second cleanup: %d events, %d snapshots, %v; want 6, 1", name(i), ev, sn, err)
		}
	}
}
