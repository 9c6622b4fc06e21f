// Package bolt is the embedded engine of persistence: one bbolt file holding
// the same documents, byte for byte, that the mongo engine writes to MongoDB
// (see schema.go for the layout). bbolt serialises writers and batches
// concurrent appends into one fsync'ed commit; readers never wait, except
// for a compaction (compact.go), which rewrites the file after prunes and
// at open and holds every call back while it copies.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

// ErrDuplicateID: PutRaw was given a document whose _id another document of
// the collection has.
var ErrDuplicateID = errors.New("bolt: duplicate _id")

// DefaultLockTimeout bounds the wait for the file lock another process holds.
const DefaultLockTimeout = 10 * time.Second

// pageSize is how many documents a scan reads per read transaction; fn runs
// between transactions, so it may write to the store.
const pageSize = 256

// Store is the bbolt engine.
//
// mu guards the handle, not the data (bbolt serialises writers itself):
// every transaction holds it shared, and only a compaction, which replaces
// the file under the handle, holds it exclusively. So a compaction waits
// for running transactions and holds back new ones while it copies.
type Store struct {
	mu          sync.RWMutex
	db          *bbolt.DB
	path        string
	lockTimeout time.Duration
	log         zerolog.Logger

	scrubDelay time.Duration
	scrubWake  chan struct{} // buffered 1: wakes the scrubber
	scrubStop  chan struct{}
	scrubDone  chan struct{}
	stopOnce   sync.Once
}

var _ persistence.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithLockTimeout sets how long Open waits for the file lock (default
// DefaultLockTimeout).
func WithLockTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.lockTimeout = d
		}
	}
}

// WithLogger sets the logger of the store's maintenance (compactions);
// default: none.
func WithLogger(l zerolog.Logger) Option {
	return func(s *Store) { s.log = l }
}

// WithScrubDelay sets how long after a Prune the file is compacted (default
// DefaultScrubDelay); zero or less: within Prune.
func WithScrubDelay(d time.Duration) Option {
	return func(s *Store) { s.scrubDelay = max(d, 0) }
}

// Open opens (creating if needed) dir/FileName. A file that a crash left
// with pruned bytes in free pages, or whose free pages dominate, is
// compacted first (see compact.go).
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{lockTimeout: DefaultLockTimeout, log: zerolog.Nop(), scrubDelay: DefaultScrubDelay}
	for _, o := range opts {
		o(s)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("bolt: open: %w", err)
	}
	s.path = filepath.Join(dir, FileName)
	db, err := s.openLocked()
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return fmt.Errorf("bucket %s: %w", b, err)
			}
		}
		return nil
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("bolt: open %s: %w", s.path, err)
	}
	s.db = db
	// A copy a crash left behind is incomplete (the rename never happened):
	// the file at s.path is whole. Removed under the file lock.
	_ = os.Remove(s.compactPath())
	if err := s.compactAtOpen(); err != nil {
		_ = db.Close()
		return nil, err
	}
	s.scrubWake, s.scrubStop, s.scrubDone = make(chan struct{}, 1), make(chan struct{}), make(chan struct{})
	go s.scrubber()
	return s, nil
}

func (s *Store) options() *bbolt.Options {
	return &bbolt.Options{
		Timeout: s.lockTimeout,
		// As etcd does: the freelist is rebuilt on open instead of being
		// written on every commit, which keeps each fsync'ed commit small.
		NoFreelistSync: true,
		FreelistType:   bbolt.FreelistMapType,
	}
}

// openLocked opens s.path and makes sure the lock it holds is the one on
// the file now at s.path: a process that waited for the lock while another
// compacted may have got it on the replaced file, which is no longer the
// store. It then opens again.
func (s *Store) openLocked() (*bbolt.DB, error) {
	for attempt := 0; ; attempt++ {
		before, statErr := os.Stat(s.path)
		db, err := openChecked(s.path, s.options())
		if err != nil {
			return nil, err
		}
		now, err := os.Stat(s.path)
		if err != nil {
			_ = db.Close()
			return nil, fmt.Errorf("bolt: open %s: %w", s.path, err)
		}
		if statErr != nil || os.SameFile(before, now) {
			// statErr: the file did not exist before, so bbolt created the
			// one at s.path.
			return db, nil
		}
		_ = db.Close()
		if attempt >= 3 {
			return nil, fmt.Errorf("bolt: open %s: the file keeps being replaced by another process", s.path)
		}
	}
}

