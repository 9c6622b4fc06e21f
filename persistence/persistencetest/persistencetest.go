// Package persistencetest is the conformance suite every persistence engine
// passes: one test body, run by each engine's tests on its own storage.
package persistencetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/cleanup"
	"github.com/dittoconn/dittoconn/persistence/document"
)

// Harness is one engine under test on fresh, empty storage of its own.
type Harness struct {
	// Store is the engine under test. The engine's harness closes whatever
	// store is current when the test ends.
	Store persistence.Store
	// Reopen closes the current store and opens the engine again on the same
	// storage; the new store becomes current.
	Reopen func(t *testing.T) persistence.Store
	// Raw returns every document of a collection as stored, in any order.
	Raw func(t *testing.T, collection string) []bson.Raw
	// Insert stores doc as is, as another writer (Ditto) would have.
	Insert func(t *testing.T, collection string, doc bson.Raw)
	// NestedArrays says the storage keeps arrays inside arrays; FerretDB v1
	// rejects them (Ditto's connection JSON has none, but MongoDB allows them).
	NestedArrays bool
}

// Run runs the suite; open is called once per subtest and must return a
// harness on empty storage.
func Run(t *testing.T, open func(t *testing.T) *Harness) {
	tests := []struct {
		name string
		fn   func(t *testing.T, h *Harness)
	}{
		{"AppendReplay", testAppendReplay},
		{"HighestSeq", testHighestSeq},
		{"Conflict", testConflict},
		{"ConcurrentConflict", testConcurrentConflict},
		{"Snapshots", testSnapshots},
		{"LatestEvents", testLatestEvents},
		{"LatestSnapshots", testLatestSnapshots},
		{"PayloadRoundTrip", testPayloadRoundTrip},
		{"Reopen", testReopen},
		{"RawLayout", testRawLayout},
		{"DittoDocuments", testDittoDocuments},
		{"InvalidInput", testInvalidInput},
		{"Prune", testPrune},
		{"PruneDeleted", testPruneDeleted},
		{"CleanupScan", testCleanupScan},
		{"Cleanup", testCleanup},
		{"MigrationScanSnapshots", testMigrationScanSnapshots},
		{"MigrationScanJournal", testMigrationScanJournal},
		{"MigrationReplace", testMigrationReplace},
		{"MigrationProgress", testMigrationProgress},
		{"MigrationLease", testMigrationLease},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open(t))
		})
	}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func event(pid string, seq int64) persistence.Event {
	return persistence.Event{
		PID:      pid,
		Seq:      seq,
		Manifest: "connectivity.events:connectionModified",
		Tags:     []string{"t1", "always-alive"},
		Writer:   "writer-1",
		Payload:  json.RawMessage(fmt.Sprintf(`{"type":"connectivity.events:connectionModified","revision":%d,"connectionId":%q,"__hh":{}}`, seq, pid)),
	}
}

func mustAppend(t *testing.T, s persistence.Store, evs ...persistence.Event) {
	t.Helper()
	for _, ev := range evs {
		if err := s.Append(ctxT(t), ev); err != nil {
			t.Fatalf("Append %s/%d: %v", ev.PID, ev.Seq, err)
		}
	}
}

func replay(t *testing.T, s persistence.Store, pid string, from int64) []persistence.Event {
	t.Helper()
	var out []persistence.Event
	if err := s.Replay(ctxT(t), pid, from, func(ev persistence.Event) error {
		out = append(out, ev)
		return nil
	}); err != nil {
		t.Fatalf("Replay %s from %d: %v", pid, from, err)
	}
	return out
}

func highest(t *testing.T, s persistence.Store, pid string) int64 {
	t.Helper()
	n, err := s.HighestSeq(ctxT(t), pid)
	if err != nil {
		t.Fatalf("HighestSeq %s: %v", pid, err)
	}
	return n
}

func equalEvents(t *testing.T, what string, got, want []persistence.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events (%v), want %d", what, len(got), seqs(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s: event %d:\n got %+v\n     payload %s\nwant %+v\n     payload %s", what, i, got[i], got[i].Payload, want[i], want[i].Payload)
		}
	}
}

func seqs(evs []persistence.Event) []int64 {
	out := make([]int64, len(evs))
	for i, ev := range evs {
		out[i] = ev.Seq
	}
	return out
}

func testAppendReplay(t *testing.T, h *Harness) {
	s := h.Store
	var a, b []persistence.Event
	for seq := int64(1); seq <= 5; seq++ {
		a = append(a, event("connection:a", seq))
		if seq <= 3 {
			b = append(b, event("connection:b", seq))
		}
	}
	// Interleave the pids so the engine cannot rely on insertion order.
	mustAppend(t, s, a[0], b[0], a[1], b[1], b[2], a[2], a[3], a[4])
	equalEvents(t, "a from 1", replay(t, s, "connection:a", 1), a)
	equalEvents(t, "a from 0", replay(t, s, "connection:a", 0), a)
	equalEvents(t, "a from 3", replay(t, s, "connection:a", 3), a[2:])
	equalEvents(t, "a from 6", replay(t, s, "connection:a", 6), nil)
	equalEvents(t, "b from 2", replay(t, s, "connection:b", 2), b[1:])
	equalEvents(t, "unknown pid", replay(t, s, "connection:none", 1), nil)
	// A pid that is a prefix of another must not see the other's events.
	equalEvents(t, "prefix pid", replay(t, s, "connection:", 1), nil)

	stop := errors.New("stop")
	n := 0
	err := s.Replay(ctxT(t), "connection:a", 1, func(persistence.Event) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Errorf("Replay with failing fn: err %v after %d events, want stop after 2", err, n)
	}
}

