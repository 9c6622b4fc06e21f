package bolt

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// bbolt never gives pages back to the file system: a page freed by an
// overwrite or a delete is reused by later writes, but the file keeps its
// size and the freed page keeps its old bytes until then. Two things follow
// for a store of connections: the file grows to its largest size ever (31
// modifications of a 780 kB connection left 139 MB), and a deleted
// connection's secrets stay readable in free pages. A compaction copies the
// live documents into a fresh file (bbolt.Compact) and renames it over the
// store, which fixes both. It runs at Open when free pages dominate, and
// after a Prune that removed documents, whose bytes must leave the file.
//
// Crash safety: the copy is written and fsynced beside the store and renamed
// over it in one step; a crash before the rename leaves the store as it was
// (the partial copy is removed at the next Open), a crash after it leaves the
// complete copy. The file lock stays held throughout: the copy is opened
// (and locked) before the rename, the old file is closed after it.

// compactTxSize bounds the size of one transaction of the copy.
const compactTxSize = 64 << 20

// minCompactSize: smaller files are not compacted at Open, whatever their
// free share (a fresh store has a few free pages and nothing to gain).
const minCompactSize = 1 << 20

func (s *Store) compactPath() string { return s.path + ".compact" }

// view, update and batch run a transaction on the current handle.
func (s *Store) view(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.View(fn)
}

func (s *Store) update(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Update(fn)
}

func (s *Store) batch(fn func(*bbolt.Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.db.Batch(fn)
}

// compactIfSparse compacts when more than half of the file's pages are free
// (measured by bbolt on open, when it rebuilds the freelist).
func (s *Store) compactIfSparse() error {
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", s.path, err)
	}
	stats := s.db.Stats()
	free := int64(stats.FreePageN+stats.PendingPageN) * int64(s.db.Info().PageSize)
	if st.Size() < minCompactSize || 2*free <= st.Size() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked("free pages dominate")
}

// compact rewrites the file; see the comment at the top of this file.
func (s *Store) compact(reason string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked(reason)
}

func (s *Store) compactLocked(reason string) error {
	start := time.Now()
	before, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("bolt: compact %s: %w", s.path, err)
	}
	tmp := s.compactPath()
	_ = os.Remove(tmp)
	dst, err := bbolt.Open(tmp, 0o600, s.options())
	if err != nil {
		return fmt.Errorf("bolt: compact %s: %w", s.path, err)
	}
	fail := func(err error) error {
		_ = dst.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("bolt: compact %s: %w", s.path, err)
	}
	// Each of Compact's commits is fsynced (NoSync is off).
	if err := bbolt.Compact(dst, s.db, compactTxSize); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, s.path); err != nil {
		return fail(err)
	}
	syncDir(filepath.Dir(s.path))
	old := s.db
	s.db = dst
	if err := old.Close(); err != nil {
		s.log.Warn().Err(err).Str("file", s.path).Msg("closing the store file replaced by its compaction")
	}
	var size int64
	if after, err := os.Stat(s.path); err == nil {
		size = after.Size()
	}
	s.log.Info().Str("file", s.path).Str("reason", reason).Int64("bytes_before", before.Size()).
		Int64("bytes_after", size).Dur("took", time.Since(start)).Msg("store file compacted")
	return nil
}

// syncDir makes a rename in dir durable; file systems that cannot sync a
// directory keep it as they do.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
}
