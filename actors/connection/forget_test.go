package connection

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

const secretPW = "forget-me-5e6f"

func secretConn(status string) string {
	return withConnection(strings.Replace(connJSON("mqtt", status), "tcp://broker:1883", "tcp://user:"+secretPW+"@broker:1883", 1))
}

// stepStore records the delete's store steps and fails the ones asked to.
type stepStore struct {
	*bolt.Store
	mu                       sync.Mutex
	steps                    []string
	failTombstone, failPrune bool
}

var errInjected = errors.New("injected failure")

func (s *stepStore) record(step string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.steps = append(s.steps, step)
}

func (s *stepStore) fail(flag *bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return *flag
}

func (s *stepStore) Append(ctx context.Context, ev persistence.Event) error {
	s.record(fmt.Sprintf("append %d %s", ev.Seq, ev.Manifest))
	return s.Store.Append(ctx, ev)
}

func (s *stepStore) SaveSnapshot(ctx context.Context, snap persistence.Snapshot) error {
	deleted := bytes.Equal(snap.Payload, deletedSnapshot)
	if deleted && s.fail(&s.failTombstone) {
		s.record(fmt.Sprintf("tombstone %d failed", snap.Seq))
		return errInjected
	}
	if deleted {
		s.record(fmt.Sprintf("tombstone %d", snap.Seq))
	} else {
		s.record(fmt.Sprintf("snapshot %d", snap.Seq))
	}
	return s.Store.SaveSnapshot(ctx, snap)
}

func (s *stepStore) Prune(ctx context.Context, pid string, toSeq int64) error {
	// The order under test: a prune never runs before the deleted state is
	// a snapshot at its sequence number.
	if snap, err := s.Store.LatestSnapshot(ctx, pid); err != nil || snap.Seq < toSeq || !bytes.Equal(snap.Payload, deletedSnapshot) {
		s.record(fmt.Sprintf("prune %d BEFORE THE TOMBSTONE", toSeq))
	}
	if s.fail(&s.failPrune) {
		s.record(fmt.Sprintf("prune %d failed", toSeq))
		return errInjected
	}
	s.record(fmt.Sprintf("prune %d", toSeq))
	return s.Store.Prune(ctx, pid, toSeq)
}

func (s *stepStore) take() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := strings.Join(s.steps, ", ")
	s.steps = nil
	return out
}

// storeWithSecret reports whether the store's documents or its file hold
// the connection's password.
func storeWithSecret(t *testing.T, s *bolt.Store, dir string) []string {
	t.Helper()
	var where []string
	for _, c := range []string{document.JournalCollection, document.SnapshotCollection} {
		if err := s.ForEachRaw(c, func(doc bson.Raw) error {
			if bytes.Contains(doc, []byte(secretPW)) {
				where = append(where, c)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, bolt.FileName))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(b, []byte(secretPW)) {
		where = append(where, "file")
	}
	return where
}

func newForgetHarness(t *testing.T) (*grainHarness, *stepStore, string) {
	h := newGrainHarness(t)
	dir := t.TempDir()
	inner, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = inner.Close(context.Background()) })
	st := &stepStore{Store: inner}
	h.cfg.Store = st
	return h, st, dir
}

