// Package encryptedstore is a persistence.Store decorator that encrypts the
// configured connection fields on their way into the store and decrypts
// them on the way out, as Ditto's event and snapshot adapters do. It sits
// between the connection grain and an engine: the grain only ever sees
// plaintext, the engine only ever sees what Ditto 3.9 would have stored.
package encryptedstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// JournalPrefix is the pointer prefix of journal event payloads (the
// connection sits under "connection"); snapshots have none.
const JournalPrefix = "/connection"

// Store wraps an engine.
type Store struct {
	inner persistence.Store
	write *fieldcrypto.Fields // nil: values are written as they are
	read  *fieldcrypto.Fields // nil: values are read as they are
	log   zerolog.Logger
}

var _ persistence.Store = (*Store)(nil)

// New wraps inner with the field encryption of s, which must be valid
// (Settings.Validate). Writes are encrypted with the current key when
// encryption is enabled; reads of journal events and of snapshots are
// decrypted with the current key, then the old one, whenever either is set.
// (Ditto leaves snapshots encrypted when only the old key is set; here they
// are decrypted with whichever key is set.)
func New(inner persistence.Store, s fieldcrypto.Settings, log zerolog.Logger) (*Store, error) {
	cur, old, err := s.Ciphers()
	if err != nil {
		return nil, err
	}
	st := &Store{inner: inner, log: log}
	if s.Enabled {
		if cur == nil {
			return nil, fmt.Errorf("%w: encryption is enabled without a key", fieldcrypto.ErrSettings)
		}
		st.write = &fieldcrypto.Fields{Current: cur, Pointers: s.Pointers}
	}
	if cur != nil || old != nil {
		if cur == nil {
			cur, old = old, nil
		}
		st.read = &fieldcrypto.Fields{Current: cur, Old: old, Pointers: s.Pointers}
	}
	return st, nil
}

// Unwrap returns the engine.
func (s *Store) Unwrap() persistence.Store { return s.inner }

// Append encrypts the event's connection fields and appends it.
func (s *Store) Append(ctx context.Context, ev persistence.Event) error {
	if s.write != nil && len(ev.Payload) > 0 {
		p, err := s.write.Encrypt(ev.Payload, JournalPrefix)
		if err != nil {
			return fmt.Errorf("encrypted: append %s/%d: %w", ev.PID, ev.Seq, err)
		}
		ev.Payload = p
	}
	return s.inner.Append(ctx, ev)
}

// Replay decrypts each event. An event that no configured key decrypts is
// handed on without payload, so the reader skips it as unreadable and still
// advances its sequence number, as Ditto's recovery skips it.
func (s *Store) Replay(ctx context.Context, pid string, fromSeq int64, fn func(persistence.Event) error) error {
	if s.read == nil {
		return s.inner.Replay(ctx, pid, fromSeq, fn)
	}
	return s.inner.Replay(ctx, pid, fromSeq, func(ev persistence.Event) error {
		ev.Payload = s.decryptEvent(ev)
		return fn(ev)
	})
}

func (s *Store) decryptEvent(ev persistence.Event) json.RawMessage {
	if len(ev.Payload) == 0 {
		return ev.Payload
	}
	p, err := s.read.Decrypt(ev.Payload, JournalPrefix)
	if err != nil {
		s.log.Error().Err(err).Str("pid", ev.PID).Int64("seq", ev.Seq).Msg("journal event cannot be decrypted")
		return nil
	}
	return p
}

// HighestSeq is the engine's.
func (s *Store) HighestSeq(ctx context.Context, pid string) (int64, error) {
	return s.inner.HighestSeq(ctx, pid)
}

// SaveSnapshot encrypts the snapshot's fields and saves it.
func (s *Store) SaveSnapshot(ctx context.Context, snap persistence.Snapshot) error {
	if s.write != nil && len(snap.Payload) > 0 {
		p, err := s.write.Encrypt(snap.Payload, "")
		if err != nil {
			return fmt.Errorf("encrypted: save snapshot %s/%d: %w", snap.PID, snap.Seq, err)
		}
		snap.Payload = p
	}
	return s.inner.SaveSnapshot(ctx, snap)
}

// ErrUndecryptable: the latest snapshot could not be decrypted; it wraps
// persistence.ErrNotFound, so the reader recovers from the journal alone,
// as Ditto treats a snapshot it cannot read as none.
var ErrUndecryptable = fmt.Errorf("encrypted: snapshot cannot be decrypted: %w", persistence.ErrNotFound)

// LatestSnapshot loads and decrypts the latest snapshot.
func (s *Store) LatestSnapshot(ctx context.Context, pid string) (persistence.Snapshot, error) {
	snap, err := s.inner.LatestSnapshot(ctx, pid)
	if err != nil || s.read == nil {
		return snap, err
	}
	p, err := s.read.Decrypt(snap.Payload, "")
	if err != nil {
		s.log.Error().Err(err).Str("pid", pid).Int64("seq", snap.Seq).Msg("snapshot cannot be decrypted")
		return persistence.Snapshot{}, fmt.Errorf("%w (%s/%d)", ErrUndecryptable, pid, snap.Seq)
	}
	snap.Payload = p
	return snap, nil
}

// LatestEvents hands on the engine's heads with decrypted payloads; a
// payload no key decrypts is left out.
func (s *Store) LatestEvents(ctx context.Context, prefix string, fn func(persistence.Event) error) error {
	if s.read == nil {
		return s.inner.LatestEvents(ctx, prefix, fn)
	}
	return s.inner.LatestEvents(ctx, prefix, func(ev persistence.Event) error {
		ev.Payload = s.decryptEvent(ev)
		return fn(ev)
	})
}

// LatestSnapshots hands on the engine's newest snapshots decrypted; one no
// key decrypts is handed on as stored (its __lifecycle stays readable).
func (s *Store) LatestSnapshots(ctx context.Context, prefix string, fn func(persistence.Snapshot) error) error {
	if s.read == nil {
		return s.inner.LatestSnapshots(ctx, prefix, fn)
	}
	return s.inner.LatestSnapshots(ctx, prefix, func(snap persistence.Snapshot) error {
		if p, err := s.read.Decrypt(snap.Payload, ""); err == nil {
			snap.Payload = p
		} else if !errors.Is(err, fieldcrypto.ErrDecrypt) {
			s.log.Debug().Err(err).Str("pid", snap.PID).Msg("snapshot head not decrypted")
		}
		return fn(snap)
	})
}

// Close closes the engine.
func (s *Store) Close(ctx context.Context) error { return s.inner.Close(ctx) }

// Prune is the engine's: it deletes documents and reads no payload.
func (s *Store) Prune(ctx context.Context, pid string, toSeq int64) error {
	return s.inner.Prune(ctx, pid, toSeq)
}

// SnapshotsBefore is the engine's: the cleanup reads sequence numbers and
// timestamps, no payload.
func (s *Store) SnapshotsBefore(ctx context.Context, prefix, afterPID string, before int64, limit int, fn func(persistence.Snapshot) error) error {
	return s.inner.SnapshotsBefore(ctx, prefix, afterPID, before, limit, fn)
}

// LowestSeqs is the engine's.
func (s *Store) LowestSeqs(ctx context.Context, pid string) (int64, int64, error) {
	return s.inner.LowestSeqs(ctx, pid)
}
