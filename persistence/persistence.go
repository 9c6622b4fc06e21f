// Package persistence is the contract between the connection grain and the
// stores that hold Ditto's journal and snapshot documents. Two engines
// implement it (persistence/mongo, persistence/bolt) and one conformance suite
// (persistence/persistencetest) runs against both. This package knows
// documents, not grains.
package persistence

import (
	"context"
	"encoding/json"
	"errors"
)

// Sentinel errors, wrapped with the operation that hit them.
var (
	// ErrConflict: an event with this persistence id and sequence number exists
	// already (a second writer for the same pid must not fork its journal).
	ErrConflict = errors.New("persistence: sequence number conflict")
	// ErrNotFound: no such document.
	ErrNotFound = errors.New("persistence: not found")
)

// Event is one journal event (one Ditto journal document: from == to == Seq).
type Event struct {
	PID      string          // "connection:<id>"
	Seq      int64           // sequence number, from 1
	Manifest string          // the event type, e.g. "connectivity.events:connectionCreated"
	Tags     []string        // journal tags (_tg)
	Writer   string          // writer UUID (_w)
	Payload  json.RawMessage // the event JSON object (p), as Ditto writes it
}

// Snapshot is one snapshot document.
type Snapshot struct {
	PID       string
	Seq       int64
	Timestamp int64           // epoch milliseconds (ts)
	Payload   json.RawMessage // the entity JSON object (s2)
}

// Journal appends and replays events.
type Journal interface {
	// Append stores ev; it returns an error wrapping ErrConflict when
	// (ev.PID, ev.Seq) exists already.
	Append(ctx context.Context, ev Event) error
	// Replay calls fn for each event of pid with Seq >= fromSeq, in order.
	Replay(ctx context.Context, pid string, fromSeq int64, fn func(Event) error) error
	// HighestSeq is the highest sequence number of pid, 0 when it has none.
	HighestSeq(ctx context.Context, pid string) (int64, error)
}

// Snapshots saves and loads snapshots.
type Snapshots interface {
	// SaveSnapshot stores s (replacing one with the same pid, seq and ts).
	SaveSnapshot(ctx context.Context, s Snapshot) error
	// LatestSnapshot is the snapshot of pid with the highest Seq (then ts); an
	// error wrapping ErrNotFound when there is none.
	LatestSnapshot(ctx context.Context, pid string) (Snapshot, error)
}

// Pruner removes what recovery no longer needs, with Ditto's cleanup
// semantics (recovery is the latest snapshot plus the events after it, so
// whatever lies below the latest snapshot may go).
type Pruner interface {
	// Prune deletes the journal events of pid with Seq <= toSeq and its
	// snapshots with Seq < toSeq. A snapshot of pid with Seq >= toSeq must
	// exist (recovery starts from it); without one Prune deletes nothing and
	// returns an error wrapping ErrNotFound. Before the newest event is
	// deleted the pid's metadata document records it (Ditto's max_sn), so
	// HighestSeq never goes back. Every step leaves pid recoverable to the
	// same state, so a crash in the middle loses nothing; calling Prune again
	// finishes the work, and pruning what is gone already is no error.
	// The removed documents' bytes leave the storage the engine controls:
	// MongoDB's collections at once (the server's own files are the
	// server's matter); the embedded engine's file within seconds, by a
	// compaction that Close or the next open finishes if a crash cut it
	// short.
	Prune(ctx context.Context, pid string, toSeq int64) error
}

// Heads reads the newest document of every persistence id, for id listing.
type Heads interface {
	// LatestEvents calls fn once per pid starting with prefix, with that pid's
	// newest event (Payload may be left empty), in no particular order.
	LatestEvents(ctx context.Context, prefix string, fn func(Event) error) error
	// LatestSnapshots calls fn once per pid starting with prefix, with that
	// pid's newest snapshot, in no particular order.
	LatestSnapshots(ctx context.Context, prefix string, fn func(Snapshot) error) error
}

