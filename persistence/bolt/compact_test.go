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
	"testing"

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

// After a prune the removed documents' bytes are gone from the file, not
// only from the documents bbolt hands out (freed pages keep their bytes).
func TestPruneScrubsFile(t *testing.T) {
	const secret = "scrub-me-0c1d"
	dir := t.TempDir()
	s := openStore(t, dir)
	defer closeStore(t, s)
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
	if fileHas(t, dir, secret) {
		t.Error("the file still holds the secret after the prune")
	}
	// The store goes on working on the new file, and still holds the lock.
	if err := s.Append(ctx, persistence.Event{PID: pid, Seq: 4, Manifest: "m", Payload: json.RawMessage(`{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, WithLockTimeout(50e6)); err == nil {
		t.Fatal("a second Open after the compaction got the lock")
	}
	if n, err := s.HighestSeq(ctx, pid); err != nil || n != 4 {
		t.Errorf("HighestSeq = %d, %v; want 4", n, err)
	}
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
