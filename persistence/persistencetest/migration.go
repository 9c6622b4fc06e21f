package persistencetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

func migrator(t *testing.T, h *Harness) persistence.Migration {
	t.Helper()
	m, ok := h.Store.(persistence.Migration)
	if !ok {
		t.Fatalf("%T does not implement persistence.Migration", h.Store)
	}
	return m
}

func scanIDs(t *testing.T, m persistence.Migration, coll, after string, paths []string, limit int) []string {
	t.Helper()
	var ids []string
	if err := m.ScanAfterID(ctxT(t), coll, after, paths, limit, func(doc []byte) error {
		id, err := document.IDString(doc)
		if err != nil {
			return err
		}
		ids = append(ids, id)
		return nil
	}); err != nil {
		t.Fatalf("ScanAfterID %s after %q: %v", coll, after, err)
	}
	return ids
}

// idsWhere lists the stored _ids (hex) of coll whose document satisfies
// keep, sorted: what a scan in _id order must return.
func idsWhere(t *testing.T, h *Harness, coll string, keep func(bson.Raw) bool) []string {
	t.Helper()
	var ids []string
	for _, d := range h.Raw(t, coll) {
		if keep(d) {
			ids = append(ids, d.Lookup("_id").ObjectID().Hex())
		}
	}
	sort.Strings(ids)
	return ids
}

var snapPaths = []string{"s2.uri", "s2.credentials.key"}

func testMigrationScanSnapshots(t *testing.T, h *Harness) {
	m := migrator(t, h)
	payloads := []string{
		`{"uri":"tcp://u:p@h:1"}`,
		`{"credentials":{"key":"k"}}`,
		`{"name":"no secret"}`,
		`{"credentials":"not an object"}`,
		`{"uri":null}`, // $exists counts null
		`{"uri":"x","credentials":{"key":"y"}}`,
	}
	const rounds = 5
	for r := 0; r < rounds; r++ {
		for i, p := range payloads {
			mustSave(t, h.Store, persistence.Snapshot{PID: fmt.Sprintf("connection:s%d", i), Seq: int64(r + 1), Timestamp: int64(r), Payload: json.RawMessage(p)})
		}
	}
	want := idsWhere(t, h, document.SnapshotCollection, func(d bson.Raw) bool {
		_, noURI := d.LookupErr("s2", "uri")
		_, noKey := d.LookupErr("s2", "credentials", "key")
		return noURI == nil || noKey == nil
	})
	if len(want) != 4*rounds {
		t.Fatalf("%d documents with a path, want %d", len(want), 4*rounds)
	}
	if got := scanIDs(t, m, document.SnapshotCollection, "", snapPaths, 0); !reflect.DeepEqual(got, want) {
		t.Fatalf("full scan:\n got %v\nwant %v", got, want)
	}
	// Batches of 3, each resuming after the last id of the one before.
	var got []string
	after := ""
	for {
		batch := scanIDs(t, m, document.SnapshotCollection, after, snapPaths, 3)
		if len(batch) > 3 {
			t.Fatalf("batch of %d with limit 3", len(batch))
		}
		if len(batch) == 0 {
			break
		}
		got = append(got, batch...)
		after = batch[len(batch)-1]
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batched scan:\n got %v\nwant %v", got, want)
	}
	if got := scanIDs(t, m, document.SnapshotCollection, want[len(want)-1], snapPaths, 10); len(got) != 0 {
		t.Errorf("scan after the last id = %v", got)
	}
	if got := scanIDs(t, m, document.SnapshotCollection, "", []string{"s2.nothing"}, 0); len(got) != 0 {
		t.Errorf("scan for an absent path = %v", got)
	}
	// An id between stored ones: the scan starts after it.
	mid := scanIDs(t, m, document.SnapshotCollection, want[4], snapPaths, 0)
	if !reflect.DeepEqual(mid, want[5:]) {
		t.Errorf("scan after the 5th id:\n got %v\nwant %v", mid, want[5:])
	}
}

