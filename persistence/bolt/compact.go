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
// After a Prune: the prune's transaction also sets scrubKey, and the
// scrubber goroutine compacts DefaultScrubDelay later, so a burst of deletes
// costs one compaction, and waits at least ten times the last compaction's
// duration between two, so that a large file is not rewritten back to back.
// The marker makes this crash-proof: Open compacts when it finds it set, and
// the compaction clears it in the copy. Close runs a due compaction.
//
// A compaction holds the handle exclusively: every store call waits while it
// copies (milliseconds for a store of a few hundred connections, about a
// second per 100 MB of live documents).
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

// DefaultScrubDelay is how long after a Prune the file is compacted.
const DefaultScrubDelay = time.Second

// compactAtOpen compacts when a prune's bytes may be left in free pages, or
// when more than half of the file's pages are free (measured by bbolt on
// open, when it rebuilds the freelist).
func (s *Store) compactAtOpen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.scrubDue() {
		return s.compactLocked("pruned documents left by the last run")
	}
	st, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("bolt: open %s: %w", s.path, err)
	}
	stats := s.db.Stats()
	free := int64(stats.FreePageN+stats.PendingPageN) * int64(s.db.Info().PageSize)
	if st.Size() < minCompactSize || 2*free <= st.Size() {
		return nil
	}
	return s.compactLocked("free pages dominate")
}

// scrubDue says whether a Prune's bytes may still be in free pages.
func (s *Store) scrubDue() bool {
	due := false
	_ = s.db.View(func(tx *bbolt.Tx) error {
		due = tx.Bucket(stateBucket).Get(scrubKey) != nil
		return nil
	})
	return due
}

// scrubSoon has the file compacted: at once without a delay, else by the
// scrubber.
func (s *Store) scrubSoon() {
	if s.scrubDelay <= 0 {
		if err := s.scrub(); err != nil {
			s.log.Warn().Err(err).Msg("compaction after a prune failed; the next prune or start retries")
		}
		return
	}
	select {
	case s.scrubWake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

func (s *Store) scrub() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.scrubDue() {
		return nil
	}
	return s.compactLocked("pruned documents")
}

// scrubber runs the compactions that prunes ask for, until Close.
func (s *Store) scrubber() {
	defer close(s.scrubDone)
	var last time.Duration
	for {
		select {
		case <-s.scrubStop:
			return
		case <-s.scrubWake:
		}
		select {
		case <-s.scrubStop:
			return // Close compacts
		case <-time.After(max(s.scrubDelay, 10*last)):
		}
		start := time.Now()
		if err := s.scrub(); err != nil {
			s.log.Warn().Err(err).Msg("compaction after a prune failed; the next prune or start retries")
		}
		last = time.Since(start)
	}
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
	// Each of Compact's commits is fsynced (NoSync is off). The copy holds
	// no freed bytes, so it drops the scrub marker.
	if err := bbolt.Compact(dst, s.db, compactTxSize); err != nil {
		return fail(err)
	}
	if err := dst.Update(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(stateBucket); b != nil {
			return b.Delete(scrubKey)
		}
		return nil
	}); err != nil {
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