func testHighestSeq(t *testing.T, h *Harness) {
	s := h.Store
	if n := highest(t, s, "connection:a"); n != 0 {
		t.Errorf("empty store: HighestSeq = %d, want 0", n)
	}
	for seq := int64(1); seq <= 4; seq++ {
		mustAppend(t, s, event("connection:a", seq))
	}
	mustAppend(t, s, event("connection:ab", 9), event("connection:", 7))
	if n := highest(t, s, "connection:a"); n != 4 {
		t.Errorf("HighestSeq(a) = %d, want 4", n)
	}
	if n := highest(t, s, "connection:b"); n != 0 {
		t.Errorf("HighestSeq(b) = %d, want 0", n)
	}
	// The metadata document (left by the plugin when it deletes events) is
	// the fallback when the journal has no document of the pid.
	h.Insert(t, document.MetadataCollection, document.Metadata("connection:deleted", 12))
	h.Insert(t, document.MetadataCollection, document.Metadata("connection:a", 2))
	if n := highest(t, s, "connection:deleted"); n != 12 {
		t.Errorf("HighestSeq from metadata = %d, want 12", n)
	}
	if n := highest(t, s, "connection:a"); n != 4 {
		t.Errorf("HighestSeq(a) with metadata = %d, want 4 (journal first)", n)
	}
}

func testConflict(t *testing.T, h *Harness) {
	s := h.Store
	first := event("connection:a", 1)
	mustAppend(t, s, first)
	second := first
	second.Writer = "writer-2"
	err := s.Append(ctxT(t), second)
	if !errors.Is(err, persistence.ErrConflict) {
		t.Fatalf("second Append of seq 1 = %v, want ErrConflict", err)
	}
	equalEvents(t, "after conflict", replay(t, s, "connection:a", 1), []persistence.Event{first})
	// The same seq under another pid is no conflict.
	mustAppend(t, s, event("connection:b", 1), event("connection:a", 2))
}

func testConcurrentConflict(t *testing.T, h *Harness) {
	s := h.Store
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ev := event("connection:race", 1)
			ev.Writer = fmt.Sprintf("writer-%d", i)
			<-start
			errs[i] = s.Append(ctxT(t), ev)
		}()
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Errorf("writers %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, persistence.ErrConflict):
			t.Errorf("writer %d: %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no writer won")
	}
	got := replay(t, s, "connection:race", 1)
	if len(got) != 1 || got[0].Writer != fmt.Sprintf("writer-%d", winner) {
		t.Errorf("journal after the race: %+v, want the one event of writer-%d", got, winner)
	}
	if n := len(h.Raw(t, document.JournalCollection)); n != 1 {
		t.Errorf("%d journal documents, want 1", n)
	}
}

func snapshot(pid string, seq, ts int64, name string) persistence.Snapshot {
	return persistence.Snapshot{PID: pid, Seq: seq, Timestamp: ts,
		Payload: json.RawMessage(fmt.Sprintf(`{"__lifecycle":"ACTIVE","id":%q,"name":%q,"_revision":%d}`, pid, name, seq))}
}

func mustSave(t *testing.T, s persistence.Store, snaps ...persistence.Snapshot) {
	t.Helper()
	for _, sn := range snaps {
		if err := s.SaveSnapshot(ctxT(t), sn); err != nil {
			t.Fatalf("SaveSnapshot %s/%d/%d: %v", sn.PID, sn.Seq, sn.Timestamp, err)
		}
	}
}

func latest(t *testing.T, s persistence.Store, pid string) persistence.Snapshot {
	t.Helper()
	got, err := s.LatestSnapshot(ctxT(t), pid)
	if err != nil {
		t.Fatalf("LatestSnapshot %s: %v", pid, err)
	}
	return got
}

func testSnapshots(t *testing.T, h *Harness) {
	s := h.Store
	if _, err := s.LatestSnapshot(ctxT(t), "connection:a"); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("LatestSnapshot on empty store = %v, want ErrNotFound", err)
	}
	mustSave(t, s,
		snapshot("connection:a", 5, 100, "five"),
		snapshot("connection:a", 10, 50, "ten-50"),
		snapshot("connection:a", 10, 60, "ten-60"),
		snapshot("connection:a", 7, 999, "seven"),
		snapshot("connection:ab", 20, 1, "other pid"),
	)
	if got, want := latest(t, s, "connection:a"), snapshot("connection:a", 10, 60, "ten-60"); !reflect.DeepEqual(got, want) {
		t.Errorf("latest = %+v, want %+v (highest sn, then ts)", got, want)
	}
	if _, err := s.LatestSnapshot(ctxT(t), "connection:"); !errors.Is(err, persistence.ErrNotFound) {
		t.Errorf("LatestSnapshot of a pid prefix = %v, want ErrNotFound", err)
	}

	idOf := func() map[[3]any]bson.ObjectID {
		ids := map[[3]any]bson.ObjectID{}
		for _, raw := range h.Raw(t, document.SnapshotCollection) {
			key := [3]any{raw.Lookup("pid").StringValue(), raw.Lookup("sn").Int64(), raw.Lookup("ts").Int64()}
			if _, dup := ids[key]; dup {
				t.Errorf("two snapshot documents for %v", key)
			}
			ids[key] = raw.Lookup("_id").ObjectID()
		}
		return ids
	}
	before := idOf()
	replaced := snapshot("connection:a", 10, 60, "replaced")
	mustSave(t, s, replaced)
	if got := latest(t, s, "connection:a"); !reflect.DeepEqual(got, replaced) {
		t.Errorf("after replace: latest = %+v, want %+v", got, replaced)
	}
	after := idOf()
	if len(after) != 5 {
		t.Errorf("%d snapshot documents after a replace, want 5", len(after))
	}
	if k := [3]any{"connection:a", int64(10), int64(60)}; after[k] != before[k] || after[k].IsZero() {
		t.Errorf("replace changed _id %s → %s", before[k].Hex(), after[k].Hex())
	}
}