func testMigrationScanJournal(t *testing.T, h *Harness) {
	m := migrator(t, h)
	for i := 1; i <= 12; i++ {
		p := fmt.Sprintf(`{"type":"connectivity.events:connectionOpened","revision":%d,"connectionId":"j"}`, i)
		if i%3 == 0 {
			p = fmt.Sprintf(`{"type":"connectivity.events:connectionModified","revision":%d,"connection":{"uri":"tcp://u:p@h:1"}}`, i)
		}
		mustAppend(t, h.Store, persistence.Event{PID: "connection:j", Seq: int64(i), Manifest: "m", Payload: json.RawMessage(p)})
	}
	paths := []string{"events.p.connection.uri", "events.p.connection.credentials.key"}
	want := idsWhere(t, h, document.JournalCollection, func(d bson.Raw) bool {
		_, err := d.Lookup("events").Array().Index(0).Document().LookupErr("p", "connection", "uri")
		return err == nil
	})
	if len(want) != 4 {
		t.Fatalf("%d journal documents with a uri, want 4", len(want))
	}
	if got := scanIDs(t, m, document.JournalCollection, "", paths, 0); !reflect.DeepEqual(got, want) {
		t.Errorf("journal scan (path through the events array):\n got %v\nwant %v", got, want)
	}
	if got := scanIDs(t, m, document.JournalCollection, want[1], paths, 1); !reflect.DeepEqual(got, want[2:3]) {
		t.Errorf("journal scan after the 2nd, limit 1: got %v, want %v", got, want[2:3])
	}
}

func testMigrationReplace(t *testing.T, h *Harness) {
	m := migrator(t, h)
	for i := 0; i < 4; i++ {
		mustSave(t, h.Store, persistence.Snapshot{PID: fmt.Sprintf("connection:r%d", i), Seq: 1, Timestamp: 1, Payload: json.RawMessage(`{"uri":"old","n":1}`)})
	}
	var docs [][]byte
	_ = m.ScanAfterID(ctxT(t), document.SnapshotCollection, "", []string{"s2.uri"}, 3, func(doc []byte) error {
		out, changed, err := document.RewriteSnapshot(doc, func(p json.RawMessage) (json.RawMessage, bool, error) {
			return json.RawMessage(`{"uri":"new","n":1}`), true, nil
		})
		if err != nil || !changed {
			t.Fatalf("RewriteSnapshot: %v %v", changed, err)
		}
		docs = append(docs, out)
		return nil
	})
	// A document whose _id is not stored is not inserted.
	ghost, _, _ := document.RewriteSnapshot(must(document.Snapshot(bson.NewObjectID(), persistence.Snapshot{PID: "connection:ghost", Seq: 1, Timestamp: 1, Payload: json.RawMessage(`{"uri":"x"}`)})),
		func(p json.RawMessage) (json.RawMessage, bool, error) { return p, true, nil })
	n, err := m.ReplaceByID(ctxT(t), document.SnapshotCollection, append(docs, ghost))
	if err != nil || n != 3 {
		t.Fatalf("ReplaceByID = %d, %v; want 3", n, err)
	}
	raws := h.Raw(t, document.SnapshotCollection)
	if len(raws) != 4 {
		t.Fatalf("%d snapshot documents after the replace, want 4", len(raws))
	}
	news := 0
	for _, d := range raws {
		if d.Lookup("s2", "uri").StringValue() == "new" {
			news++
		}
		if d.Lookup("pid").StringValue() == "connection:ghost" {
			t.Error("the replace inserted a document")
		}
	}
	if news != 3 {
		t.Errorf("%d documents replaced in storage, want 3", news)
	}
	// Reads see the replacement; _id, pid, sn, ts are kept.
	byID := map[string]bson.Raw{}
	for _, d := range raws {
		byID[d.Lookup("_id").ObjectID().Hex()] = d
	}
	for _, d := range docs {
		id, _ := document.IDString(d)
		if !reflect.DeepEqual([]byte(byID[id]), d) {
			t.Errorf("stored document %s differs from the replacement", id)
		}
		s := latest(t, h.Store, document.PIDOf(d))
		if string(s.Payload) != `{"uri":"new","n":1}` {
			t.Errorf("LatestSnapshot after the replace = %s", s.Payload)
		}
	}
	if n, err := m.ReplaceByID(ctxT(t), document.SnapshotCollection, nil); err != nil || n != 0 {
		t.Errorf("empty ReplaceByID = %d, %v", n, err)
	}
}

