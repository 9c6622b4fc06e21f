package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/persistencetest"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func closeStore(t testing.TB, s *Store) {
	t.Helper()
	if err := s.Close(context.Background()); err != nil {
		t.Errorf("Close: %v", err)
	}
}

func rawDocs(t *testing.T, s *Store, collection string) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	if err := s.ForEachRaw(collection, func(doc bson.Raw) error {
		out = append(out, doc)
		return nil
	}); err != nil {
		t.Fatalf("ForEachRaw %s: %v", collection, err)
	}
	return out
}

func TestConformance(t *testing.T) {
	persistencetest.Run(t, func(t *testing.T) *persistencetest.Harness {
		dir := t.TempDir()
		cur := openStore(t, dir)
		t.Cleanup(func() { closeStore(t, cur) })
		return &persistencetest.Harness{
			Store: cur,
			Reopen: func(t *testing.T) persistence.Store {
				closeStore(t, cur)
				cur = openStore(t, dir)
				return cur
			},
			Raw: func(t *testing.T, collection string) []bson.Raw { return rawDocs(t, cur, collection) },
			Insert: func(t *testing.T, collection string, doc bson.Raw) {
				t.Helper()
				if err := cur.PutRaw(collection, doc); err != nil {
					t.Fatalf("PutRaw %s: %v", collection, err)
				}
			},
			NestedArrays: true,
		}
	})
}

func TestFileLayout(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "dir")
	s := openStore(t, dir)
	defer closeStore(t, s)
	if _, err := os.Stat(filepath.Join(dir, "dittoconn.db")); err != nil {
		t.Fatalf("store file: %v", err)
	}
	var names []string
	if err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
			names = append(names, string(name))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{"connection_encryption_migration", "connection_journal", "connection_journal/_id",
		"connection_metadata", "connection_metadata/_id", "connection_snaps", "connection_snaps/_id", "dittoconn"}
	if fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("buckets %v, want %v", names, want)
	}
}

func TestSecondOpenTimesOut(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	defer closeStore(t, s)
	if _, err := Open(dir, WithLockTimeout(50*time.Millisecond)); err == nil {
		t.Fatal("second Open of a locked file succeeded")
	}
}

func testEvent(pid string, seq int64) persistence.Event {
	return persistence.Event{PID: pid, Seq: seq, Manifest: "m", Writer: "w", Payload: json.RawMessage(`{"type":"t"}`)}
}