type head struct {
	PID      string
	Seq      int64
	Manifest string
	Writer   string
	Tags     []string
}

func latestEvents(t *testing.T, s persistence.Store, prefix string) []head {
	t.Helper()
	var out []head
	seen := map[string]bool{}
	if err := s.LatestEvents(ctxT(t), prefix, func(ev persistence.Event) error {
		if seen[ev.PID] {
			t.Errorf("LatestEvents(%q): %s emitted twice", prefix, ev.PID)
		}
		seen[ev.PID] = true
		out = append(out, head{ev.PID, ev.Seq, ev.Manifest, ev.Writer, ev.Tags})
		return nil
	}); err != nil {
		t.Fatalf("LatestEvents(%q): %v", prefix, err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].PID < out[j].PID })
	return out
}

func testLatestEvents(t *testing.T, h *Harness) {
	s := h.Store
	if got := latestEvents(t, s, "connection:"); len(got) != 0 {
		t.Errorf("empty store: %v", got)
	}
	deleted := event("connection:b", 2)
	deleted.Manifest, deleted.Tags, deleted.Writer = "connectivity.events:connectionDeleted", nil, "writer-9"
	mustAppend(t, s,
		event("connection:a", 1), event("connection:b", 1), event("connection:a", 2),
		event("other:c", 1), deleted, event("connection:a", 3), event("other:c", 2),
		event("connection:ab", 1), event("connXection:z", 1),
	)
	tags := []string{"t1", "always-alive"}
	mod := "connectivity.events:connectionModified"
	want := []head{
		{"connection:a", 3, mod, "writer-1", tags},
		{"connection:ab", 1, mod, "writer-1", tags},
		{"connection:b", 2, "connectivity.events:connectionDeleted", "writer-9", nil},
	}
	if got := latestEvents(t, s, "connection:"); !reflect.DeepEqual(got, want) {
		t.Errorf("LatestEvents(connection:) =\n %+v\nwant\n %+v", got, want)
	}
	// The prefix is literal text, not a pattern.
	if got := latestEvents(t, s, "conn.ction:"); len(got) != 0 {
		t.Errorf("LatestEvents(conn.ction:) = %+v, want none", got)
	}
	all := latestEvents(t, s, "")
	if len(all) != 5 || all[4].PID != "other:c" || all[4].Seq != 2 {
		t.Errorf("LatestEvents(\"\") = %+v, want 5 pids, other:c at 2", all)
	}
	stop := errors.New("stop")
	if err := s.LatestEvents(ctxT(t), "", func(persistence.Event) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("LatestEvents with failing fn = %v, want stop", err)
	}
}

func testLatestSnapshots(t *testing.T, h *Harness) {
	s := h.Store
	mustSave(t, s,
		snapshot("connection:a", 10, 5, "a10"), snapshot("connection:a", 20, 1, "a20-1"), snapshot("connection:a", 20, 2, "a20-2"),
		snapshot("connection:a", 15, 9, "a15"), snapshot("connection:b", 3, 3, "b3"), snapshot("other:c", 1, 1, "c1"),
	)
	collect := func(prefix string) map[string]persistence.Snapshot {
		t.Helper()
		out := map[string]persistence.Snapshot{}
		if err := s.LatestSnapshots(ctxT(t), prefix, func(sn persistence.Snapshot) error {
			if _, dup := out[sn.PID]; dup {
				t.Errorf("LatestSnapshots(%q): %s emitted twice", prefix, sn.PID)
			}
			out[sn.PID] = sn
			return nil
		}); err != nil {
			t.Fatalf("LatestSnapshots(%q): %v", prefix, err)
		}
		return out
	}
	want := map[string]persistence.Snapshot{
		"connection:a": snapshot("connection:a", 20, 2, "a20-2"),
		"connection:b": snapshot("connection:b", 3, 3, "b3"),
	}
	if got := collect("connection:"); !reflect.DeepEqual(got, want) {
		t.Errorf("LatestSnapshots(connection:) =\n %+v\nwant\n %+v", got, want)
	}
	if got := collect(""); len(got) != 3 {
		t.Errorf("LatestSnapshots(\"\") = %d pids, want 3", len(got))
	}
}

