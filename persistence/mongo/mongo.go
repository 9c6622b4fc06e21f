// Package mongo is the MongoDB engine of persistence: it reads and writes
// Ditto's connectivity collections through the official driver, so Ditto and
// dittoconn can share one database. Only unique-key inserts provide
// concurrency control (no transactions, no conditional updates), which is
// also all that FerretDB, the engine's test server, does atomically.
package mongo

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	driver "go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
)

// DefaultTimeout bounds every call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Store is the MongoDB engine.
type Store struct {
	client   *driver.Client
	owned    bool // Open connected the client, so Close disconnects it
	db       *driver.Database
	journal  *driver.Collection
	snaps    *driver.Collection
	metadata *driver.Collection
	timeout  time.Duration
}

var _ persistence.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithTimeout sets the deadline given to calls whose context has none
// (default DefaultTimeout). The driver's client-wide timeout is deliberately
// not used: FerretDB rejects the maxTimeMS it adds to distinct.
func WithTimeout(d time.Duration) Option {
	return func(s *Store) {
		if d > 0 {
			s.timeout = d
		}
	}
}

// Open connects to uri, pings the server, creates Ditto's indexes where
// missing, and returns a Store on database. Close disconnects the client.
func Open(ctx context.Context, uri, database string, opts ...Option) (*Store, error) {
	client, err := driver.Connect(options.Client().ApplyURI(uri))
	if err != nil {
		// The driver's error may quote the URI; it is returned, never logged here.
		return nil, fmt.Errorf("mongo: connect: %w", err)
	}
	s := New(client, database, opts...)
	s.owned = true
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := client.Ping(ctx, readpref.Primary()); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("mongo: ping: %w", err)
	}
	if err := s.EnsureIndexes(ctx); err != nil {
		_ = client.Disconnect(context.WithoutCancel(ctx))
		return nil, err
	}
	return s, nil
}

