// Package cleanup is the background journal cleanup, Ditto's
// PersistenceCleanupActor with its settings (connectivity.conf
// ditto.connectivity.connection.cleanup, CLEANUP_* variables): without it
// every modification of a connection stays in the journal for ever.
//
// A run walks the persistence ids in ascending order, reading
// ReadsPerQuery of them at a time with each one's newest snapshot older
// than HistoryRetention, and deletes that pid's events below the snapshot's
// sequence number and its older snapshots. The event at the snapshot's
// sequence number stays, as in Ditto: its tags (always-alive) are what the
// reopen sweep lists after a restart, and recovery needs nothing below the
// snapshot. Deletes go through persistence.Pruner, whose every step leaves
// the pid recoverable, so a crash (SIGKILL included) in the middle loses
// nothing and the next run finishes the work.
//
// Pacing is Ditto's credits: every Interval, CreditsPerBatch credits are
// issued unless a delete of the last Interval took TimerThreshold or longer;
// one credit is one delete of at most WritesPerCredit sequence numbers of
// one pid. A run starts after QuietPeriod (randomised up to twice it, as
// Ditto does) from the service start and from the end of the previous run;
// a failed run resumes after the last pid it finished.
//
// Concurrency costs: one goroutine per member, sleeping between credits;
// each delete is one store call. With MongoDB and several members, every
// member runs it (Ditto shares the pids out among its members); the deletes
// are idempotent, so the cost is repeated work, not lost data.
package cleanup

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
)

// Config is Ditto's cleanup block.
type Config struct {
	Enabled          bool          // CLEANUP_ENABLED, true
	HistoryRetention time.Duration // CLEANUP_HISTORY_RETENTION_DURATION, 30d
	QuietPeriod      time.Duration // CLEANUP_QUIET_PERIOD, 5m
	Interval         time.Duration // CLEANUP_INTERVAL, 60s
	TimerThreshold   time.Duration // CLEANUP_TIMER_THRESHOLD, 150ms
	CreditsPerBatch  int           // CLEANUP_CREDITS_PER_BATCH, 1
	ReadsPerQuery    int           // CLEANUP_READS_PER_QUERY, 100
	WritesPerCredit  int           // CLEANUP_WRITES_PER_CREDIT, 100
	// DeleteFinalDeletedSnapshot (CLEANUP_DELETE_FINAL_DELETED_SNAPSHOT,
	// false): only false is supported, see Validate.
	DeleteFinalDeletedSnapshot bool
}

// Defaults are Ditto's.
func Defaults() Config {
	return Config{Enabled: true, HistoryRetention: 30 * 24 * time.Hour, QuietPeriod: 5 * time.Minute,
		Interval: 60 * time.Second, TimerThreshold: 150 * time.Millisecond,
		CreditsPerBatch: 1, ReadsPerQuery: 100, WritesPerCredit: 100}
}

// ErrConfig: a setting the cleanup cannot act on.
var ErrConfig = errors.New("cleanup settings")

// Validate refuses what the cleanup would not act on as Ditto does.
// DeleteFinalDeletedSnapshot true would remove a deleted connection's last
// document but its max_sn record (persistence.Pruner keeps one snapshot),
// so a re-create would not start at revision 1 as Ditto's does: refused
// rather than half done.
func (c Config) Validate() error {
	switch {
	case c.HistoryRetention < 0:
		return fmt.Errorf("%w: CLEANUP_HISTORY_RETENTION_DURATION must not be negative", ErrConfig)
	case c.QuietPeriod < 0:
		return fmt.Errorf("%w: CLEANUP_QUIET_PERIOD must not be negative", ErrConfig)
	case c.Interval <= 0:
		return fmt.Errorf("%w: CLEANUP_INTERVAL must be positive", ErrConfig)
	case c.TimerThreshold <= 0:
		return fmt.Errorf("%w: CLEANUP_TIMER_THRESHOLD must be positive", ErrConfig)
	case c.CreditsPerBatch < 0:
		return fmt.Errorf("%w: CLEANUP_CREDITS_PER_BATCH must not be negative", ErrConfig)
	case c.ReadsPerQuery <= 0:
		return fmt.Errorf("%w: CLEANUP_READS_PER_QUERY must be positive", ErrConfig)
	case c.WritesPerCredit <= 0:
		return fmt.Errorf("%w: CLEANUP_WRITES_PER_CREDIT must be positive", ErrConfig)
	case c.DeleteFinalDeletedSnapshot:
		return fmt.Errorf("%w: CLEANUP_DELETE_FINAL_DELETED_SNAPSHOT=true is not supported: the final snapshot of a deleted connection stays (docs/COMPATIBILITY.md)", ErrConfig)
	}
	return nil
}

// Store is what the cleanup needs of an engine.
type Store interface {
	persistence.Pruner
	persistence.CleanupScan
}

// Cleaner runs the cleanup on one store.
type Cleaner struct {
	cfg   Config
	store Store
	log   zerolog.Logger
	// Now is the clock (tests move it); default time.Now.
	Now func() time.Time
	// Deleted is called after each delete with the pid and the sequence
	// number it pruned to (tests); may be nil.
	Deleted func(pid string, toSeq int64)
}

// New returns a Cleaner; cfg must be valid.
func New(cfg Config, store Store, log zerolog.Logger) *Cleaner {
	return &Cleaner{cfg: cfg, store: store, log: log, Now: time.Now}
}