// ErrCorrupted: the store file fails bbolt's consistency check.
var ErrCorrupted = errors.New("bolt: store file corrupted")

// openChecked opens path after checkFile found every page in place. bbolt
// reports a damaged page with a panic (an assertion, in the freelist
// rebuild on open or on the first read of that page), which would end the
// process with a goroutine dump and, under a supervisor, again on every
// restart; here it is an error that names the file. Some of those panics
// run on goroutines of bbolt's own, out of recover's reach: checkFile
// looks for their causes first.
func openChecked(path string, opts *bbolt.Options) (db *bbolt.DB, err error) {
	corrupted := func(cause any) error {
		return fmt.Errorf("%w: %s: %v; nothing was written to it: restore it from a backup, or move it away to start with an empty store",
			ErrCorrupted, path, cause)
	}
	if err := checkFile(path); err != nil {
		return nil, corrupted(err)
	}
	// The freelist rebuild reports broken invariants that checkFile does
	// not look for (key order) with a panic on this goroutine. The
	// half-open handle is lost with it: the process stops on this error.
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, corrupted(r)
		}
	}()
	db, err = bbolt.Open(path, 0o600, opts)
	if err != nil {
		if errors.Is(err, bolterrors.ErrInvalid) || errors.Is(err, bolterrors.ErrChecksum) || errors.Is(err, bolterrors.ErrVersionMismatch) {
			return nil, corrupted(err)
		}
		return nil, fmt.Errorf("bolt: open %s: %w", path, err)
	}
	return db, nil
}

// Close stops the scrubber, runs a compaction that is due, and closes the
// file.
func (s *Store) Close(context.Context) error {
	s.stopOnce.Do(func() {
		close(s.scrubStop)
		<-s.scrubDone
	})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scrubDue() {
		if err := s.compactLocked("pruned documents, at close"); err != nil {
			s.log.Warn().Err(err).Msg("the next start compacts the store file")
		}
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt: close: %w", err)
	}
	return nil
}

// Append stores ev's journal document under (pid, seq). Concurrent appends
// share one commit (and fsync) through bbolt's Batch; the existence check
// sits in the same transaction as the write, so exactly one of several
// writers of the same key wins.
func (s *Store) Append(ctx context.Context, ev persistence.Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: append %s/%d: %w", ev.PID, ev.Seq, err)
	}
	id := bson.NewObjectID()
	// Built before entering the batch, so conversion runs in parallel and
	// the shared write transaction only copies bytes.
	doc, err := document.Journal(id, ev)
	if err != nil {
		return fmt.Errorf("bolt: append: %w", err)
	}
	key := journalKey(ev.PID, ev.Seq)
	idKey := id[:]
	var conflict bool
	err = s.batch(func(tx *bbolt.Tx) error {
		// Batch may run this more than once (it retries calls of a failed
		// batch one by one), so the outcome is reset on entry; a conflict is
		// reported through the closure, not as an error, so it does not fail
		// the other appends of the batch.
		conflict = false
		b := tx.Bucket(journalBucket)
		if b.Get(key) != nil {
			conflict = true
			return nil
		}
		if err := b.Put(key, doc); err != nil {
			return err
		}
		return tx.Bucket(idBucket(document.JournalCollection)).Put(idKey, key)
	})
	if err != nil {
		return fmt.Errorf("bolt: append %s/%d: %w", ev.PID, ev.Seq, err)
	}
	if conflict {
		return fmt.Errorf("bolt: append %s/%d: %w", ev.PID, ev.Seq, persistence.ErrConflict)
	}
	return nil
}