// Deleting a connection removes its password from the store (documents and
// file bytes); the id can be created again and continues after the delete.
func TestGrainDeleteRemovesSecrets(t *testing.T) {
	h, st, dir := newForgetHarness(t)
	g := h.spawn(testID)
	h.ask(g, ditto.CreateConnection, secretConn("closed"), nil)
	h.ask(g, ditto.ModifyConnection, secretConn("closed"), nil)
	h.ask(g, ditto.ModifyConnection, secretConn("closed"), nil) // revision 3: snapshot
	h.ask(g, ditto.ModifyConnection, secretConn("closed"), nil)
	if len(storeWithSecret(t, st.Store, dir)) == 0 {
		t.Fatal("the password is not in the store before the delete: the test proves nothing")
	}
	st.take()
	if r := h.ask(g, ditto.DeleteConnection, "", nil); r.Status != 204 || r.Headers[ditto.HeaderEntityRevision] != "5" {
		t.Fatalf("delete: %d %v", r.Status, r.Headers)
	}
	// The grain removes the history after answering; the next command's
	// answer comes after that.
	if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 {
		t.Fatalf("retrieve after delete: %d %s", r.Status, r.Payload)
	}
	if got, want := st.take(), "append 5 connectivity.events:connectionDeleted, tombstone 5, prune 5"; got != want {
		t.Errorf("store steps %q, want %q", got, want)
	}
	// The file's freed pages are scrubbed shortly after (the engine's
	// compaction); the documents are gone at once.
	if where := storeWithSecret(t, st.Store, dir); len(where) > 1 || (len(where) == 1 && where[0] != "file") {
		t.Errorf("the password is still in %v after the delete", where)
	}
	poll.Until(t, 5*time.Second, "the password leaves the store file", func() bool { return len(storeWithSecret(t, st.Store, dir)) == 0 })
	_ = h.sys.Root.StopFuture(g).Wait()

	g = h.spawn(testID)
	if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 || field(t, r, "error") != ditto.CodeConnectionNotFound {
		t.Fatalf("retrieve after recovery: %d %s", r.Status, r.Payload)
	}
	if r := h.ask(g, ditto.CreateConnection, secretConn("closed"), nil); r.Status != 201 || r.Headers[ditto.HeaderEntityRevision] != "6" {
		t.Fatalf("re-create: %d %v", r.Status, r.Headers)
	}
	_ = h.sys.Root.StopFuture(g).Wait()
	g = h.spawn(testID)
	if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 200 || r.Headers[ditto.HeaderEntityRevision] != "6" {
		t.Fatalf("retrieve of the re-created connection: %d %v %s", r.Status, r.Headers, r.Payload)
	}
}

// A delete whose later steps fail (as a crash between them would leave it)
// stays a delete, and the next activation finishes the removal.
func TestGrainDeleteStepsFailSafely(t *testing.T) {
	for _, tc := range []struct {
		name  string
		set   func(*stepStore, bool)
		steps string // of the delete, with the failure
		again string // of the next activation, without it
	}{
		{"tombstone", func(s *stepStore, v bool) { s.failTombstone = v },
			"append 2 connectivity.events:connectionDeleted, tombstone 2 failed", "tombstone 2, prune 2"},
		{"prune", func(s *stepStore, v bool) { s.failPrune = v },
			"append 2 connectivity.events:connectionDeleted, tombstone 2, prune 2 failed", "prune 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, st, dir := newForgetHarness(t)
			g := h.spawn(testID)
			h.ask(g, ditto.CreateConnection, secretConn("closed"), nil)
			st.mu.Lock()
			tc.set(st, true)
			st.mu.Unlock()
			st.take()
			if r := h.ask(g, ditto.DeleteConnection, "", nil); r.Status != 204 {
				t.Fatalf("delete: %d %s", r.Status, r.Payload)
			}
			if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 { // after the removal's steps
				t.Fatalf("retrieve after delete: %d %s", r.Status, r.Payload)
			}
			_ = h.sys.Root.StopFuture(g).Wait()
			if got := st.take(); got != tc.steps {
				t.Errorf("delete's steps %q, want %q", got, tc.steps)
			}
			if len(storeWithSecret(t, st.Store, dir)) == 0 {
				t.Error("the password is gone although the removal failed: the test proves nothing")
			}

			// Still failing: the connection stays deleted.
			g = h.spawn(testID)
			if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 {
				t.Fatalf("retrieve with the step failing: %d %s", r.Status, r.Payload)
			}
			_ = h.sys.Root.StopFuture(g).Wait()
			st.mu.Lock()
			tc.set(st, false)
			st.mu.Unlock()
			st.take()

			g = h.spawn(testID)
			if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 {
				t.Fatalf("retrieve after recovery: %d %s", r.Status, r.Payload)
			}
			if got := st.take(); got != tc.again {
				t.Errorf("steps of the next activation %q, want %q", got, tc.again)
			}
			poll.Until(t, 5*time.Second, "the password leaves the store", func() bool { return len(storeWithSecret(t, st.Store, dir)) == 0 })
			if r := h.ask(g, ditto.CreateConnection, secretConn("closed"), nil); r.Status != 201 || r.Headers[ditto.HeaderEntityRevision] != "3" {
				t.Fatalf("re-create: %d %v", r.Status, r.Headers)
			}
		})
	}
}