// Documents come back in _id order, and a scan resumes after a given _id.
func TestForEachRawByID(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer closeStore(t, s)
	ctx := context.Background()
	// pid order differs from _id (= insertion) order.
	pids := []string{"connection:c", "connection:a", "connection:b", "connection:a"}
	for i, pid := range pids {
		if err := s.Append(ctx, testEvent(pid, int64(i+1))); err != nil {
			t.Fatal(err)
		}
	}
	var ids []bson.ObjectID
	var gotPIDs []string
	if err := s.ForEachRawByID(document.JournalCollection, bson.ObjectID{}, func(doc bson.Raw) error {
		ids = append(ids, doc.Lookup("_id").ObjectID())
		gotPIDs = append(gotPIDs, doc.Lookup("pid").StringValue())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(gotPIDs) != fmt.Sprint(pids) {
		t.Errorf("_id order: %v, want insertion order %v", gotPIDs, pids)
	}
	for i := 1; i < len(ids); i++ {
		if bytes.Compare(ids[i-1][:], ids[i][:]) >= 0 {
			t.Errorf("ids not ascending: %s, %s", ids[i-1].Hex(), ids[i].Hex())
		}
	}
	var resumed []bson.ObjectID
	if err := s.ForEachRawByID(document.JournalCollection, ids[1], func(doc bson.Raw) error {
		resumed = append(resumed, doc.Lookup("_id").ObjectID())
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(resumed) != fmt.Sprint(ids[2:]) {
		t.Errorf("resumed after %s: %v, want %v", ids[1].Hex(), resumed, ids[2:])
	}
	if err := s.ForEachRawByID(document.EncryptionMigrationCollection, bson.ObjectID{}, func(bson.Raw) error { return nil }); err == nil {
		t.Error("scan by _id of a collection without _id index succeeded")
	}
}

// Scans read in pages; fn may write to the store between pages (the
// migration replaces what it scans).
func TestScanPagesAndWritesFromFn(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer closeStore(t, s)
	ctx := context.Background()
	const n = pageSize*2 + 3
	seed := make([]bson.Raw, 0, n)
	for seq := int64(1); seq <= n; seq++ {
		doc, err := document.Journal(bson.NewObjectID(), testEvent("connection:many", seq))
		if err != nil {
			t.Fatal(err)
		}
		seed = append(seed, doc)
	}
	if err := s.PutRaw(document.JournalCollection, seed...); err != nil {
		t.Fatal(err)
	}
	count := 0
	var pending []bson.Raw
	if err := s.ForEachRawByID(document.JournalCollection, bson.ObjectID{}, func(doc bson.Raw) error {
		count++
		// Replace documents in place (same _id, same key), as the migration will.
		evs, err := document.DecodeJournal(doc)
		if err != nil {
			return err
		}
		evs[0].Payload = json.RawMessage(`{"type":"rewritten"}`)
		again, err := document.Journal(doc.Lookup("_id").ObjectID(), evs[0])
		if err != nil {
			return err
		}
		if pending = append(pending, again); len(pending) == 100 {
			err, pending = s.PutRaw(document.JournalCollection, pending...), nil
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRaw(document.JournalCollection, pending...); err != nil {
		t.Fatal(err)
	}
	if count != n {
		t.Errorf("scanned %d documents, want %d", count, n)
	}
	seqs := 0
	if err := s.Replay(ctx, "connection:many", 1, func(ev persistence.Event) error {
		seqs++
		if string(ev.Payload) != `{"type":"rewritten"}` || ev.Seq != int64(seqs) {
			return fmt.Errorf("event %d: %+v", seqs, ev)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if seqs != n {
		t.Errorf("replayed %d events, want %d", seqs, n)
	}
	idCount := 0
	_ = s.db.View(func(tx *bbolt.Tx) error {
		idCount = tx.Bucket(idBucket(document.JournalCollection)).Stats().KeyN
		return nil
	})
	if idCount != n {
		t.Errorf("%d _id index entries, want %d", idCount, n)
	}
}

func TestPutRaw(t *testing.T) {
	s := openStore(t, t.TempDir())
	defer closeStore(t, s)
	ev := testEvent("connection:x", 1)
	id := bson.NewObjectID()
	doc, err := document.Journal(id, ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutRaw(document.JournalCollection, doc); err != nil {
		t.Fatal(err)
	}
	// The same _id under another key would corrupt the _id index.
	other, _ := document.Journal(id, testEvent("connection:y", 1))
	if err := s.PutRaw(document.JournalCollection, other); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("PutRaw with a used _id = %v, want ErrDuplicateID", err)
	}
	// Replacing the document at a key with another _id moves the index entry.
	newID := bson.NewObjectID()
	replaced, _ := document.Journal(newID, ev)
	if err := s.PutRaw(document.JournalCollection, replaced); err != nil {
		t.Fatal(err)
	}
	var ids []bson.ObjectID
	_ = s.ForEachRawByID(document.JournalCollection, bson.ObjectID{}, func(d bson.Raw) error {
		ids = append(ids, d.Lookup("_id").ObjectID())
		return nil
	})
	if len(ids) != 1 || ids[0] != newID {
		t.Errorf("ids after replace %v, want [%s]", ids, newID.Hex())
	}
	// A document without _id gets one, put first.
	if err := s.PutRaw(document.MetadataCollection, document.Metadata("connection:z", 3)); err != nil {
		t.Fatal(err)
	}
	var meta []bson.Raw
	_ = s.ForEachRaw(document.MetadataCollection, func(d bson.Raw) error { meta = append(meta, d); return nil })
	if len(meta) != 1 || meta[0].Index(0).Key() != "_id" || meta[0].Lookup("max_sn").Int64() != 3 {
		t.Errorf("metadata stored as %v", meta)
	}
	// The migration's progress document has a string _id.
	progress, _ := bson.Marshal(bson.D{{Key: "_id", Value: "current"}, {Key: "phase", Value: "snapshots"}})
	if err := s.PutRaw(document.EncryptionMigrationCollection, progress); err != nil {
		t.Fatal(err)
	}
	if err := s.PutRaw("nope", progress); err == nil {
		t.Error("PutRaw into an unknown collection succeeded")
	}
	bad, _ := bson.Marshal(bson.D{{Key: "pid", Value: "connection:x"}})
	if err := s.PutRaw(document.JournalCollection, bad); !errors.Is(err, document.ErrMalformed) {
		t.Errorf("PutRaw of a journal document without to = %v, want ErrMalformed", err)
	}
}

// benchPayload is a realistic connectionCreated event (about 1.7 KB).
func benchPayload(b *testing.B) json.RawMessage {
	b.Helper()
	p, err := os.ReadFile("../document/testdata/connection_created.json")
	if err != nil {
		b.Fatal(err)
	}
	return bytes.TrimSpace(p)
}

func benchEvent(payload json.RawMessage, i int64) persistence.Event {
	return persistence.Event{
		PID: fmt.Sprintf("connection:bench-%d", i), Seq: 1, Manifest: "connectivity.events:connectionCreated",
		Tags: []string{"prod", "always-alive", "priority-0"}, Writer: "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9", Payload: payload,
	}
}

// benchParallelism gives RunParallel many goroutines (as many connection
// grains appending at once), so bbolt's Batch has something to batch.
const benchParallelism = 16

// BenchmarkAppend measures journal appends of connectionCreated events from
// many goroutines; compare with BenchmarkRawAppend (the target is at least
// 0.7 of its throughput).
func BenchmarkAppend(b *testing.B) {
	s := openStore(b, b.TempDir())
	defer closeStore(b, s)
	payload := benchPayload(b)
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := s.Append(ctx, benchEvent(payload, n.Add(1))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkRawAppend puts the same, pre-built document bytes with the same
// durability (a bbolt Batch commit, fsync'ed) and nothing else.
func BenchmarkRawAppend(b *testing.B) {
	s := openStore(b, b.TempDir())
	defer closeStore(b, s)
	doc, err := document.Journal(bson.NewObjectID(), benchEvent(benchPayload(b), 0))
	if err != nil {
		b.Fatal(err)
	}
	var n atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			key := journalKey(fmt.Sprintf("connection:bench-%d", n.Add(1)), 1)
			if err := s.db.Batch(func(tx *bbolt.Tx) error {
				return tx.Bucket(journalBucket).Put(key, doc)
			}); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A damaged store file is an error naming the file, never bbolt's panic
// (which would end the process with a goroutine dump on every restart), and
// the file is left as it was.
func TestOpenCorruptedFile(t *testing.T) {
	healthy := t.TempDir()
	s := openStore(t, healthy)
	for seq := int64(1); seq <= 200; seq++ {
		if err := s.Append(context.Background(), testEvent(fmt.Sprintf("connection:c-%d", seq%7), seq)); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	good, err := os.ReadFile(filepath.Join(healthy, FileName))
	if err != nil {
		t.Fatal(err)
	}
	closeStore(t, openStore(t, healthy)) // the check passes a healthy file
	for _, tc := range []struct {
		name    string
		corrupt func(b []byte, pageSize int)
		want    string
	}{
		{"page ids", func(b []byte, ps int) {
			for off := 2 * ps; off+8 <= len(b); off += ps {
				binary.LittleEndian.PutUint64(b[off:], 0xdead)
			}
		}, "identifies itself as 57005"},
		{"page types", func(b []byte, ps int) {
			for off := 2 * ps; off+10 <= len(b); off += ps {
				binary.LittleEndian.PutUint16(b[off+8:], 0x20)
			}
		}, "neither branch nor leaf"},
		{"page contents", func(b []byte, ps int) {
			for off := 2 * ps; off < len(b); off += ps {
				for i := off + 10; i < off+ps && i < len(b); i++ {
					b[i] = 0xff
				}
			}
		}, "outside"},
		{"meta pages", func(b []byte, ps int) {
			for i := 16; i < 64; i++ {
				b[i], b[ps+i] = 0xff, 0xff
			}
		}, "no valid meta page"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, FileName)
			b := bytes.Clone(good)
			tc.corrupt(b, os.Getpagesize())
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = Open(dir, WithLockTimeout(100*time.Millisecond))
			if !errors.Is(err, ErrCorrupted) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open of a damaged file: %v", err)
			}
			after, _ := os.ReadFile(path)
			if !bytes.Equal(after, b) {
				t.Fatal("Open wrote to the damaged file")
			}
		})
	}
}

// FuzzCheckFile flips bytes of a healthy store file: checkFile never
// panics, whatever it finds. (Open itself is not fuzzed: bbolt reads pages
// through a memory map and in goroutines of its own, so some damage ends
// the process whatever Open does; checkFile catches the common kinds, see
// TestOpenCorruptedFile.)
func FuzzCheckFile(f *testing.F) {
	dir := f.TempDir()
	s, err := Open(dir)
	if err != nil {
		f.Fatal(err)
	}
	for seq := int64(1); seq <= 60; seq++ {
		if err := s.Append(context.Background(), testEvent(fmt.Sprintf("connection:c-%d", seq%5), seq)); err != nil {
			f.Fatal(err)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		f.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(dir, FileName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{0x20, 0x00, 0xff})
	f.Add([]byte{0x02, 0x01, 0x00, 0x04, 0x02, 0x07})
	path := filepath.Join(f.TempDir(), FileName)
	f.Fuzz(func(t *testing.T, edits []byte) {
		b := bytes.Clone(good)
		// Each 3 bytes: a big-endian offset in units of 8 bytes (to reach
		// every page) and the byte to write there.
		for i := 0; i+2 < len(edits); i += 3 {
			b[(int(edits[i])<<8|int(edits[i+1]))*8%len(b)] = edits[i+2]
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_ = checkFile(path)
	})
}