// CleanupScan is what the background cleanup (persistence/cleanup) reads
// to decide what Prune may remove: Ditto's cleanup queries of its read
// journal.
type CleanupScan interface {
	// SnapshotsBefore calls fn, in ascending pid order, for each pid that
	// starts with prefix, is greater than afterPID and has a snapshot with
	// Timestamp < before (epoch milliseconds), with the newest of those
	// snapshots (highest Seq, then ts; Payload may be left empty). It stops
	// after limit pids when limit > 0.
	SnapshotsBefore(ctx context.Context, prefix, afterPID string, before int64, limit int, fn func(Snapshot) error) error
	// LowestSeqs is the lowest sequence number of pid's events and of its
	// snapshots, 0 for either when there is none.
	LowestSeqs(ctx context.Context, pid string) (event, snapshot int64, err error)
}

// Store is what an engine provides.
type Store interface {
	Journal
	Snapshots
	Pruner
	Heads
	CleanupScan
	// Close releases the engine's resources.
	Close(ctx context.Context) error
}

// The encryption migration works on raw documents: it scans them in _id
// order, rewrites their encrypted fields and replaces them in bulk, keeps
// Ditto's progress document, and holds a lease so that only one migration
// runs at a time. Documents cross this contract as BSON bytes; the names of
// the collections are package document's.

// MigrationDocs are the resumable scan and the bulk replace.
type MigrationDocs interface {
	// ScanAfterID calls fn, in ascending _id order, with the raw BSON
	// documents of collection whose _id is greater than afterID (the hex of
	// an ObjectId; "" starts at the beginning) and that have at least one of
	// paths, dotted field paths with MongoDB's {$exists: true} meaning: a
	// field holding null exists, and a path through an array exists when
	// any element has it. At most limit documents are passed (0: no limit).
	ScanAfterID(ctx context.Context, collection, afterID string, paths []string, limit int, fn func(doc []byte) error) error
	// ReplaceByID replaces each document of collection that has the _id of
	// one of docs with that document, as one unordered bulk write, and
	// returns how many were replaced. A document whose _id is not stored is
	// not inserted.
	ReplaceByID(ctx context.Context, collection string, docs [][]byte) (int, error)
}

// MigrationProgress is the migration's progress document (Ditto's
// connection_encryption_migration, _id "current"). Empty ids and pids are
// stored as null.
type MigrationProgress struct {
	Phase                                string
	LastSnapshotID, LastSnapshotPID      string
	LastJournalID, LastJournalPID        string
	SnapshotsProcessed, SnapshotsSkipped int64
	SnapshotsFailed                      int64
	JournalProcessed, JournalSkipped     int64
	JournalFailed                        int64
	StartedAt, UpdatedAt                 string // ISO-8601 instants, as Ditto writes them
}

// Progress loads, saves and deletes the progress document.
type Progress interface {
	// LoadProgress returns an error wrapping ErrNotFound when there is none.
	LoadProgress(ctx context.Context) (MigrationProgress, error)
	// SaveProgress replaces (or inserts) the progress document.
	SaveProgress(ctx context.Context, p MigrationProgress) error
	// DeleteProgress removes it; removing none is no error.
	DeleteProgress(ctx context.Context) error
}

// Lease is the migration's lease document (_id "lease" beside the progress
// document): who runs the migration, and until when it may be presumed
// alive without renewing.
type Lease struct {
	Owner     string
	ExpiresAt int64 // epoch milliseconds
}

// Leases guard the migration against running twice. Only InsertLease
// decides ownership (a unique _id); the others act on the owner's lease.
type Leases interface {
	// InsertLease stores l; an error wrapping ErrConflict when a lease
	// document exists already.
	InsertLease(ctx context.Context, l Lease) error
	// LoadLease returns the lease, or an error wrapping ErrNotFound.
	LoadLease(ctx context.Context) (Lease, error)
	// RenewLease moves the expiry of owner's lease; an error wrapping
	// ErrNotFound when the lease is not owner's (any more).
	RenewLease(ctx context.Context, owner string, expiresAt int64) error
	// DeleteLease removes the lease if it is owner's; otherwise nothing.
	DeleteLease(ctx context.Context, owner string) error
}

// ProgressCommitter is implemented by engines that can replace a batch of
// documents and save the migration progress in one durable write.
type ProgressCommitter interface {
	ReplaceByIDWithProgress(ctx context.Context, collection string, docs [][]byte, p MigrationProgress) (int, error)
}

// Migration is what an engine provides to the encryption migration.
type Migration interface {
	MigrationDocs
	Progress
	Leases
}