// New returns a Store on database over a connected client, which the caller
// keeps owning (Close leaves it connected). It does not create indexes; call
// EnsureIndexes.
func New(client *driver.Client, database string, opts ...Option) *Store {
	db := client.Database(database)
	s := &Store{
		client:   client,
		db:       db,
		journal:  db.Collection(document.JournalCollection),
		snaps:    db.Collection(document.SnapshotCollection),
		metadata: db.Collection(document.MetadataCollection),
		timeout:  DefaultTimeout,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Database is the underlying database, for raw access (tests, migration).
func (s *Store) Database() *driver.Database { return s.db }

// EnsureIndexes creates Ditto's indexes that do not exist yet. Existing
// indexes are matched by name and left alone, so a database Ditto set up
// (possibly with other options) is never disturbed.
func (s *Store) EnsureIndexes(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	for _, c := range document.Collections() {
		view := s.db.Collection(c.Name).Indexes()
		existing := map[string]bool{}
		specs, err := view.ListSpecifications(ctx)
		if err != nil && !isNamespaceNotFound(err) {
			return fmt.Errorf("mongo: list indexes of %s: %w", c.Name, err)
		}
		for _, sp := range specs {
			existing[sp.Name] = true
		}
		var models []driver.IndexModel
		for _, ix := range c.Indexes {
			if existing[ix.Name] {
				continue
			}
			o := options.Index().SetName(ix.Name)
			if ix.Unique {
				o.SetUnique(true)
			}
			if ix.Sparse {
				o.SetSparse(true)
			}
			models = append(models, driver.IndexModel{Keys: ix.Keys, Options: o})
		}
		if len(models) == 0 {
			continue
		}
		if _, err := view.CreateMany(ctx, models); err != nil {
			return fmt.Errorf("mongo: create indexes on %s: %w", c.Name, err)
		}
	}
	return nil
}

func isNamespaceNotFound(err error) bool {
	var se driver.ServerError
	return errors.As(err, &se) && se.HasErrorCode(26)
}

// bound gives ctx the default deadline when it has none.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.timeout)
}

// Append inserts ev's journal document; the unique (pid, from, to) index
// turns a second writer of the same sequence number into ErrConflict.
func (s *Store) Append(ctx context.Context, ev persistence.Event) error {
	doc, err := document.Journal(bson.NewObjectID(), ev)
	if err != nil {
		return fmt.Errorf("mongo: append: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if _, err := s.journal.InsertOne(ctx, doc); err != nil {
		if driver.IsDuplicateKeyError(err) {
			return fmt.Errorf("mongo: append %s/%d: %w: %w", ev.PID, ev.Seq, persistence.ErrConflict, err)
		}
		return fmt.Errorf("mongo: append %s/%d: %w", ev.PID, ev.Seq, err)
	}
	return nil
}

// Replay reads the documents with to >= fromSeq in sequence order, as the
// plugin does, and keeps the events with sn >= fromSeq.
func (s *Store) Replay(ctx context.Context, pid string, fromSeq int64, fn func(persistence.Event) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	filter := bson.D{{Key: document.FieldPID, Value: pid}, {Key: document.FieldTo, Value: bson.D{{Key: "$gte", Value: fromSeq}}}}
	opts := options.Find().
		SetSort(bson.D{{Key: document.FieldTo, Value: 1}}).
		SetProjection(bson.D{{Key: document.FieldEvents, Value: 1}})
	cur, err := s.journal.Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("mongo: replay %s: %w", pid, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	for cur.Next(ctx) {
		evs, err := document.DecodeJournal(cur.Current)
		if err != nil {
			return fmt.Errorf("mongo: replay %s: %w", pid, err)
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
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongo: replay %s: %w", pid, err)
	}
	return nil
}

// HighestSeq reads the document with the largest to; with none, the
// metadata document the plugin leaves when it deletes events.
func (s *Store) HighestSeq(ctx context.Context, pid string) (int64, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	filter := bson.D{{Key: document.FieldPID, Value: pid}}
	raw, err := s.journal.FindOne(ctx, filter, options.FindOne().
		SetSort(bson.D{{Key: document.FieldTo, Value: -1}}).
		SetProjection(bson.D{{Key: document.FieldTo, Value: 1}})).Raw()
	switch {
	case err == nil:
		to, ok := raw.Lookup(document.FieldTo).AsInt64OK()
		if !ok {
			return 0, fmt.Errorf("mongo: highest seq %s: %w: no to", pid, document.ErrMalformed)
		}
		return to, nil
	case !errors.Is(err, driver.ErrNoDocuments):
		return 0, fmt.Errorf("mongo: highest seq %s: %w", pid, err)
	}
	raw, err = s.metadata.FindOne(ctx, filter).Raw()
	if errors.Is(err, driver.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mongo: highest seq %s: metadata: %w", pid, err)
	}
	n, err := document.DecodeMetadata(raw)
	if err != nil {
		return 0, fmt.Errorf("mongo: highest seq %s: %w", pid, err)
	}
	return n, nil
}

// SaveSnapshot upserts by (pid, sn, ts) as the plugin does; the server
// assigns _id on insert and keeps it on replace.
func (s *Store) SaveSnapshot(ctx context.Context, snap persistence.Snapshot) error {
	doc, err := document.Snapshot(bson.ObjectID{}, snap)
	if err != nil {
		return fmt.Errorf("mongo: save snapshot: %w", err)
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	filter := bson.D{
		{Key: document.FieldPID, Value: snap.PID},
		{Key: document.FieldSeq, Value: snap.Seq},
		{Key: document.FieldTS, Value: snap.Timestamp},
	}
	upsert := options.Replace().SetUpsert(true)
	_, err = s.snaps.ReplaceOne(ctx, filter, doc, upsert)
	if driver.IsDuplicateKeyError(err) {
		// Two upserts raced to insert; the loser now finds the document and replaces it.
		_, err = s.snaps.ReplaceOne(ctx, filter, doc, upsert)
	}
	if err != nil {
		return fmt.Errorf("mongo: save snapshot %s/%d: %w", snap.PID, snap.Seq, err)
	}
	return nil
}

// LatestSnapshot reads the snapshot with the highest sn, then ts.
func (s *Store) LatestSnapshot(ctx context.Context, pid string) (persistence.Snapshot, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	raw, err := s.snaps.FindOne(ctx, bson.D{{Key: document.FieldPID, Value: pid}},
		options.FindOne().SetSort(bson.D{{Key: document.FieldSeq, Value: -1}, {Key: document.FieldTS, Value: -1}})).Raw()
	if errors.Is(err, driver.ErrNoDocuments) {
		return persistence.Snapshot{}, fmt.Errorf("mongo: latest snapshot %s: %w", pid, persistence.ErrNotFound)
	}
	if err != nil {
		return persistence.Snapshot{}, fmt.Errorf("mongo: latest snapshot %s: %w", pid, err)
	}
	snap, err := document.DecodeSnapshot(raw)
	if err != nil {
		return persistence.Snapshot{}, fmt.Errorf("mongo: latest snapshot %s: %w", pid, err)
	}
	return snap, nil
}

// LatestEvents streams the journal sorted by pid, then to descending (the
// max_sequence_sort index order), and emits the first document of each pid.
// It sorts instead of grouping because FerretDB has no $max accumulator.
func (s *Store) LatestEvents(ctx context.Context, prefix string, fn func(persistence.Event) error) error {
	projection := bson.D{
		{Key: document.FieldPID, Value: 1},
		{Key: document.FieldTo, Value: 1},
		{Key: document.FieldEvents + "." + document.FieldPID, Value: 1},
		{Key: document.FieldEvents + "." + document.FieldSeq, Value: 1},
		{Key: document.FieldEvents + "." + document.FieldManifest, Value: 1},
		{Key: document.FieldEvents + "." + document.FieldTags, Value: 1},
		{Key: document.FieldEvents + "." + document.FieldWriter, Value: 1},
	}
	sort := bson.D{{Key: document.FieldPID, Value: 1}, {Key: document.FieldTo, Value: -1}}
	return s.heads(ctx, "latest events", s.journal, prefix, sort, projection, func(raw bson.Raw) error {
		ev, err := document.DecodeJournalHead(raw)
		if err != nil {
			return fmt.Errorf("mongo: latest events %q: %w", prefix, err)
		}
		return fn(ev)
	})
}

// LatestSnapshots streams the snapshots sorted by pid, sn and ts (the
// connection_snaps_index order) and emits the first of each pid.
func (s *Store) LatestSnapshots(ctx context.Context, prefix string, fn func(persistence.Snapshot) error) error {
	sort := bson.D{{Key: document.FieldPID, Value: 1}, {Key: document.FieldSeq, Value: -1}, {Key: document.FieldTS, Value: -1}}
	return s.heads(ctx, "latest snapshots", s.snaps, prefix, sort, nil, func(raw bson.Raw) error {
		snap, err := document.DecodeSnapshot(raw)
		if err != nil {
			return fmt.Errorf("mongo: latest snapshots %q: %w", prefix, err)
		}
		return fn(snap)
	})
}

// heads calls emit with the first document of each pid in sort order; emit's
// error is returned as is (it may be the caller's own).
func (s *Store) heads(ctx context.Context, op string, coll *driver.Collection, prefix string, sort, projection bson.D, emit func(bson.Raw) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	filter := bson.D{}
	if prefix != "" {
		filter = bson.D{{Key: document.FieldPID, Value: bson.Regex{Pattern: "^" + regexp.QuoteMeta(prefix)}}}
	}
	opts := options.Find().SetSort(sort)
	if projection != nil {
		opts.SetProjection(projection)
	}
	cur, err := coll.Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("mongo: %s %q: %w", op, prefix, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	last, started := "", false
	for cur.Next(ctx) {
		pid, ok := cur.Current.Lookup(document.FieldPID).StringValueOK()
		if !ok || !strings.HasPrefix(pid, prefix) || (started && pid == last) {
			continue
		}
		last, started = pid, true
		if err := emit(cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongo: %s %q: %w", op, prefix, err)
	}
	return nil
}

// Close disconnects the client if Open created it.
func (s *Store) Close(ctx context.Context) error {
	if !s.owned {
		return nil
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.client.Disconnect(ctx); err != nil {
		return fmt.Errorf("mongo: close: %w", err)
	}
	return nil
}

// Prune deletes in the order that keeps pid recoverable at every step, as
// the plugin does: after checking that a snapshot at or above toSeq exists,
// it raises the metadata document's max_sn to the highest event it is about
// to delete, then deletes the journal documents with to <= toSeq, then the
// snapshots below toSeq. A journal document holding several events that
// straddles toSeq (Ditto writes one event per document) is kept whole.
func (s *Store) Prune(ctx context.Context, pid string, toSeq int64) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	fail := func(step string, err error) error {
		return fmt.Errorf("mongo: prune %s/%d: %s: %w", pid, toSeq, step, err)
	}
	err := s.snaps.FindOne(ctx, bson.D{{Key: document.FieldPID, Value: pid}, {Key: document.FieldSeq, Value: bson.D{{Key: "$gte", Value: toSeq}}}},
		options.FindOne().SetProjection(bson.D{{Key: document.FieldSeq, Value: 1}})).Err()
	if errors.Is(err, driver.ErrNoDocuments) {
		return fail("no snapshot at or above it", persistence.ErrNotFound)
	}
	if err != nil {
		return fail("find snapshot", err)
	}
	upTo := bson.D{{Key: document.FieldPID, Value: pid}, {Key: document.FieldTo, Value: bson.D{{Key: "$lte", Value: toSeq}}}}
	raw, err := s.journal.FindOne(ctx, upTo, options.FindOne().
		SetSort(bson.D{{Key: document.FieldTo, Value: -1}}).
		SetProjection(bson.D{{Key: document.FieldTo, Value: 1}})).Raw()
	switch {
	case errors.Is(err, driver.ErrNoDocuments):
	case err != nil:
		return fail("find highest event", err)
	default:
		maxSeq, ok := raw.Lookup(document.FieldTo).AsInt64OK()
		if !ok {
			return fail("highest event", fmt.Errorf("%w: no to", document.ErrMalformed))
		}
		if _, err := s.metadata.UpdateOne(ctx, bson.D{{Key: document.FieldPID, Value: pid}},
			bson.D{{Key: "$max", Value: bson.D{{Key: document.FieldMaxSeq, Value: maxSeq}}}},
			options.UpdateOne().SetUpsert(true)); err != nil {
			return fail("metadata", err)
		}
		if _, err := s.journal.DeleteMany(ctx, upTo); err != nil {
			return fail("delete events", err)
		}
	}
	if _, err := s.snaps.DeleteMany(ctx, bson.D{{Key: document.FieldPID, Value: pid},
		{Key: document.FieldSeq, Value: bson.D{{Key: "$lt", Value: toSeq}}}}); err != nil {
		return fail("delete snapshots", err)
	}
	return nil
}

// SnapshotsBefore streams the old-enough snapshots above afterPID sorted by
// pid, sn and ts descending (the connection_snaps_index order) and emits
// the first of each pid. Ditto's cleanup selects by the _id's creation
// time; ts is the same instant for the snapshots Ditto and dittoconn write.
func (s *Store) SnapshotsBefore(ctx context.Context, prefix, afterPID string, before int64, limit int, fn func(persistence.Snapshot) error) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	and := bson.A{bson.D{{Key: document.FieldTS, Value: bson.D{{Key: "$lt", Value: before}}}}}
	if afterPID != "" {
		and = append(and, bson.D{{Key: document.FieldPID, Value: bson.D{{Key: "$gt", Value: afterPID}}}})
	}
	if prefix != "" {
		and = append(and, bson.D{{Key: document.FieldPID, Value: bson.Regex{Pattern: "^" + regexp.QuoteMeta(prefix)}}})
	}
	opts := options.Find().
		SetSort(bson.D{{Key: document.FieldPID, Value: 1}, {Key: document.FieldSeq, Value: -1}, {Key: document.FieldTS, Value: -1}}).
		SetProjection(bson.D{{Key: document.FieldPID, Value: 1}, {Key: document.FieldSeq, Value: 1}, {Key: document.FieldTS, Value: 1}})
	cur, err := s.snaps.Find(ctx, bson.D{{Key: "$and", Value: and}}, opts)
	if err != nil {
		return fmt.Errorf("mongo: snapshots before %d: %w", before, err)
	}
	defer cur.Close(context.WithoutCancel(ctx))
	last, n := "", 0
	for cur.Next(ctx) {
		pid, ok := cur.Current.Lookup(document.FieldPID).StringValueOK()
		if !ok || pid == last || !strings.HasPrefix(pid, prefix) {
			continue
		}
		if limit > 0 && n == limit {
			return nil
		}
		seq, ok1 := cur.Current.Lookup(document.FieldSeq).AsInt64OK()
		ts, ok2 := cur.Current.Lookup(document.FieldTS).AsInt64OK()
		if !ok1 || !ok2 {
			return fmt.Errorf("mongo: snapshots before %d: %s: %w: sn or ts", before, pid, document.ErrMalformed)
		}
		last, n = pid, n+1
		if err := fn(persistence.Snapshot{PID: pid, Seq: seq, Timestamp: ts}); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("mongo: snapshots before %d: %w", before, err)
	}
	return nil
}

// LowestSeqs reads the journal document with the smallest to and the
// snapshot with the smallest sn.
func (s *Store) LowestSeqs(ctx context.Context, pid string) (event, snapshot int64, err error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	lowest := func(coll *driver.Collection, field string) (int64, error) {
		raw, err := coll.FindOne(ctx, bson.D{{Key: document.FieldPID, Value: pid}}, options.FindOne().
			SetSort(bson.D{{Key: field, Value: 1}}).
			SetProjection(bson.D{{Key: field, Value: 1}})).Raw()
		if errors.Is(err, driver.ErrNoDocuments) {
			return 0, nil
		}
		if err != nil {
			return 0, err
		}
		n, ok := raw.Lookup(field).AsInt64OK()
		if !ok {
			return 0, fmt.Errorf("%w: no %s", document.ErrMalformed, field)
		}
		return n, nil
	}
	if event, err = lowest(s.journal, document.FieldTo); err != nil {
		return 0, 0, fmt.Errorf("mongo: lowest seqs %s: journal: %w", pid, err)
	}
	if snapshot, err = lowest(s.snaps, document.FieldSeq); err != nil {
		return 0, 0, fmt.Errorf("mongo: lowest seqs %s: snapshots: %w", pid, err)
	}
	return event, snapshot, nil
}