// payload exercises every JSON kind and both escaped key characters.
const payload = `{"type":"connectivity.events:connectionCreated","connection":{"id":"x","headerMapping":{"mqtt.topic":"{{ header:mqtt.topic }}","$dollar":"d$"},` +
	`"specificConfig":{"jms.clientID":"c"},"i32":2147483647,"i64":9007199254740993,"neg":-5,"d":1.5,"small":1e-7,"t":true,"f":false,"n":null,` +
	`"nested":{"a.b":[1,{"$c.d":[]},{}],"s":"ü \"q\" \\ \n ✓"}},"__hh":{}}`

const nestedArrays = `{"m":[[1,[2.5,[]]],[{"a.b":[[null]]}]]}`

func testPayloadRoundTrip(t *testing.T, h *Harness) {
	s := h.Store
	payloads := []string{payload}
	if h.NestedArrays {
		payloads = append(payloads, nestedArrays)
	}
	for i, p := range payloads {
		pid := fmt.Sprintf("connection:p%d", i)
		ev := event(pid, 1)
		ev.Payload = json.RawMessage(p)
		ev.Tags = nil
		mustAppend(t, s, ev)
		equalEvents(t, "replay", replay(t, s, pid, 1), []persistence.Event{ev})

		snap := persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(p)}
		mustSave(t, s, snap)
		if got := latest(t, s, pid); !bytes.Equal(got.Payload, snap.Payload) {
			t.Errorf("snapshot payload:\n got %s\nwant %s", got.Payload, snap.Payload)
		}
	}
}

func testReopen(t *testing.T, h *Harness) {
	s := h.Store
	evs := []persistence.Event{event("connection:a", 1), event("connection:a", 2)}
	mustAppend(t, s, evs...)
	snap := snapshot("connection:a", 2, 42, "snap")
	mustSave(t, s, snap)

	s = h.Reopen(t)
	equalEvents(t, "after reopen", replay(t, s, "connection:a", 1), evs)
	if n := highest(t, s, "connection:a"); n != 2 {
		t.Errorf("HighestSeq after reopen = %d, want 2", n)
	}
	if got := latest(t, s, "connection:a"); !reflect.DeepEqual(got, snap) {
		t.Errorf("snapshot after reopen = %+v, want %+v", got, snap)
	}
	if err := s.Append(ctxT(t), event("connection:a", 2)); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("Append of an existing seq after reopen = %v, want ErrConflict", err)
	}
	mustAppend(t, s, event("connection:a", 3))
}

func keysOf(t *testing.T, raw bson.Raw) []string {
	t.Helper()
	elems, err := raw.Elements()
	if err != nil {
		t.Fatalf("stored document: %v", err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = e.Key()
	}
	return out
}

func wantTypes(t *testing.T, what string, raw bson.Raw, types map[string]bson.Type) {
	t.Helper()
	for k, want := range types {
		if got := raw.Lookup(k).Type; got != want {
			t.Errorf("%s.%s: BSON type %v, want %v", what, k, got, want)
		}
	}
}

func testRawLayout(t *testing.T, h *Harness) {
	s := h.Store
	ev := event("connection:layout", 1)
	ev.Payload = json.RawMessage(`{"type":"t","connection":{"headerMapping":{"mqtt.topic":"x","$k":"y"}},"i":1,"l":5000000000,"d":0.5}`)
	untagged := event("connection:layout", 2)
	untagged.Tags = nil
	mustAppend(t, s, ev, untagged)

	docs := h.Raw(t, document.JournalCollection)
	if len(docs) != 2 {
		t.Fatalf("%d journal documents, want 2", len(docs))
	}
	sort.Slice(docs, func(i, j int) bool { return docs[i].Lookup("to").Int64() < docs[j].Lookup("to").Int64() })
	top := map[string]bson.Type{"_id": bson.TypeObjectID, "pid": bson.TypeString, "from": bson.TypeInt64, "to": bson.TypeInt64,
		"events": bson.TypeArray, "v": bson.TypeInt32}
	inner := map[string]bson.Type{"v": bson.TypeInt32, "pid": bson.TypeString, "sn": bson.TypeInt64, "_t": bson.TypeString,
		"p": bson.TypeEmbeddedDocument, "manifest": bson.TypeString, "_w": bson.TypeString}
	for i, doc := range docs {
		tagged := i == 0
		wantTop := []string{"_id", "pid", "from", "to", "events", "v"}
		wantInner := []string{"v", "pid", "sn", "_t", "p", "manifest", "_w"}
		if tagged {
			wantTop = append(wantTop, "_tg")
			wantInner = []string{"v", "pid", "sn", "_t", "p", "_tg", "manifest", "_w"}
		}
		if got := keysOf(t, doc); !reflect.DeepEqual(got, wantTop) {
			t.Errorf("journal doc %d keys %v, want %v", i+1, got, wantTop)
		}
		wantTypes(t, "journal", doc, top)
		arr := doc.Lookup("events").Array()
		if vals, _ := arr.Values(); len(vals) != 1 {
			t.Fatalf("journal doc %d: %d events, want 1", i+1, len(vals))
		}
		evDoc := arr.Index(0).Document()
		if got := keysOf(t, evDoc); !reflect.DeepEqual(got, wantInner) {
			t.Errorf("journal doc %d event keys %v, want %v", i+1, got, wantInner)
		}
		wantTypes(t, "events.0", evDoc, inner)
		seq := int64(i + 1)
		if doc.Lookup("from").Int64() != seq || doc.Lookup("to").Int64() != seq || evDoc.Lookup("sn").Int64() != seq ||
			doc.Lookup("v").Int32() != 1 || evDoc.Lookup("v").Int32() != 1 || evDoc.Lookup("_t").StringValue() != "bson" ||
			doc.Lookup("pid").StringValue() != "connection:layout" || evDoc.Lookup("manifest").StringValue() != ev.Manifest ||
			evDoc.Lookup("_w").StringValue() != ev.Writer {
			t.Errorf("journal doc %d values: %s", i+1, doc)
		}
		if tagged {
			for _, d := range []bson.Raw{doc, evDoc} {
				if got := d.Lookup("_tg").Array().String(); got != `["t1","always-alive"]` {
					t.Errorf("_tg = %s", got)
				}
			}
		}
	}
	p := docs[0].Lookup("events").Array().Index(0).Document().Lookup("p").Document()
	if got := keysOf(t, p); !reflect.DeepEqual(got, []string{"type", "connection", "i", "l", "d"}) {
		t.Errorf("payload keys %v", got)
	}
	if got := keysOf(t, p.Lookup("connection", "headerMapping").Document()); !reflect.DeepEqual(got, []string{"mqtt\uFF0Etopic", "\uFF04k"}) {
		t.Errorf("escaped keys %q, want mqtt\\uFF0Etopic and \\uFF04k", got)
	}
	wantTypes(t, "p", p, map[string]bson.Type{"i": bson.TypeInt32, "l": bson.TypeInt64, "d": bson.TypeDouble})

	mustSave(t, s, snapshot("connection:layout", 2, 1700000000000, "s"))
	snaps := h.Raw(t, document.SnapshotCollection)
	if len(snaps) != 1 {
		t.Fatalf("%d snapshot documents, want 1", len(snaps))
	}
	if got, want := keysOf(t, snaps[0]), []string{"_id", "pid", "sn", "ts", "s2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot keys %v, want %v", got, want)
	}
	wantTypes(t, "snapshot", snaps[0], map[string]bson.Type{"_id": bson.TypeObjectID, "pid": bson.TypeString,
		"sn": bson.TypeInt64, "ts": bson.TypeInt64, "s2": bson.TypeEmbeddedDocument})
	if got := snaps[0].Lookup("s2", "_revision").Type; got != bson.TypeInt32 {
		t.Errorf("s2._revision: %v, want int32", got)
	}
}

