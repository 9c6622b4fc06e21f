package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"

	"github.com/dittoconn/dittoconn/persistence"
)

func fileHas(t *testing.T, dir, s string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Contains(b, []byte(s))
}

// prunedSecret stores three events and a deleted-state snapshot of one
// pid, the events holding secret, and prunes them.
func prunedSecret(t *testing.T, s *Store, dir, secret string) {
	t.Helper()
	ctx := context.Background()
	pid := "connection:c"
	conn := json.RawMessage(`{"type":"connectivity.events:connectionCreated","connection":{"uri":"tcp://u:` + secret + `@h:1"}}`)
	for seq := int64(1); seq <= 3; seq++ {
		if err := s.Append(ctx, persistence.Event{PID: pid, Seq: seq, Manifest: "m", Payload: conn}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.SaveSnapshot(ctx, persistence.Snapshot{PID: pid, Seq: 3, Timestamp: 1, Payload: json.RawMessage(`{"__lifecycle":"DELETED"}`)}); err != nil {
		t.Fatal(err)
	}
	if !fileHas(t, dir, secret) {
		t.Fatal("the secret is not in the file before the prune: the test proves nothing")
	}
	if err := s.Prune(ctx, pid, 3); err != nil {
		t.Fatal(err)
	}
}

// After a prune the removed documents' bytes leave the file soon, not
// only the documents bbolt hands out (freed pages keep their bytes).
func TestPruneScrubsFile(t *testing.T) {
	const secret = "scrub-me-0c1d"
	dir := t.TempDir()
	var logs syncBuffer
	s, err := Open(dir, WithScrubDelay(10*time.Millisecond), WithLogger(zerolog.New(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	prunedSecret(t, s, dir, secret)
	// The log line follows the rename.
	deadline := time.Now().Add(5 * time.Second)
	for fileHas(t, dir, secret) || !strings.Contains(logs.String(), `"reason":"pruned documents"`) {
		if time.Now().After(deadline) {
			t.Fatalf("5 s after the prune: secret in the file %v, log %s", fileHas(t, dir, secret), logs.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The store goes on working on the new file, and still holds the lock.
	ctx := context.Background()
	if err := s.Append(ctx, persistence.Event{PID: "connection:c", Seq: 4, Manifest: "m", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, WithLockTimeout(50*time.Millisecond)); err == nil {
		t.Fatal("a second Open after the compaction got the lock")
	}
	if n, err := s.HighestSeq(ctx, "connection:c"); err != nil || n != 4 {
		t.Errorf("HighestSeq = %d, %v; want 4", n, err)
	}
}

// A prune whose compaction had not run yet is finished by Close, or, after
// a crash, by the next Open.
func TestPruneScrubsAtCloseOrOpen(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, WithScrubDelay(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		prunedSecret(t, s, dir, "close-pw-91ab")
		closeStore(t, s)
		if fileHas(t, dir, "close-pw-91ab") {
			t.Error("the file holds the secret after Close")
		}
	})
	t.Run("crash", func(t *testing.T) {
		dir := t.TempDir()
		s, err := Open(dir, WithScrubDelay(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		prunedSecret(t, s, dir, "crash-pw-27cd")
		// A crash: the file is closed without anything Close would do.
		close(s.scrubStop)
		<-s.scrubDone
		if err := s.db.Close(); err != nil {
			t.Fatal(err)
		}
		if !fileHas(t, dir, "crash-pw-27cd") {
			t.Fatal("the secret left the file without a compaction: the test proves nothing")
		}
		var logs bytes.Buffer
		s, err = Open(dir, WithLogger(zerolog.New(&logs)))
		if err != nil {
			t.Fatal(err)
		}
		defer closeStore(t, s)
		if fileHas(t, dir, "crash-pw-27cd") {
			t.Error("the file holds the secret after the next Open")
		}
		if !strings.Contains(logs.String(), `"reason":"pruned documents left by the last run"`) {
			t.Errorf("log: %s", logs.String())
		}
		if snap, err := s.LatestSnapshot(context.Background(), "connection:c"); err != nil || snap.Seq != 3 {
			t.Errorf("latest snapshot %+v, %v", snap, err)
		}
	})
}

// syncBuffer is a log sink the scrubber goroutine writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// A file mostly made of freed pages shrinks at the next Open and reads back
// exactly; one that is not is left alone.
func TestOpenCompactsSparseFile(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	big := json.RawMessage(`{"blob":"` + strings.Repeat("x", 200_000) + `"}`)
	var kept []persistence.Event
	for i := range 40 {
		ev := persistence.Event{PID: fmt.Sprintf("connection:c%02d", i), Seq: 1, Manifest: "m", Writer: "w", Payload: big}
		if err := s.Append(ctx, ev); err != nil {
			t.Fatal(err)
		}
		if i%10 == 0 {
			kept = append(kept, ev)
		}
	}
	snap := persistence.Snapshot{PID: "connection:c00", Seq: 1, Timestamp: 7, Payload: json.RawMessage(`{"__lifecycle":"ACTIVE","id":"c00"}`)}
	if err := s.SaveSnapshot(ctx, snap); err != nil {
		t.Fatal(err)
	}
	// Free most of it behind the engine's back (as old events will be by
	// the journal cleanup), without the compaction Prune does.
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(journalBucket)
		for i := range 40 {
			if i%10 != 0 {
				if err := b.Delete(journalKey(fmt.Sprintf("connection:c%02d", i), 1)); err != nil {
					return err
				}
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	path := filepath.Join(dir, FileName)
	before, _ := os.Stat(path)

	var logs bytes.Buffer
	s, err := Open(dir, WithLogger(zerolog.New(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path)
	if after.Size()*2 > before.Size() {
		t.Errorf("file %d bytes after reopening, was %d: not compacted", after.Size(), before.Size())
	}
	if !strings.Contains(logs.String(), `"message":"store file compacted"`) || !strings.Contains(logs.String(), `"reason":"free pages dominate"`) {
		t.Errorf("log: %s", logs.String())
	}
	for _, ev := range kept {
		var got []persistence.Event
		if err := s.Replay(ctx, ev.PID, 1, func(e persistence.Event) error { got = append(got, e); return nil }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
			t.Errorf("%s after compaction: %d events", ev.PID, len(got))
		}
	}
	if got, err := s.LatestSnapshot(ctx, "connection:c00"); err != nil || !reflect.DeepEqual(got, snap) {
		t.Errorf("snapshot after compaction: %+v, %v", got, err)
	}
	if n := len(rawDocs(t, s, "connection_journal")); n != len(kept) {
		t.Errorf("%d journal documents, want %d", n, len(kept))
	}
	closeStore(t, s)

	// Dense now: the next Open leaves the file as it is.
	logs.Reset()
	s, err = Open(dir, WithLogger(zerolog.New(&logs)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore(t, s)
	if logs.Len() != 0 {
		t.Errorf("a dense file was compacted: %s", logs.String())
	}
	if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
		t.Errorf("compaction copy left behind: %v", err)
	}
}

// fdsOn counts this process's open descriptors of path (Linux).
func fdsOn(t *testing.T, path string) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd")
	}
	n := 0
	for _, e := range entries {
		if target, err := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); err == nil && target == path {
			n++
		}
	}
	return n
}

// A second Open waiting for the lock while the holder compacts must not end
// up on the replaced file: it opens the file now at the path.
func TestOpenWaitingThroughCompaction(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, WithScrubDelay(0))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, FileName)
	type result struct {
		s   *Store
		err error
	}
	second := make(chan result, 1)
	go func() {
		s2, err := Open(dir, WithLockTimeout(10*time.Second))
		second <- result{s2, err}
	}()
	deadline := time.Now().Add(5 * time.Second)
	for fdsOn(t, path) < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the second Open does not wait on the file")
		}
		time.Sleep(time.Millisecond)
	}
	prunedSecret(t, s, dir, "handover-pw-33") // compacts within Prune: the file is replaced
	ctx := context.Background()
	if err := s.Append(ctx, persistence.Event{PID: "connection:after", Seq: 1, Manifest: "m", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	closeStore(t, s)
	r := <-second
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer closeStore(t, r.s)
	if n, err := r.s.HighestSeq(ctx, "connection:after"); err != nil || n != 1 {
		t.Errorf("the second store does not see the write made after the compaction: %d, %v", n, err)
	}
}