// Replay reads the documents with to >= fromSeq in key (= sequence) order.
func (s *Store) Replay(ctx context.Context, pid string, fromSeq int64, fn func(persistence.Event) error) error {
	if err := document.CheckPID(pid); err != nil {
		return nil // no such pid can have been stored
	}
	start := journalKey(pid, max(fromSeq, 0))
	return s.scan(ctx, journalBucket, nil, start, pidPrefix(pid), func(_, doc []byte) error {
		evs, err := document.DecodeJournal(doc)
		if err != nil {
			return fmt.Errorf("bolt: replay %s: %w", pid, err)
		}
		for _, ev := range evs {
			if ev.Seq < fromSeq {
				continue
			}
			if ev.PID == "" {
				ev.PID = pid
			}
			if err := fn(ev); err != nil {
				return err
			}
		}
		return nil
	})
}

// HighestSeq reads the last journal key of pid; with none, the metadata
// document.
func (s *Store) HighestSeq(ctx context.Context, pid string) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bolt: highest seq %s: %w", pid, err)
	}
	if document.CheckPID(pid) != nil {
		return 0, nil
	}
	var seq int64
	var meta []byte
	err := s.view(func(tx *bbolt.Tx) error {
		prefix := pidPrefix(pid)
		if k, _ := lastWithPrefix(tx.Bucket(journalBucket).Cursor(), pid); k != nil && len(k) == len(prefix)+8 {
			seq = int64(binary.BigEndian.Uint64(k[len(prefix):]))
			return nil
		}
		if v := tx.Bucket(metadataBucket).Get([]byte(pid)); v != nil {
			meta = bytes.Clone(v)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("bolt: highest seq %s: %w", pid, err)
	}
	if meta != nil {
		if seq, err = document.DecodeMetadata(meta); err != nil {
			return 0, fmt.Errorf("bolt: highest seq %s: %w", pid, err)
		}
	}
	return seq, nil
}

// lastWithPrefix positions c on the last key of pid and returns it, or nil.
func lastWithPrefix(c *bbolt.Cursor, pid string) ([]byte, []byte) {
	var k, v []byte
	if next, _ := c.Seek(pidEnd(pid)); next == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	if k == nil || !bytes.HasPrefix(k, pidPrefix(pid)) {
		return nil, nil
	}
	return k, v
}

// SaveSnapshot stores s under (pid, sn, ts), replacing a document with the
// same key but keeping its _id, as MongoDB's replaceOne does.
func (s *Store) SaveSnapshot(ctx context.Context, snap persistence.Snapshot) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: save snapshot %s/%d: %w", snap.PID, snap.Seq, err)
	}
	id := bson.NewObjectID()
	doc, err := document.Snapshot(id, snap)
	if err != nil {
		return fmt.Errorf("bolt: save snapshot: %w", err)
	}
	key := snapshotKey(snap.PID, snap.Seq, snap.Timestamp)
	err = s.batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(snapshotBucket)
		put, putID := doc, id
		if old := b.Get(key); old != nil {
			if oldID, ok := bson.Raw(old).Lookup(document.FieldID).ObjectIDOK(); ok {
				// Rare (Ditto never saves the same sn and ts twice): rebuild with the old _id.
				var err error
				if put, err = document.Snapshot(oldID, snap); err != nil {
					return err
				}
				putID = oldID
			}
		}
		if err := b.Put(key, put); err != nil {
			return err
		}
		return tx.Bucket(idBucket(document.SnapshotCollection)).Put(putID[:], key)
	})
	if err != nil {
		return fmt.Errorf("bolt: save snapshot %s/%d: %w", snap.PID, snap.Seq, err)
	}
	return nil
}