// testDittoDocuments reads documents written the way Ditto writes them
// (built here by hand, independently of package document).
func testDittoDocuments(t *testing.T, h *Harness) {
	s := h.Store
	pid := "connection:from-ditto"
	p := bson.D{
		{Key: "type", Value: "connectivity.events:connectionCreated"},
		{Key: "_timestamp", Value: "2026-08-20T10:00:00.123Z"},
		{Key: "revision", Value: int32(1)},
		{Key: "connectionId", Value: "from-ditto"},
		{Key: "connection", Value: bson.D{
			{Key: "id", Value: "from-ditto"},
			{Key: "headerMapping", Value: bson.D{{Key: "mqtt\uFF0Etopic", Value: "t"}}},
			{Key: "big", Value: int64(1) << 40},
			{Key: "ratio", Value: 0.25},
			{Key: "tags", Value: bson.A{"prod"}},
		}},
		{Key: "__hh", Value: bson.D{}},
	}
	tags := bson.A{"prod", "always-alive", "priority-0"}
	journal, err := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "pid", Value: pid},
		{Key: "from", Value: int64(1)},
		{Key: "to", Value: int64(1)},
		{Key: "events", Value: bson.A{bson.D{
			{Key: "v", Value: int32(1)}, {Key: "pid", Value: pid}, {Key: "sn", Value: int64(1)}, {Key: "_t", Value: "bson"},
			{Key: "p", Value: p}, {Key: "_tg", Value: tags},
			{Key: "manifest", Value: "connectivity.events:connectionCreated"}, {Key: "_w", Value: "ditto-writer"},
		}}},
		{Key: "v", Value: int32(1)},
		{Key: "_tg", Value: tags},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Insert(t, document.JournalCollection, journal)
	snapDoc, err := bson.Marshal(bson.D{
		{Key: "_id", Value: bson.NewObjectID()},
		{Key: "pid", Value: pid},
		{Key: "sn", Value: int64(1)},
		{Key: "ts", Value: int64(1787220000123)},
		{Key: "s2", Value: bson.D{{Key: "__lifecycle", Value: "ACTIVE"}, {Key: "id", Value: "from-ditto"}, {Key: "_revision", Value: int32(1)}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.Insert(t, document.SnapshotCollection, snapDoc)

	wantPayload := `{"type":"connectivity.events:connectionCreated","_timestamp":"2026-08-20T10:00:00.123Z","revision":1,"connectionId":"from-ditto",` +
		`"connection":{"id":"from-ditto","headerMapping":{"mqtt.topic":"t"},"big":1099511627776,"ratio":0.25,"tags":["prod"]},"__hh":{}}`
	want := persistence.Event{PID: pid, Seq: 1, Manifest: "connectivity.events:connectionCreated",
		Tags: []string{"prod", "always-alive", "priority-0"}, Writer: "ditto-writer", Payload: json.RawMessage(wantPayload)}
	equalEvents(t, "replay of Ditto's document", replay(t, s, pid, 1), []persistence.Event{want})
	if n := highest(t, s, pid); n != 1 {
		t.Errorf("HighestSeq = %d, want 1", n)
	}
	wantSnap := persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1787220000123, Payload: json.RawMessage(`{"__lifecycle":"ACTIVE","id":"from-ditto","_revision":1}`)}
	if got := latest(t, s, pid); !reflect.DeepEqual(got, wantSnap) {
		t.Errorf("LatestSnapshot = %+v, want %+v", got, wantSnap)
	}
	if got := latestEvents(t, s, "connection:"); len(got) != 1 || got[0].PID != pid || got[0].Seq != 1 {
		t.Errorf("LatestEvents = %+v", got)
	}
	if err := s.Append(ctxT(t), event(pid, 1)); !errors.Is(err, persistence.ErrConflict) {
		t.Errorf("Append over Ditto's seq 1 = %v, want ErrConflict", err)
	}
	mustAppend(t, s, event(pid, 2))
}

func testInvalidInput(t *testing.T, h *Harness) {
	s := h.Store
	for name, ev := range map[string]persistence.Event{
		"payload not an object": {PID: "connection:x", Seq: 1, Payload: json.RawMessage(`[1]`)},
		"payload not JSON":      {PID: "connection:x", Seq: 1, Payload: json.RawMessage(`{`)},
		"seq 0":                 {PID: "connection:x", Seq: 0, Payload: json.RawMessage(`{}`)},
		"empty pid":             {PID: "", Seq: 1, Payload: json.RawMessage(`{}`)},
	} {
		err := s.Append(ctxT(t), ev)
		if err == nil || errors.Is(err, persistence.ErrConflict) {
			t.Errorf("Append(%s) = %v, want a validation error", name, err)
		}
	}
	if err := s.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: "connection:x", Seq: 1, Payload: json.RawMessage(`"s"`)}); err == nil {
		t.Error("SaveSnapshot with a non-object payload succeeded")
	}
	if n := len(h.Raw(t, document.JournalCollection)) + len(h.Raw(t, document.SnapshotCollection)); n != 0 {
		t.Errorf("%d documents stored by invalid calls", n)
	}
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(canceled, event("connection:x", 1)); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
}