// Stats count one run's work.
type Stats struct {
	PIDs    int // pids with something deleted
	Deletes int // Prune calls (credits spent)
}

// Run runs the cleanup until ctx ends: a quiet period, a run, and again.
// It returns at once when the cleanup is disabled.
func (c *Cleaner) Run(ctx context.Context) {
	if !c.cfg.Enabled {
		c.log.Info().Msg("journal cleanup disabled")
		return
	}
	last := ""
	for {
		quiet := c.quietPeriod()
		c.log.Debug().Dur("quiet_period", quiet).Str("from_pid", last).Msg("journal cleanup waits")
		select {
		case <-ctx.Done():
			return
		case <-time.After(quiet):
		}
		st, lastPID, err := c.RunOnce(ctx, last)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			c.log.Warn().Err(err).Str("last_pid", lastPID).Int("deletes", st.Deletes).
				Msg("journal cleanup run failed; the next run resumes after the last pid")
			last = lastPID
			continue
		}
		c.log.Info().Int("pids", st.PIDs).Int("deletes", st.Deletes).Msg("journal cleanup run complete")
		last = ""
	}
}

// quietPeriod is QuietPeriod plus a random share of it up to 1023/1024, as
// Ditto randomises it, so that members started together spread out.
func (c *Cleaner) quietPeriod() time.Duration {
	q := c.cfg.QuietPeriod
	return q + time.Duration(float64(q)*float64(rand.IntN(1024))/1024)
}

// RunOnce is one run over the pids above afterPID (all with ""), paced by
// credits. It returns the last pid it finished, from which a failed run
// resumes.
func (c *Cleaner) RunOnce(ctx context.Context, afterPID string) (Stats, string, error) {
	cr := newCredits(c.cfg)
	defer cr.stop()
	var st Stats
	last := afterPID
	for {
		var page []persistence.Snapshot
		before := c.Now().Add(-c.cfg.HistoryRetention).UnixMilli()
		err := c.store.SnapshotsBefore(ctx, "", last, before, c.cfg.ReadsPerQuery, func(s persistence.Snapshot) error {
			page = append(page, s)
			return nil
		})
		if err != nil {
			return st, last, fmt.Errorf("journal cleanup: list snapshots after %q: %w", last, err)
		}
		if len(page) == 0 {
			return st, last, nil
		}
		for _, snap := range page {
			n, err := c.cleanPID(ctx, cr, snap)
			st.Deletes += n
			if n > 0 {
				st.PIDs++
			}
			if err != nil {
				return st, last, err
			}
			last = snap.PID
		}
	}
}

// cleanPID deletes snap.PID's events below snap.Seq in batches of
// WritesPerCredit sequence numbers, one credit each, and its snapshots
// below snap.Seq with them (persistence.Pruner removes both below its
// bound); it returns the deletes made.
func (c *Cleaner) cleanPID(ctx context.Context, cr *credits, snap persistence.Snapshot) (int, error) {
	lowEvent, lowSnap, err := c.store.LowestSeqs(ctx, snap.PID)
	if err != nil {
		return 0, fmt.Errorf("journal cleanup of %s: %w", snap.PID, err)
	}
	top := snap.Seq - 1 // the event at snap.Seq stays
	var bounds []int64
	if lowEvent > 0 && lowEvent <= top {
		for to := lowEvent + int64(c.cfg.WritesPerCredit) - 1; ; to += int64(c.cfg.WritesPerCredit) {
			bounds = append(bounds, min(to, top))
			if to >= top {
				break
			}
		}
	} else if lowSnap > 0 && lowSnap < snap.Seq && top > 0 {
		// No events to go, older snapshots only.
		bounds = append(bounds, top)
	}
	for i, to := range bounds {
		if err := cr.take(ctx); err != nil {
			return i, err
		}
		began := time.Now()
		err := c.store.Prune(ctx, snap.PID, to)
		cr.observe(time.Since(began))
		if err != nil {
			return i, fmt.Errorf("journal cleanup of %s up to %d: %w", snap.PID, to, err)
		}
		c.log.Debug().Str("pid", snap.PID).Int64("to_seq", to).Msg("journal cleanup deleted")
		if c.Deleted != nil {
			c.Deleted(snap.PID, to)
		}
	}
	return len(bounds), nil
}

// credits is Ditto's credit source: CreditsPerBatch credits at the start
// and every Interval after, none for an interval in which a delete took
// TimerThreshold or longer.
type credits struct {
	cfg     Config
	ticker  *time.Ticker
	left    int
	slowest time.Duration
}

func newCredits(cfg Config) *credits {
	return &credits{cfg: cfg, ticker: time.NewTicker(cfg.Interval), left: cfg.CreditsPerBatch}
}

func (cr *credits) stop() { cr.ticker.Stop() }

func (cr *credits) observe(d time.Duration) { cr.slowest = max(cr.slowest, d) }

// take waits for a credit and spends it.
func (cr *credits) take(ctx context.Context) error {
	for cr.left == 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cr.ticker.C:
			if cr.slowest < cr.cfg.TimerThreshold {
				cr.left += cr.cfg.CreditsPerBatch
			}
			cr.slowest = 0
		}
	}
	cr.left--
	return nil
}