// LatestSnapshot reads the last snapshot key of pid.
func (s *Store) LatestSnapshot(ctx context.Context, pid string) (persistence.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return persistence.Snapshot{}, fmt.Errorf("bolt: latest snapshot %s: %w", pid, err)
	}
	var doc []byte
	if document.CheckPID(pid) == nil {
		if err := s.view(func(tx *bbolt.Tx) error {
			if _, v := lastWithPrefix(tx.Bucket(snapshotBucket).Cursor(), pid); v != nil {
				doc = bytes.Clone(v)
			}
			return nil
		}); err != nil {
			return persistence.Snapshot{}, fmt.Errorf("bolt: latest snapshot %s: %w", pid, err)
		}
	}
	if doc == nil {
		return persistence.Snapshot{}, fmt.Errorf("bolt: latest snapshot %s: %w", pid, persistence.ErrNotFound)
	}
	snap, err := document.DecodeSnapshot(doc)
	if err != nil {
		return persistence.Snapshot{}, fmt.Errorf("bolt: latest snapshot %s: %w", pid, err)
	}
	return snap, nil
}

// LatestEvents emits the last journal document of each pid with prefix.
func (s *Store) LatestEvents(ctx context.Context, prefix string, fn func(persistence.Event) error) error {
	return s.heads(ctx, "latest events", journalBucket, prefix, func(doc []byte) error {
		ev, err := document.DecodeJournalHead(doc)
		if err != nil {
			return fmt.Errorf("bolt: latest events %q: %w", prefix, err)
		}
		return fn(ev)
	})
}

// LatestSnapshots emits the last snapshot document of each pid with prefix.
func (s *Store) LatestSnapshots(ctx context.Context, prefix string, fn func(persistence.Snapshot) error) error {
	return s.heads(ctx, "latest snapshots", snapshotBucket, prefix, func(doc []byte) error {
		snap, err := document.DecodeSnapshot(doc)
		if err != nil {
			return fmt.Errorf("bolt: latest snapshots %q: %w", prefix, err)
		}
		return fn(snap)
	})
}

// heads walks the pids of bucket that start with prefix, jumping from each
// pid's first key to its last (one seek per pid, not one step per document),
// and then calls emit with each last document outside the transaction.
func (s *Store) heads(ctx context.Context, op string, bucket []byte, prefix string, emit func([]byte) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: %s %q: %w", op, prefix, err)
	}
	if strings.IndexByte(prefix, 0) >= 0 {
		return nil
	}
	var docs [][]byte
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		p := []byte(prefix)
		for k, _ := c.Seek(p); k != nil && bytes.HasPrefix(k, p); {
			if err := ctx.Err(); err != nil {
				return err
			}
			pid := string(keyPID(k))
			next, _ := c.Seek(pidEnd(pid))
			_, v := lastWithPrefix(c, pid)
			if v != nil {
				docs = append(docs, bytes.Clone(v))
			}
			k = next
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: %s %q: %w", op, prefix, err)
	}
	for _, doc := range docs {
		if err := emit(doc); err != nil {
			return err
		}
	}
	return nil
}

// ForEachRaw calls fn with every document of collection, in key order (pid,
// then sequence number). fn may keep the document and may write to the
// store.
func (s *Store) ForEachRaw(collection string, fn func(bson.Raw) error) error {
	if !knownCollection(collection) {
		return fmt.Errorf("bolt: for each in %q: unknown collection", collection)
	}
	return s.scan(context.Background(), []byte(collection), nil, nil, nil, func(_, v []byte) error { return fn(v) })
}

// ForEachRawByID calls fn with the documents of collection whose _id is
// greater than after, in _id order (a zero after starts at the beginning):
// the resumable scan of the encryption migration.
func (s *Store) ForEachRawByID(collection string, after bson.ObjectID, fn func(bson.Raw) error) error {
	if !hasIDIndex(collection) {
		return fmt.Errorf("bolt: scan %q by _id: no _id index", collection)
	}
	var start []byte
	if !after.IsZero() {
		start = append(after[:], 0) // the first possible key after `after`
	}
	return s.scan(context.Background(), idBucket(collection), []byte(collection), start, nil, func(_, v []byte) error { return fn(v) })
}

