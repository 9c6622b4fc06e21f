package document

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// golden compares got with testdata/name (pretty canonical extended JSON, so a
// reviewer sees key order and BSON types).
func golden(t *testing.T, name string, raw bson.Raw) {
	t.Helper()
	got, err := bson.MarshalExtJSONIndent(raw, true, false, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n got %s\nwant %s", name, got, want)
	}
}

var testID = mustID("66c4a0f1e3b1c2d3e4f50617")

func mustID(hex string) bson.ObjectID {
	id, err := bson.ObjectIDFromHex(hex)
	if err != nil {
		panic(err)
	}
	return id
}

func createdEvent(t *testing.T) persistence.Event {
	return persistence.Event{
		PID:      "connection:mqtt-example-1",
		Seq:      1,
		Manifest: "connectivity.events:connectionCreated",
		Tags:     []string{"prod", "always-alive", "priority-0", "prod"},
		Writer:   "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9",
		Payload:  readPayload(t),
	}
}

func TestJournalGolden(t *testing.T) {
	raw, err := Journal(testID, createdEvent(t))
	if err != nil {
		t.Fatalf("Journal: %v", err)
	}
	golden(t, "journal_connection_created.golden.json", raw)
}

func TestJournalLayout(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tags      []string
		top, inEv []string
	}{
		{"with tags", []string{"a"}, []string{"_id", "pid", "from", "to", "events", "v", "_tg"},
			[]string{"v", "pid", "sn", "_t", "p", "_tg", "manifest", "_w"}},
		{"without tags", nil, []string{"_id", "pid", "from", "to", "events", "v"},
			[]string{"v", "pid", "sn", "_t", "p", "manifest", "_w"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := persistence.Event{PID: "connection:x", Seq: 7, Manifest: "m", Tags: tc.tags, Writer: "w", Payload: json.RawMessage(`{"type":"t"}`)}
			raw, err := Journal(testID, ev)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(t, raw); !reflect.DeepEqual(got, tc.top) {
				t.Errorf("top keys %v, want %v", got, tc.top)
			}
			evDoc := raw.Lookup("events").Array().Index(0).Document()
			if got := keys(t, evDoc); !reflect.DeepEqual(got, tc.inEv) {
				t.Errorf("event keys %v, want %v", got, tc.inEv)
			}
			types := map[string]bson.Type{"_id": bson.TypeObjectID, "pid": bson.TypeString, "from": bson.TypeInt64, "to": bson.TypeInt64, "events": bson.TypeArray, "v": bson.TypeInt32}
			for k, want := range types {
				if got := raw.Lookup(k).Type; got != want {
					t.Errorf("%s: type %v, want %v", k, got, want)
				}
			}
			evTypes := map[string]bson.Type{"v": bson.TypeInt32, "pid": bson.TypeString, "sn": bson.TypeInt64, "_t": bson.TypeString, "p": bson.TypeEmbeddedDocument, "manifest": bson.TypeString, "_w": bson.TypeString}
			for k, want := range evTypes {
				if got := evDoc.Lookup(k).Type; got != want {
					t.Errorf("events.0.%s: type %v, want %v", k, got, want)
				}
			}
		})
	}
}

func keys(t *testing.T, raw bson.Raw) []string {
	t.Helper()
	elems, err := raw.Elements()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = e.Key()
	}
	return out
}

func TestJournalRoundTrip(t *testing.T) {
	ev := createdEvent(t)
	raw, err := Journal(testID, ev)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeJournal(raw)
	if err != nil {
		t.Fatalf("DecodeJournal: %v", err)
	}
	ev.Tags = []string{"prod", "always-alive", "priority-0"} // duplicates dropped, as the plugin's tag set does
	if len(got) != 1 || !reflect.DeepEqual(got[0], ev) {
		t.Fatalf("DecodeJournal = %+v, want %+v", got, ev)
	}
	head, err := DecodeJournalHead(raw)
	if err != nil {
		t.Fatal(err)
	}
	ev.Payload = nil
	if !reflect.DeepEqual(head, ev) {
		t.Errorf("DecodeJournalHead = %+v, want %+v", head, ev)
	}
}