func snapSeqs(t *testing.T, h *Harness, pid string) []int64 {
	t.Helper()
	var out []int64
	for _, raw := range h.Raw(t, document.SnapshotCollection) {
		if raw.Lookup("pid").StringValue() == pid {
			out = append(out, raw.Lookup("sn").Int64())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func testPrune(t *testing.T, h *Harness) {
	s := h.Store
	var a, b []persistence.Event
	for seq := int64(1); seq <= 5; seq++ {
		a = append(a, event("connection:a", seq))
		b = append(b, event("connection:b", seq))
	}
	mustAppend(t, s, a...)
	mustAppend(t, s, b...)
	mustSave(t, s, snapshot("connection:a", 2, 1, "a2"), snapshot("connection:a", 4, 1, "a4"), snapshot("connection:b", 2, 1, "b2"))

	// No snapshot at or above toSeq: recovery would need the events.
	if err := s.Prune(ctxT(t), "connection:a", 5); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("Prune above the latest snapshot = %v, want ErrNotFound", err)
	}
	if err := s.Prune(ctxT(t), "connection:none", 1); !errors.Is(err, persistence.ErrNotFound) {
		t.Fatalf("Prune of an unknown pid = %v, want ErrNotFound", err)
	}
	equalEvents(t, "after refused prunes", replay(t, s, "connection:a", 1), a)

	// Below the latest snapshot: the events up to toSeq and the older snapshots go.
	if err := s.Prune(ctxT(t), "connection:a", 3); err != nil {
		t.Fatalf("Prune(a, 3): %v", err)
	}
	equalEvents(t, "a after Prune(3)", replay(t, s, "connection:a", 1), a[3:])
	if got := snapSeqs(t, h, "connection:a"); !reflect.DeepEqual(got, []int64{4}) {
		t.Errorf("snapshots of a after Prune(3): %v, want [4]", got)
	}
	if n := highest(t, s, "connection:a"); n != 5 {
		t.Errorf("HighestSeq(a) after Prune(3) = %d, want 5", n)
	}
	// The other pid is untouched.
	equalEvents(t, "b", replay(t, s, "connection:b", 1), b)
	if got := snapSeqs(t, h, "connection:b"); !reflect.DeepEqual(got, []int64{2}) {
		t.Errorf("snapshots of b: %v, want [2]", got)
	}

	// Up to the latest snapshot after one at 5: no events left, the
	// metadata keeps the highest sequence number, and appending continues.
	mustSave(t, s, snapshot("connection:a", 5, 1, "a5"))
	if err := s.Prune(ctxT(t), "connection:a", 5); err != nil {
		t.Fatalf("Prune(a, 5): %v", err)
	}
	if err := s.Prune(ctxT(t), "connection:a", 5); err != nil {
		t.Fatalf("second Prune(a, 5): %v", err)
	}
	equalEvents(t, "a after Prune(5)", replay(t, s, "connection:a", 1), nil)
	if got := snapSeqs(t, h, "connection:a"); !reflect.DeepEqual(got, []int64{5}) {
		t.Errorf("snapshots of a after Prune(5): %v, want [5]", got)
	}
	if n := highest(t, s, "connection:a"); n != 5 {
		t.Errorf("HighestSeq(a) after Prune(5) = %d, want 5 (metadata)", n)
	}
	var meta []int64
	for _, raw := range h.Raw(t, document.MetadataCollection) {
		if raw.Lookup("pid").StringValue() == "connection:a" {
			meta = append(meta, raw.Lookup("max_sn").Int64())
			if raw.Lookup("_id").Type != bson.TypeObjectID {
				t.Errorf("metadata _id: %v", raw.Lookup("_id").Type)
			}
		}
	}
	if !reflect.DeepEqual(meta, []int64{5}) {
		t.Errorf("metadata of a: max_sn %v, want [5]", meta)
	}
	if got := latest(t, s, "connection:a"); !reflect.DeepEqual(got, snapshot("connection:a", 5, 1, "a5")) {
		t.Errorf("latest snapshot after Prune(5) = %+v", got)
	}
	next := event("connection:a", 6)
	mustAppend(t, s, next)
	equalEvents(t, "a after appending 6", replay(t, s, "connection:a", 6), []persistence.Event{next})
	if n := highest(t, s, "connection:a"); n != 6 {
		t.Errorf("HighestSeq(a) after appending 6 = %d, want 6", n)
	}

	s = h.Reopen(t)
	equalEvents(t, "a after reopen", replay(t, s, "connection:a", 1), []persistence.Event{next})
	equalEvents(t, "b after reopen", replay(t, s, "connection:b", 1), b)
}

// testPruneDeleted is the delete of a connection: after the deleted event
// and the deleted snapshot, Prune leaves no document holding the secret.
func testPruneDeleted(t *testing.T, h *Harness) {
	s := h.Store
	const secret = "pruned-pass-7f3a"
	pid := "connection:gone"
	created := event(pid, 1)
	created.Payload = json.RawMessage(`{"type":"connectivity.events:connectionCreated","connection":{"id":"gone","uri":"tcp://user:` + secret + `@host:1883"},"__hh":{}}`)
	modified := event(pid, 2)
	modified.Payload = created.Payload
	deleted := event(pid, 3)
	deleted.Manifest, deleted.Tags = "connectivity.events:connectionDeleted", nil
	deleted.Payload = json.RawMessage(`{"type":"connectivity.events:connectionDeleted","connectionId":"gone","__hh":{}}`)
	mustAppend(t, s, created, modified)
	mustSave(t, s, persistence.Snapshot{PID: pid, Seq: 2, Timestamp: 5, Payload: json.RawMessage(`{"__lifecycle":"ACTIVE","id":"gone","uri":"tcp://user:` + secret + `@host:1883"}`)})
	mustAppend(t, s, deleted)
	tombstone := persistence.Snapshot{PID: pid, Seq: 3, Timestamp: 6, Payload: json.RawMessage(`{"__lifecycle":"DELETED"}`)}
	mustSave(t, s, tombstone)
	if err := s.Prune(ctxT(t), pid, 3); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	for _, c := range []string{document.JournalCollection, document.SnapshotCollection, document.MetadataCollection} {
		for _, raw := range h.Raw(t, c) {
			if bytes.Contains(raw, []byte(secret)) {
				t.Errorf("%s still holds the secret: %s", c, raw)
			}
		}
	}
	if got := latest(t, s, pid); !reflect.DeepEqual(got, tombstone) {
		t.Errorf("latest snapshot = %+v, want the deleted one", got)
	}
	if n := highest(t, s, pid); n != 3 {
		t.Errorf("HighestSeq = %d, want 3", n)
	}
	// A re-create continues after the deleted event.
	again := event(pid, 4)
	mustAppend(t, s, again)
	equalEvents(t, "after re-create", replay(t, s, pid, 4), []persistence.Event{again})
}

// testCleanupScan: the cleanup's reads. SnapshotsBefore lists, in pid
// order above afterPID, each pid's newest snapshot older than before (by
// ts), at most limit pids; LowestSeqs follows what Prune removes.
func testCleanupScan(t *testing.T, h *Harness) {
	s := h.Store
	mustSave(t, s,
		snapshot("connection:a", 10, 100, "a10"), snapshot("connection:a", 20, 200, "a20"), snapshot("connection:a", 30, 300, "a30"),
		snapshot("connection:ab", 5, 50, "ab5"),
		snapshot("connection:b", 7, 500, "b7 (too young)"),
		snapshot("connection:c", 3, 10, "c3"), snapshot("connection:c", 3, 20, "c3 later"),
		snapshot("other:z", 1, 1, "other prefix"),
	)
	type row struct {
		PID     string
		Seq, TS int64
	}
	list := func(prefix, after string, before int64, limit int) []row {
		t.Helper()
		var got []row
		if err := s.SnapshotsBefore(ctxT(t), prefix, after, before, limit, func(sn persistence.Snapshot) error {
			got = append(got, row{sn.PID, sn.Seq, sn.Timestamp})
			return nil
		}); err != nil {
			t.Fatalf("SnapshotsBefore(%q, %q, %d, %d): %v", prefix, after, before, limit, err)
		}
		return got
	}
	for _, tc := range []struct {
		prefix, after string
		before        int64
		limit         int
		want          []row
	}{
		{"connection:", "", 250, 0, []row{{"connection:a", 20, 200}, {"connection:ab", 5, 50}, {"connection:c", 3, 20}}},
		{"connection:", "", 1000, 0, []row{{"connection:a", 30, 300}, {"connection:ab", 5, 50}, {"connection:b", 7, 500}, {"connection:c", 3, 20}}},
		{"connection:", "", 250, 2, []row{{"connection:a", 20, 200}, {"connection:ab", 5, 50}}},
		{"connection:", "connection:ab", 250, 2, []row{{"connection:c", 3, 20}}},
		{"connection:", "connection:a", 101, 0, []row{{"connection:ab", 5, 50}, {"connection:c", 3, 20}}},
		{"connection:", "connection:c", 1000, 0, nil},
		{"connection:", "", 10, 0, nil}, // strictly older
		{"", "", 2, 0, []row{{"other:z", 1, 1}}},
	} {
		if got := list(tc.prefix, tc.after, tc.before, tc.limit); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("SnapshotsBefore(%q, %q, %d, %d) =\n %+v\nwant\n %+v", tc.prefix, tc.after, tc.before, tc.limit, got, tc.want)
		}
	}
	stop := errors.New("stop")
	if err := s.SnapshotsBefore(ctxT(t), "", "", 1000, 0, func(persistence.Snapshot) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("SnapshotsBefore with failing fn = %v, want stop", err)
	}

	lowest := func(pid string) [2]int64 {
		t.Helper()
		ev, sn, err := s.LowestSeqs(ctxT(t), pid)
		if err != nil {
			t.Fatalf("LowestSeqs(%s): %v", pid, err)
		}
		return [2]int64{ev, sn}
	}
	if got := lowest("connection:none"); got != [2]int64{} {
		t.Errorf("LowestSeqs of an unknown pid = %v, want [0 0]", got)
	}
	for seq := int64(1); seq <= 30; seq++ {
		mustAppend(t, s, event("connection:a", seq))
	}
	if got := lowest("connection:a"); got != [2]int64{1, 10} {
		t.Errorf("LowestSeqs(a) = %v, want [1 10]", got)
	}
	if err := s.Prune(ctxT(t), "connection:a", 19); err != nil {
		t.Fatal(err)
	}
	if got := lowest("connection:a"); got != [2]int64{20, 20} {
		t.Errorf("LowestSeqs(a) after Prune(19) = %v, want [20 20]", got)
	}
	if got := lowest("connection:b"); got != [2]int64{0, 7} {
		t.Errorf("LowestSeqs(b) = %v, want [0 7]", got)
	}
}

// testCleanup: the background cleanup on the engine (Ditto's semantics):
// below the newest snapshot older than the retention, the events and the
// older snapshots go; the event at the snapshot's sequence number, the
// events after it and the younger snapshots stay, and recovery is whole.
func testCleanup(t *testing.T, h *Harness) {
	s := h.Store
	now := time.Now()
	old, young := now.Add(-31*24*time.Hour).UnixMilli(), now.Add(-time.Hour).UnixMilli()
	var evs []persistence.Event
	for seq := int64(1); seq <= 45; seq++ {
		evs = append(evs, event("connection:a", seq))
	}
	mustAppend(t, s, evs...)
	mustAppend(t, s, event("connection:b", 1), event("connection:b", 2))
	mustSave(t, s, snapshot("connection:a", 10, old, "a10"), snapshot("connection:a", 20, old, "a20"),
		snapshot("connection:a", 30, old, "a30"), snapshot("connection:a", 40, young, "a40"),
		snapshot("connection:b", 2, young, "b2"))
	cfg := cleanup.Defaults()
	cfg.QuietPeriod, cfg.Interval, cfg.CreditsPerBatch, cfg.WritesPerCredit = 0, time.Millisecond, 100, 8
	c := cleanup.New(cfg, s, zerolog.Nop())
	st, _, err := c.RunOnce(ctxT(t), "")
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	// events 1..29 in batches of 8: up to 8, 16, 24, 29
	if st != (cleanup.Stats{PIDs: 1, Deletes: 4}) {
		t.Errorf("stats %+v, want 1 pid, 4 deletes", st)
	}
	equalEvents(t, "a after the cleanup", replay(t, s, "connection:a", 1), evs[29:])
	if got := snapSeqs(t, h, "connection:a"); !reflect.DeepEqual(got, []int64{30, 40}) {
		t.Errorf("snapshots of a after the cleanup: %v, want [30 40]", got)
	}
	if got, want := latest(t, s, "connection:a"), snapshot("connection:a", 40, young, "a40"); !reflect.DeepEqual(got, want) {
		t.Errorf("latest snapshot of a = %+v", got)
	}
	if n := highest(t, s, "connection:a"); n != 45 {
		t.Errorf("HighestSeq(a) = %d, want 45", n)
	}
	if got := latestEvents(t, s, "connection:a"); len(got) != 1 || got[0].Seq != 45 {
		t.Errorf("LatestEvents(a) = %+v", got)
	}
	equalEvents(t, "b (snapshot too young)", replay(t, s, "connection:b", 1), []persistence.Event{event("connection:b", 1), event("connection:b", 2)})
	if st, _, err := c.RunOnce(ctxT(t), ""); err != nil || st != (cleanup.Stats{}) {
		t.Errorf("second run: %+v, %v; want nothing to do", st, err)
	}
}