// PutRaw stores documents as they are (each keyed by its content, see
// primaryKey), replacing what has the same key, all in one transaction. A
// document without _id gets a new ObjectId first, as on a MongoDB insert.
// Tests use it to store what Ditto wrote; the encryption migration will use
// it for bulk replaces.
func (s *Store) PutRaw(collection string, docs ...bson.Raw) error {
	if !knownCollection(collection) {
		return fmt.Errorf("bolt: put into %q: unknown collection", collection)
	}
	type item struct {
		key, doc []byte
		id       bson.ObjectID
	}
	items := make([]item, 0, len(docs))
	for _, d := range docs {
		if err := d.Validate(); err != nil {
			return fmt.Errorf("bolt: put into %s: %w: %v", collection, document.ErrMalformed, err)
		}
		doc, id := d, bson.ObjectID{}
		if hasIDIndex(collection) {
			var err error
			if doc, id, err = withID(d); err != nil {
				return fmt.Errorf("bolt: put into %s: %w", collection, err)
			}
		}
		key, err := primaryKey(collection, doc)
		if err != nil {
			return fmt.Errorf("bolt: put into %s: %w", collection, err)
		}
		items = append(items, item{key, doc, id})
	}
	err := s.update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte(collection))
		var ids *bbolt.Bucket
		if hasIDIndex(collection) {
			ids = tx.Bucket(idBucket(collection))
		}
		for _, it := range items {
			if ids != nil {
				if owner := ids.Get(it.id[:]); owner != nil && !bytes.Equal(owner, it.key) {
					return fmt.Errorf("%w: %s", ErrDuplicateID, it.id.Hex())
				}
				if old := b.Get(it.key); old != nil {
					if oldID, ok := bson.Raw(old).Lookup(document.FieldID).ObjectIDOK(); ok && oldID != it.id {
						if err := ids.Delete(oldID[:]); err != nil {
							return err
						}
					}
				}
				if err := ids.Put(it.id[:], it.key); err != nil {
					return err
				}
			}
			if err := b.Put(it.key, it.doc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: put into %s: %w", collection, err)
	}
	return nil
}

// scan calls fn with copies of the pairs of bucket from start on while their
// key has prefix, pageSize pairs per read transaction, so fn runs outside
// any transaction. With via set, bucket's values are keys into via, and fn
// gets via's documents.
func (s *Store) scan(ctx context.Context, bucket, via, start, prefix []byte, fn func(k, v []byte) error) error {
	type pair struct{ k, v []byte }
	page := make([]pair, 0, pageSize)
	var last []byte
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bolt: scan %s: %w", bucket, err)
		}
		page = page[:0]
		err := s.view(func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucket).Cursor()
			var target *bbolt.Bucket
			if via != nil {
				target = tx.Bucket(via)
			}
			var k, v []byte
			switch {
			case last != nil:
				if k, v = c.Seek(last); k != nil && bytes.Equal(k, last) {
					k, v = c.Next()
				}
			case start != nil:
				k, v = c.Seek(start)
			default:
				k, v = c.First()
			}
			for ; k != nil && len(page) < pageSize; k, v = c.Next() {
				if prefix != nil && !bytes.HasPrefix(k, prefix) {
					break
				}
				if target != nil {
					if v = target.Get(v); v == nil {
						continue // index entry without document: skip it
					}
				}
				page = append(page, pair{bytes.Clone(k), bytes.Clone(v)})
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("bolt: scan %s: %w", bucket, err)
		}
		for _, p := range page {
			if err := fn(p.k, p.v); err != nil {
				return err
			}
		}
		if len(page) < pageSize {
			return nil
		}
		last = page[len(page)-1].k
	}
}