func must(b bson.Raw, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

func testMigrationProgress(t *testing.T, h *Harness) {
	m := migrator(t, h)
	if _, err := m.LoadProgress(ctxT(t)); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("LoadProgress on empty storage = %v, want ErrNotFound", err)
	}
	p := persistence.MigrationProgress{Phase: "snapshots", LastSnapshotID: "507f1f77bcf86cd799439011", LastSnapshotPID: "connection:x",
		SnapshotsProcessed: 150, SnapshotsSkipped: 10, SnapshotsFailed: 2, StartedAt: "2026-02-16T10:00:00Z", UpdatedAt: "2026-02-16T10:30:00Z"}
	if err := m.SaveProgress(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	got, err := m.LoadProgress(ctxT(t))
	if err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("LoadProgress = %+v, %v; want %+v", got, err, p)
	}
	p.Phase, p.LastJournalID, p.LastJournalPID, p.JournalProcessed = "journal", "507f1f77bcf86cd799439012", "connection:y", 7
	if err := m.SaveProgress(ctxT(t), p); err != nil {
		t.Fatal(err)
	}
	raws := h.Raw(t, document.EncryptionMigrationCollection)
	if len(raws) != 1 {
		t.Fatalf("%d progress documents, want 1", len(raws))
	}
	raw := raws[0]
	wantKeys := []string{"_id", "phase", "lastProcessedSnapshotId", "lastProcessedSnapshotPid", "lastProcessedJournalId", "lastProcessedJournalPid",
		"snapshotsProcessed", "snapshotsSkipped", "snapshotsFailed", "journalProcessed", "journalSkipped", "journalFailed", "startedAt", "updatedAt"}
	if got := keysOf(t, raw); !reflect.DeepEqual(got, wantKeys) {
		t.Errorf("progress keys %v, want Ditto's %v", got, wantKeys)
	}
	if raw.Lookup("_id").StringValue() != "current" {
		t.Errorf("_id = %v", raw.Lookup("_id"))
	}
	for _, k := range wantKeys[6:12] {
		if typ := raw.Lookup(k).Type; typ != bson.TypeInt64 {
			t.Errorf("%s is %v, want int64", k, typ)
		}
	}
	if got, _ := m.LoadProgress(ctxT(t)); !reflect.DeepEqual(got, p) {
		t.Errorf("after the second save: %+v", got)
	}
	// Null ids read back empty.
	p2 := persistence.MigrationProgress{Phase: "completed", StartedAt: "a", UpdatedAt: "b"}
	_ = m.SaveProgress(ctxT(t), p2)
	if raw := h.Raw(t, document.EncryptionMigrationCollection)[0]; raw.Lookup("lastProcessedJournalId").Type != bson.TypeNull {
		t.Errorf("an empty id is stored as %v, want null", raw.Lookup("lastProcessedJournalId").Type)
	}
	if got, _ := m.LoadProgress(ctxT(t)); !reflect.DeepEqual(got, p2) {
		t.Errorf("LoadProgress = %+v, want %+v", got, p2)
	}
	for i := 0; i < 2; i++ {
		if err := m.DeleteProgress(ctxT(t)); err != nil {
			t.Fatalf("DeleteProgress #%d: %v", i+1, err)
		}
	}
	if _, err := m.LoadProgress(ctxT(t)); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("LoadProgress after delete = %v", err)
	}
}

func testMigrationLease(t *testing.T, h *Harness) {
	m := migrator(t, h)
	if _, err := m.LoadLease(ctxT(t)); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("LoadLease on empty storage = %v", err)
	}
	// Many contenders, one winner.
	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := m.InsertLease(ctxT(t), persistence.Lease{Owner: fmt.Sprintf("owner-%d", i), ExpiresAt: 1000})
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.Is(err, persistence.ErrConflict):
				t.Errorf("InsertLease: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d contenders got the lease, want 1", wins.Load())
	}
	l, err := m.LoadLease(ctxT(t))
	if err != nil || l.ExpiresAt != 1000 {
		t.Fatalf("LoadLease = %+v, %v", l, err)
	}
	owner := l.Owner
	if err := m.RenewLease(ctxT(t), owner, 2000); err != nil {
		t.Fatalf("RenewLease by the owner: %v", err)
	}
	if err := m.RenewLease(ctxT(t), "someone-else", 3000); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RenewLease by another = %v, want ErrNotFound", err)
	}
	if err := m.DeleteLease(ctxT(t), "someone-else"); err != nil {
		t.Errorf("DeleteLease by another: %v", err)
	}
	if l, _ := m.LoadLease(ctxT(t)); l.Owner != owner || l.ExpiresAt != 2000 {
		t.Errorf("lease = %+v, want %s until 2000", l, owner)
	}
	if err := m.DeleteLease(ctxT(t), owner); err != nil {
		t.Fatal(err)
	}
	if _, err := m.LoadLease(ctxT(t)); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("LoadLease after delete = %v", err)
	}
	if err := m.RenewLease(ctxT(t), owner, 1); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("RenewLease without a lease = %v", err)
	}
	if err := m.InsertLease(ctxT(t), persistence.Lease{Owner: "next", ExpiresAt: 5}); err != nil {
		t.Errorf("InsertLease after delete: %v", err)
	}
	// The lease lives beside the progress document and does not disturb it.
	if _, err := m.LoadProgress(ctxT(t)); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("LoadProgress with only a lease stored = %v", err)
	}
}