// A journal document as Ditto writes it (the spec's example, in full) reads
// back into the event, and rebuilding it yields the very same bytes: what we
// write is what Ditto writes.
func TestDittoJournalDocument(t *testing.T) {
	ext, err := os.ReadFile("testdata/ditto_journal.json")
	if err != nil {
		t.Fatal(err)
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON(ext, false, &raw); err != nil {
		t.Fatalf("UnmarshalExtJSON: %v", err)
	}
	evs, err := DecodeJournal(raw)
	if err != nil {
		t.Fatalf("DecodeJournal: %v", err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.PID != "connection:mqtt-example-1" || ev.Seq != 1 || ev.Manifest != "connectivity.events:connectionCreated" ||
		ev.Writer != "0f3c2b1a-9d8e-4f7a-b6c5-d4e3f2a1b0c9" || !reflect.DeepEqual(ev.Tags, []string{"prod", "always-alive", "priority-0"}) {
		t.Errorf("event header = %+v", ev)
	}
	if want := readPayload(t); !bytes.Equal(ev.Payload, want) {
		t.Errorf("payload:\n got %s\nwant %s", ev.Payload, want)
	}
	again, err := Journal(raw.Lookup("_id").ObjectID(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, raw) {
		t.Errorf("rebuilt document differs:\n got %s\nwant %s", canonical(t, again), canonical(t, raw))
	}
}

func TestJournalErrors(t *testing.T) {
	ok := persistence.Event{PID: "connection:x", Seq: 1, Payload: json.RawMessage(`{}`)}
	for name, mod := range map[string]func(*persistence.Event){
		"empty pid":   func(e *persistence.Event) { e.PID = "" },
		"NUL in pid":  func(e *persistence.Event) { e.PID = "connection:a\x00b" },
		"seq 0":       func(e *persistence.Event) { e.Seq = 0 },
		"payload":     func(e *persistence.Event) { e.Payload = json.RawMessage(`[]`) },
		"no payload":  func(e *persistence.Event) { e.Payload = nil },
		"bad payload": func(e *persistence.Event) { e.Payload = json.RawMessage(`{"a"}`) },
	} {
		t.Run(name, func(t *testing.T) {
			ev := ok
			mod(&ev)
			if _, err := Journal(testID, ev); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Journal = %v, want ErrMalformed", err)
			}
		})
	}
	for name, doc := range map[string]bson.D{
		"legacy":     {{Key: "pid", Value: "connection:x"}, {Key: "sn", Value: int64(1)}, {Key: "pr", Value: []byte{1}}},
		"no sn":      {{Key: "pid", Value: "connection:x"}, {Key: "events", Value: bson.A{bson.D{{Key: "v", Value: int32(1)}}}}},
		"other hint": {{Key: "pid", Value: "connection:x"}, {Key: "events", Value: bson.A{bson.D{{Key: "sn", Value: int64(1)}, {Key: "_t", Value: "repr"}, {Key: "p", Value: []byte{1}}}}}},
	} {
		t.Run("decode "+name, func(t *testing.T) {
			raw, err := bson.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := DecodeJournal(raw); !errors.Is(err, ErrMalformed) {
				t.Fatalf("DecodeJournal = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestSnapshotGolden(t *testing.T) {
	payload := readPayload(t)
	var ev struct{ Connection json.RawMessage }
	if err := json.Unmarshal(payload, &ev); err != nil {
		t.Fatal(err)
	}
	s := persistence.Snapshot{PID: "connection:mqtt-example-1", Seq: 10, Timestamp: 1787220000123, Payload: ev.Connection}
	raw, err := Snapshot(testID, s)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	golden(t, "snapshot.golden.json", raw)
	got, err := DecodeSnapshot(raw)
	if err != nil {
		t.Fatalf("DecodeSnapshot: %v", err)
	}
	if !reflect.DeepEqual(got, s) {
		t.Errorf("DecodeSnapshot = %+v, want %+v", got, s)
	}

	noID, err := Snapshot(bson.ObjectID{}, s)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := keys(t, noID), []string{"pid", "sn", "ts", "s2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("keys without id: %v, want %v", got, want)
	}
}

func TestSnapshotErrors(t *testing.T) {
	if _, err := Snapshot(testID, persistence.Snapshot{PID: "connection:x", Seq: -1, Payload: json.RawMessage(`{}`)}); !errors.Is(err, ErrMalformed) {
		t.Errorf("negative seq: %v", err)
	}
	raw, _ := bson.Marshal(bson.D{{Key: "pid", Value: "connection:x"}, {Key: "sn", Value: int64(1)}, {Key: "ss", Value: []byte{1}}})
	if _, err := DecodeSnapshot(raw); !errors.Is(err, ErrMalformed) {
		t.Errorf("legacy ss: %v", err)
	}
}

func TestMetadata(t *testing.T) {
	raw := Metadata("connection:x", 42)
	if got, want := canonical(t, raw), `{"pid":"connection:x","max_sn":{"$numberLong":"42"}}`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if n, err := DecodeMetadata(raw); err != nil || n != 42 {
		t.Errorf("DecodeMetadata = %d, %v", n, err)
	}
}

func TestCollections(t *testing.T) {
	names := map[string][]string{}
	for _, c := range Collections() {
		for _, ix := range c.Indexes {
			names[c.Name] = append(names[c.Name], ix.Name)
		}
	}
	want := map[string][]string{
		"connection_journal":  {"connection_journal_index", "max_sequence_sort", "journal_tag_index", "ditto_tag_pid"},
		"connection_snaps":    {"connection_snaps_index", "snaps_pid_sn_id_index"},
		"connection_metadata": {"connection_metadata_index"},
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("indexes %v, want %v", names, want)
	}
	// Mutating one result must not leak into the next.
	Collections()[0].Indexes[0].Name = "x"
	if Collections()[0].Indexes[0].Name != "connection_journal_index" {
		t.Error("Collections shares state between calls")
	}
}

func BenchmarkJournal(b *testing.B) {
	ev := persistence.Event{PID: "connection:mqtt-example-1", Seq: 1, Manifest: "connectivity.events:connectionCreated",
		Tags: []string{"prod", "always-alive", "priority-0"}, Writer: "w", Payload: readPayload(b)}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Journal(testID, ev); err != nil {
			b.Fatal(err)
		}
	}
}
