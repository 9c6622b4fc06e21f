package encryptedstore

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// Keys: the spec's worked-example key (Ditto's public test key) and a second one.
const (
	keyA = "vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU="
	keyB = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
)

// The spec's worked example (§2.6), fixed IVs.
const (
	specURI    = "tcp://user:encrypted_AAECAwQFBgcICQoLh8AJa947tfZCb9ebKKULN4ljSUc8OaqXmKrAo9U=@broker.example.com:1883"
	specSecret = "encrypted_DA0ODxAREhMUFRYXfGi8eb_yyMo8clICmdsbxPqiTxFnXbhj0HHTgIRFLIcrSenh"
)

const (
	password     = "passwordValue"
	clientSecret = "s3cr3t-client-secret"
)

func connectionJSON(id string) string {
	return `{"__lifecycle":"ACTIVE","id":"` + id + `","connectionType":"mqtt","connectionStatus":"open",` +
		`"uri":"tcp://user:` + password + `@broker.example.com:1883",` +
		`"credentials":{"type":"oauth-client-credentials","clientSecret":"` + clientSecret + `"},"_revision":1}`
}

func eventJSON(id string) string {
	return `{"type":"connectivity.events:connectionCreated","revision":1,"connectionId":"` + id + `","connection":` + connectionJSON(id) + `,"__hh":{}}`
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openBolt(t *testing.T) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func wrap(t *testing.T, inner persistence.Store, s fieldcrypto.Settings) *Store {
	t.Helper()
	if err := s.Validate(); err != nil {
		t.Fatalf("settings: %v", err)
	}
	st, err := New(inner, s, zerolog.New(zerolog.NewTestWriter(t)))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func settings(enabled bool, key, old string) fieldcrypto.Settings {
	s := fieldcrypto.DefaultSettings()
	s.Enabled, s.Key, s.OldKey = enabled, key, old
	return s
}

func raws(t *testing.T, s *bolt.Store, collection string) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	if err := s.ForEachRaw(collection, func(d bson.Raw) error { out = append(out, d); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// independentDecrypt decrypts one value with the standard library only,
// following the spec's layout: "encrypted_" + base64url(IV(12) || ct || tag(16)).
func independentDecrypt(t *testing.T, key, v string) string {
	t.Helper()
	k, err := base64.URLEncoding.DecodeString(key)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := strings.CutPrefix(v, "encrypted_")
	if !ok {
		t.Fatalf("value has no prefix")
	}
	raw, err := base64.URLEncoding.DecodeString(body)
	if err != nil {
		t.Fatalf("not padded base64url: %v", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		t.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := gcm.Open(nil, raw[:12], raw[12:], nil)
	if err != nil {
		t.Fatalf("independent decryption failed: %v", err)
	}
	return string(pt)
}

// uriPassword cuts the password out of scheme://user:password@host.
func uriPassword(t *testing.T, uri string) string {
	t.Helper()
	_, rest, _ := strings.Cut(uri, "://user:")
	pw, _, ok := strings.Cut(rest, "@")
	if !ok {
		t.Fatalf("no password in uri")
	}
	return pw
}

func TestWritesEncryptedReadsPlain(t *testing.T) {
	engine := openBolt(t)
	s := wrap(t, engine, settings(true, keyA, ""))
	pid := "connection:c1"
	if err := s.Append(ctxT(t), persistence.Event{PID: pid, Seq: 1, Manifest: "connectivity.events:connectionCreated", Payload: json.RawMessage(eventJSON("c1"))}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(connectionJSON("c1"))}); err != nil {
		t.Fatal(err)
	}
	// At rest: no secret in clear; values decrypt with an independent implementation.
	for _, coll := range []string{document.JournalCollection, document.SnapshotCollection} {
		for _, d := range raws(t, engine, coll) {
			if strings.Contains(string(d), password) || strings.Contains(string(d), clientSecret) {
				t.Errorf("%s holds a secret in clear", coll)
			}
			conn := d.Lookup("s2")
			if coll == document.JournalCollection {
				conn = d.Lookup("events").Array().Index(0).Document().Lookup("p", "connection")
			}
			uri := conn.Document().Lookup("uri").StringValue()
			if got := independentDecrypt(t, keyA, uriPassword(t, uri)); got != password {
				t.Errorf("%s uri password decrypts to %q", coll, got)
			}
			cs := conn.Document().Lookup("credentials", "clientSecret").StringValue()
			if got := independentDecrypt(t, keyA, cs); got != clientSecret {
				t.Errorf("%s clientSecret decrypts to %q", coll, got)
			}
		}
	}
	// Through the decorator: plaintext, byte for byte.
	snap, err := s.LatestSnapshot(ctxT(t), pid)
	if err != nil || string(snap.Payload) != connectionJSON("c1") {
		t.Errorf("LatestSnapshot = %s, %v", snap.Payload, err)
	}
	var got []string
	if err := s.Replay(ctxT(t), pid, 1, func(ev persistence.Event) error { got = append(got, string(ev.Payload)); return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != eventJSON("c1") {
		t.Errorf("Replay = %v", got)
	}
}

// TestSpecWorkedExample: the spec's stored values (fixed IVs) decrypt to the
// plaintext through the decorator, from a snapshot and a journal event
// stored as Ditto stores them.
func TestSpecWorkedExample(t *testing.T) {
	engine := openBolt(t)
	s := wrap(t, engine, settings(true, keyA, ""))
	stored := `{"__lifecycle":"ACTIVE","id":"mqtt-example-1","connectionType":"mqtt","connectionStatus":"open","uri":"` + specURI +
		`","credentials":{"type":"oauth-client-credentials","clientSecret":"` + specSecret + `"}}`
	want := `{"__lifecycle":"ACTIVE","id":"mqtt-example-1","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://user:passwordValue@broker.example.com:1883",` +
		`"credentials":{"type":"oauth-client-credentials","clientSecret":"s3cr3t-client-secret"}}`
	pid := "connection:mqtt-example-1"
	// Written by the engine directly, i.e. as stored by Ditto.
	if err := engine.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(stored)}); err != nil {
		t.Fatal(err)
	}
	ev := `{"type":"connectivity.events:connectionCreated","revision":1,"connectionId":"mqtt-example-1","connection":` + stored + `,"__hh":{}}`
	if err := engine.Append(ctxT(t), persistence.Event{PID: pid, Seq: 1, Payload: json.RawMessage(ev)}); err != nil {
		t.Fatal(err)
	}
	snap, err := s.LatestSnapshot(ctxT(t), pid)
	if err != nil || string(snap.Payload) != want {
		t.Errorf("snapshot:\n got %s (%v)\nwant %s", snap.Payload, err, want)
	}
	wantEv := `{"type":"connectivity.events:connectionCreated","revision":1,"connectionId":"mqtt-example-1","connection":` + want + `,"__hh":{}}`
	_ = s.Replay(ctxT(t), pid, 1, func(e persistence.Event) error {
		if string(e.Payload) != wantEv {
			t.Errorf("event:\n got %s\nwant %s", e.Payload, wantEv)
		}
		return nil
	})
	// And the independent implementation agrees with the spec's values.
	if got := independentDecrypt(t, keyA, uriPassword(t, specURI)); got != password {
		t.Errorf("independent: %q", got)
	}
	if got := independentDecrypt(t, keyA, specSecret); got != clientSecret {
		t.Errorf("independent: %q", got)
	}
}

// TestReadFallbacks: the old key is the fallback during a rotation; with
// only the old key (disable), journal events and snapshots are both
// decrypted (Ditto leaves snapshots encrypted then).
func TestReadFallbacks(t *testing.T) {
	engine := openBolt(t)
	underA := wrap(t, engine, settings(true, keyA, ""))
	pid := "connection:c1"
	if err := underA.Append(ctxT(t), persistence.Event{PID: pid, Seq: 1, Payload: json.RawMessage(eventJSON("c1"))}); err != nil {
		t.Fatal(err)
	}
	if err := underA.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(connectionJSON("c1"))}); err != nil {
		t.Fatal(err)
	}
	for name, st := range map[string]fieldcrypto.Settings{
		"rotation (B current, A old)": settings(true, keyB, keyA),
		"disable (only A old)":        settings(false, "", keyA),
		"disable with both keys":      settings(false, keyB, keyA),
	} {
		t.Run(name, func(t *testing.T) {
			s := wrap(t, engine, st)
			snap, err := s.LatestSnapshot(ctxT(t), pid)
			if err != nil || string(snap.Payload) != connectionJSON("c1") {
				t.Errorf("LatestSnapshot = %s, %v", snap.Payload, err)
			}
			n := 0
			_ = s.Replay(ctxT(t), pid, 1, func(ev persistence.Event) error {
				n++
				if string(ev.Payload) != eventJSON("c1") {
					t.Errorf("event = %s", ev.Payload)
				}
				return nil
			})
			if n != 1 {
				t.Errorf("%d events", n)
			}
		})
	}
	t.Run("disabled writes plaintext", func(t *testing.T) {
		s := wrap(t, engine, settings(false, "", keyA))
		if err := s.Append(ctxT(t), persistence.Event{PID: "connection:c2", Seq: 1, Payload: json.RawMessage(eventJSON("c2"))}); err != nil {
			t.Fatal(err)
		}
		found := false
		for _, d := range raws(t, engine, document.JournalCollection) {
			found = found || strings.Contains(string(d), password)
		}
		if !found {
			t.Error("with encryption off the event was not written in plaintext")
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		s := wrap(t, engine, settings(true, keyB, ""))
		if _, err := s.LatestSnapshot(ctxT(t), pid); !errors.Is(err, persistence.ErrNotFound) {
			t.Errorf("LatestSnapshot with the wrong key = %v, want ErrNotFound", err)
		} else if strings.Contains(err.Error(), "encrypted_") {
			t.Errorf("error quotes a value: %v", err)
		}
		var evs []persistence.Event
		_ = s.Replay(ctxT(t), pid, 1, func(ev persistence.Event) error { evs = append(evs, ev); return nil })
		if len(evs) != 1 || evs[0].Payload != nil || evs[0].Seq != 1 {
			t.Errorf("undecryptable event = %+v, want seq 1 without payload", evs)
		}
	})
}

func TestNoKeysPassThrough(t *testing.T) {
	engine := openBolt(t)
	s := wrap(t, engine, fieldcrypto.DefaultSettings())
	if err := s.Append(ctxT(t), persistence.Event{PID: "connection:c", Seq: 1, Payload: json.RawMessage(eventJSON("c"))}); err != nil {
		t.Fatal(err)
	}
	if d := raws(t, engine, document.JournalCollection); len(d) != 1 || !strings.Contains(string(d[0]), password) {
		t.Error("without encryption the event is not stored as given")
	}
	if s.Unwrap() != persistence.Store(engine) {
		t.Error("Unwrap")
	}
}

// Prune reaches the engine: a deleted connection's encrypted documents go,
// its deleted-state snapshot stays readable.
func TestPrunePassesThrough(t *testing.T) {
	engine := openBolt(t)
	s := wrap(t, engine, settings(true, keyA, ""))
	pid := "connection:p"
	if err := s.Append(ctxT(t), persistence.Event{PID: pid, Seq: 1, Manifest: "connectivity.events:connectionCreated", Payload: json.RawMessage(eventJSON("p"))}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctxT(t), persistence.Snapshot{PID: pid, Seq: 1, Timestamp: 1, Payload: json.RawMessage(connectionJSON("p"))}); err != nil {
		t.Fatal(err)
	}
	deleted := persistence.Snapshot{PID: pid, Seq: 2, Timestamp: 2, Payload: json.RawMessage(`{"__lifecycle":"DELETED"}`)}
	if err := s.Append(ctxT(t), persistence.Event{PID: pid, Seq: 2, Manifest: "connectivity.events:connectionDeleted", Payload: json.RawMessage(`{"type":"connectivity.events:connectionDeleted"}`)}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctxT(t), deleted); err != nil {
		t.Fatal(err)
	}
	if err := s.Prune(ctxT(t), pid, 2); err != nil {
		t.Fatal(err)
	}
	if n := len(raws(t, engine, document.JournalCollection)); n != 0 {
		t.Errorf("%d journal documents after the prune", n)
	}
	if snaps := raws(t, engine, document.SnapshotCollection); len(snaps) != 1 || snaps[0].Lookup("sn").Int64() != 2 {
		t.Errorf("snapshots after the prune: %v", snaps)
	}
	if got, err := s.LatestSnapshot(ctxT(t), pid); err != nil || string(got.Payload) != `{"__lifecycle":"DELETED"}` {
		t.Errorf("latest snapshot %s, %v", got.Payload, err)
	}
}