// Prune deletes pid's events up to toSeq and its snapshots below it in one
// transaction, recording the highest deleted event in the metadata bucket
// (as the plugin does), and has the file compacted soon after, so that the
// removed documents' bytes leave it (see compact.go). Being one
// transaction, it cannot stop half way.
func (s *Store) Prune(ctx context.Context, pid string, toSeq int64) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: prune %s/%d: %w", pid, toSeq, err)
	}
	if err := document.CheckPID(pid); err != nil {
		return fmt.Errorf("bolt: prune %s/%d: %w", pid, toSeq, persistence.ErrNotFound)
	}
	// Most calls find nothing to do (a deleted connection's grain prunes on
	// every activation): they cost a read transaction, not a commit.
	var pending bool
	if err := s.view(func(tx *bbolt.Tx) error {
		jkeys, skeys, _, err := pruneKeys(tx, pid, toSeq)
		pending = len(jkeys)+len(skeys) > 0
		return err
	}); err != nil {
		return fmt.Errorf("bolt: prune %s/%d: %w", pid, toSeq, err)
	}
	if !pending {
		return nil
	}
	removed := 0
	err := s.update(func(tx *bbolt.Tx) error {
		removed = 0
		jkeys, skeys, maxSeq, err := pruneKeys(tx, pid, toSeq)
		if err != nil {
			return err
		}
		if len(jkeys) > 0 {
			if err := putMetadata(tx, pid, maxSeq); err != nil {
				return err
			}
		}
		// Committed with the deletes: a crash before the compaction leaves
		// it for the next Open.
		if err := tx.Bucket(stateBucket).Put(scrubKey, []byte{1}); err != nil {
			return err
		}
		journal, snaps := tx.Bucket(journalBucket), tx.Bucket(snapshotBucket)
		for _, del := range []struct {
			b          *bbolt.Bucket
			collection string
			keys       [][]byte
		}{{journal, document.JournalCollection, jkeys}, {snaps, document.SnapshotCollection, skeys}} {
			ids := tx.Bucket(idBucket(del.collection))
			for _, key := range del.keys {
				if id, ok := bson.Raw(del.b.Get(key)).Lookup(document.FieldID).ObjectIDOK(); ok {
					if err := ids.Delete(id[:]); err != nil {
						return err
					}
				}
				if err := del.b.Delete(key); err != nil {
					return err
				}
				removed++
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: prune %s/%d: %w", pid, toSeq, err)
	}
	if removed == 0 {
		return nil
	}
	s.scrubSoon()
	return nil
}

// pruneKeys returns the journal keys Prune(pid, toSeq) deletes with the
// highest of their sequence numbers, and the snapshot keys; an error
// wrapping ErrNotFound when pid has no snapshot at or above toSeq.
func pruneKeys(tx *bbolt.Tx, pid string, toSeq int64) (jkeys, skeys [][]byte, maxSeq int64, err error) {
	snaps := tx.Bucket(snapshotBucket)
	prefix := pidPrefix(pid)
	k, _ := lastWithPrefix(snaps.Cursor(), pid)
	if k == nil || len(k) != len(prefix)+16 || int64(binary.BigEndian.Uint64(k[len(prefix):])) < toSeq {
		return nil, nil, 0, persistence.ErrNotFound
	}
	jkeys, maxSeq = keysUpTo(tx.Bucket(journalBucket), prefix, toSeq)
	skeys, _ = keysUpTo(snaps, prefix, toSeq-1)
	return jkeys, skeys, maxSeq, nil
}

// keysUpTo returns copies of b's keys of prefix whose first number (the
// sequence number) is at most seq, and the highest such number.
func keysUpTo(b *bbolt.Bucket, prefix []byte, seq int64) ([][]byte, int64) {
	var keys [][]byte
	var highest int64
	if seq < 0 {
		return nil, 0
	}
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) >= len(prefix)+8; k, _ = c.Next() {
		n := int64(binary.BigEndian.Uint64(k[len(prefix):]))
		if n > seq {
			break
		}
		keys = append(keys, bytes.Clone(k))
		highest = n
	}
	return keys, highest
}

// putMetadata stores pid's metadata document with max_sn seq, keeping the
// _id of the one it replaces.
func putMetadata(tx *bbolt.Tx, pid string, seq int64) error {
	b, ids := tx.Bucket(metadataBucket), tx.Bucket(idBucket(document.MetadataCollection))
	key := []byte(pid)
	if old := b.Get(key); old != nil {
		if n, err := document.DecodeMetadata(old); err == nil && n >= seq {
			return nil // never backwards
		}
	}
	id := bson.NewObjectID()
	if old := b.Get(key); old != nil {
		if oldID, ok := bson.Raw(old).Lookup(document.FieldID).ObjectIDOK(); ok {
			id = oldID
		}
	}
	start, doc := bsoncore.AppendDocumentStart(nil)
	doc = bsoncore.AppendObjectIDElement(doc, document.FieldID, id)
	doc = append(doc, document.Metadata(pid, seq)[4:]...) // its elements and terminator
	doc, err := bsoncore.AppendDocumentEnd(doc[:len(doc)-1], start)
	if err != nil {
		return err
	}
	if err := b.Put(key, doc); err != nil {
		return err
	}
	return ids.Put(id[:], key)
}

// SnapshotsBefore walks the snapshot keys from the first pid above
// afterPID; a pid's keys are in (seq, ts) order, so its last key with a ts
// below before is its newest old-enough snapshot. Only keys are read; the
// snapshots are handed to fn outside the transaction.
func (s *Store) SnapshotsBefore(ctx context.Context, prefix, afterPID string, before int64, limit int, fn func(persistence.Snapshot) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bolt: snapshots before %d: %w", before, err)
	}
	if strings.IndexByte(prefix, 0) >= 0 || strings.IndexByte(afterPID, 0) >= 0 {
		return nil
	}
	var found []persistence.Snapshot
	err := s.view(func(tx *bbolt.Tx) error {
		c := tx.Bucket(snapshotBucket).Cursor()
		p := []byte(prefix)
		start := p
		if afterPID != "" && afterPID >= prefix {
			start = pidEnd(afterPID) // past every key of afterPID
		}
		k, _ := c.Seek(start)
		for k != nil && bytes.HasPrefix(k, p) && (limit <= 0 || len(found) < limit) {
			if err := ctx.Err(); err != nil {
				return err
			}
			pid := string(keyPID(k))
			pp := pidPrefix(pid)
			var best *persistence.Snapshot
			for ; k != nil && bytes.HasPrefix(k, pp); k, _ = c.Next() {
				if len(k) != len(pp)+16 {
					continue
				}
				if ts := int64(binary.BigEndian.Uint64(k[len(pp)+8:])); ts < before {
					best = &persistence.Snapshot{PID: pid, Seq: int64(binary.BigEndian.Uint64(k[len(pp):])), Timestamp: ts}
				}
			}
			if best != nil {
				found = append(found, *best)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("bolt: snapshots before %d: %w", before, err)
	}
	for _, snap := range found {
		if err := fn(snap); err != nil {
			return err
		}
	}
	return nil
}

// LowestSeqs reads the first journal and snapshot keys of pid.
func (s *Store) LowestSeqs(ctx context.Context, pid string) (event, snapshot int64, err error) {
	if err := ctx.Err(); err != nil {
		return 0, 0, fmt.Errorf("bolt: lowest seqs %s: %w", pid, err)
	}
	if document.CheckPID(pid) != nil {
		return 0, 0, nil
	}
	prefix := pidPrefix(pid)
	first := func(b *bbolt.Bucket) int64 {
		if k, _ := b.Cursor().Seek(prefix); k != nil && bytes.HasPrefix(k, prefix) && len(k) >= len(prefix)+8 {
			return int64(binary.BigEndian.Uint64(k[len(prefix):]))
		}
		return 0
	}
	err = s.view(func(tx *bbolt.Tx) error {
		event, snapshot = first(tx.Bucket(journalBucket)), first(tx.Bucket(snapshotBucket))
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("bolt: lowest seqs %s: %w", pid, err)
	}
	return event, snapshot, nil
}
