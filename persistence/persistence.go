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

// Heads reads the newest document of every persistence id, for id listing.
type Heads interface {
	// LatestEvents calls fn once per pid starting with prefix, with that pid's
	// newest event (Payload may be left empty), in no particular order.
	LatestEvents(ctx context.Context, prefix string, fn func(Event) error) error
	// LatestSnapshots calls fn once per pid starting with prefix, with that
	// pid's newest snapshot, in no particular order.
	LatestSnapshots(ctx context.Context, prefix string, fn func(Snapshot) error) error
}

// Store is what an engine provides.
type Store interface {
	Journal
	Snapshots
	Heads
	// Close releases the engine's resources.
	Close(ctx context.Context) error
}
