package document

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
)

func TestHasPath(t *testing.T) {
	doc, _ := bson.Marshal(bson.D{
		{Key: "a", Value: bson.D{{Key: "b", Value: nil}}},
		{Key: "arr", Value: bson.A{bson.D{{Key: "x", Value: 1}}, bson.D{{Key: "y", Value: bson.D{{Key: "z", Value: "s"}}}}}},
		{Key: "s", Value: "str"},
	})
	for path, want := range map[string]bool{
		"a": true, "a.b": true, "a.c": false, "arr.x": true, "arr.y.z": true, "arr.y.q": false,
		"arr.0.x": true, "arr.1": true, "s.x": false, "nope": false,
	} {
		if got := HasPath(doc, path); got != want {
			t.Errorf("HasPath(%q) = %v, want %v", path, got, want)
		}
	}
}

func TestRewriteJournal(t *testing.T) {
	id := bson.NewObjectID()
	doc, err := Journal(id, persistence.Event{PID: "connection:x", Seq: 3, Manifest: "m", Tags: []string{"t"}, Writer: "w",
		Payload: json.RawMessage(`{"type":"x","connection":{"uri":"a"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	out, changed, err := RewriteJournal(doc, func(p json.RawMessage) (json.RawMessage, bool, error) {
		return json.RawMessage(strings.Replace(string(p), `"a"`, `"b"`, 1)), true, nil
	})
	if err != nil || !changed {
		t.Fatalf("RewriteJournal: %v %v", changed, err)
	}
	evs, err := DecodeJournal(out)
	if err != nil || len(evs) != 1 || string(evs[0].Payload) != `{"type":"x","connection":{"uri":"b"}}` || evs[0].Seq != 3 || evs[0].Writer != "w" || evs[0].Tags[0] != "t" {
		t.Fatalf("rewritten = %+v, %v", evs, err)
	}
	if got, _ := IDString(out); got != id.Hex() {
		t.Errorf("_id %s, want %s", got, id.Hex())
	}
	if len(out) != len(doc) {
		t.Errorf("length %d, want %d (same layout)", len(out), len(doc))
	}
	same, changed, err := RewriteJournal(doc, func(p json.RawMessage) (json.RawMessage, bool, error) { return p, false, nil })
	if err != nil || changed || string(same) != string(doc) {
		t.Errorf("unchanged rewrite: %v %v", changed, err)
	}
	empty, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "events", Value: bson.A{}}})
	if _, _, err := RewriteJournal(empty, nil); !errors.Is(err, ErrNothingToRewrite) {
		t.Errorf("empty events: %v", err)
	}
	noS2, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "pid", Value: "connection:x"}})
	if _, _, err := RewriteSnapshot(noS2, nil); !errors.Is(err, ErrNothingToRewrite) {
		t.Errorf("snapshot without s2: %v", err)
	}
	binS2, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "s2", Value: bson.Binary{Data: []byte{1}}}})
	if _, _, err := RewriteSnapshot(binS2, nil); err == nil || errors.Is(err, ErrNothingToRewrite) {
		t.Errorf("binary s2: %v", err)
	}
}

func TestProgressRoundTrip(t *testing.T) {
	p := persistence.MigrationProgress{Phase: "journal", LastSnapshotID: "a", SnapshotsProcessed: 1, JournalFailed: 2, StartedAt: "s", UpdatedAt: "u"}
	got, err := DecodeProgress(Progress(p))
	if err != nil || got != p {
		t.Errorf("round trip = %+v, %v", got, err)
	}
	l := persistence.Lease{Owner: "o", ExpiresAt: 42}
	if got, err := DecodeLease(Lease(l)); err != nil || got != l {
		t.Errorf("lease round trip = %+v, %v", got, err)
	}
}
