package migration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/document"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// journalPrefix is the pointer prefix of journal event payloads.
const journalPrefix = "connection"

// plan is what a run does, chosen from the configuration (Ditto's mode
// table, except that encryption off with both keys set disables, as the
// operator asked, instead of re-encrypting).
type plan struct {
	mode         fieldcrypto.Mode
	transform    fieldcrypto.Transform
	values       fieldcrypto.ValuesFunc // transform on the values alone
	bson         *document.BSONRewriter // nil: always the JSON way
	snapPaths    []string
	journalPaths []string
	batch        int
	perMinute    int
}

func newPlan(s fieldcrypto.Settings) (*plan, error) {
	cur, old, err := s.Ciphers()
	if err != nil {
		return nil, err
	}
	p := &plan{batch: s.BatchSize, perMinute: s.MaxDocsPerMinute}
	var f *fieldcrypto.Fields
	switch {
	case s.Enabled && cur != nil && old == nil:
		f = &fieldcrypto.Fields{Current: cur, Pointers: s.Pointers}
		p.mode, p.transform, p.values = fieldcrypto.ModeInitialEncryption, f.InitialEncryption, f.InitialEncryptionValues
	case s.Enabled && cur != nil && old != nil:
		f = &fieldcrypto.Fields{Current: cur, Old: old, Pointers: s.Pointers}
		p.mode, p.transform, p.values = fieldcrypto.ModeKeyRotation, f.RotateKey, f.RotateKeyValues
	case !s.Enabled && old != nil && cur == nil:
		f = &fieldcrypto.Fields{Old: old, Pointers: s.Pointers}
		p.mode, p.transform, p.values = fieldcrypto.ModeDisable, f.DisableEncryption, f.DisableEncryptionValues
	case !s.Enabled && old != nil:
		// Both keys set, encryption off: decrypt with either key.
		f = &fieldcrypto.Fields{Current: old, Old: cur, Pointers: s.Pointers}
		p.mode, p.transform, p.values = fieldcrypto.ModeDisable, decryptAll(f), decryptAllValues(f)
	default:
		return nil, errors.New("migration: no key to migrate with")
	}
	if p.bson, err = document.NewBSONRewriter(f, journalPrefix, p.values); err != nil {
		return nil, err
	}
	ptrs := s.Pointers
	if ptrs == nil {
		ptrs = fieldcrypto.DefaultPointers
	}
	for _, ptr := range ptrs {
		dotted := strings.Join(strings.FieldsFunc(ptr, func(r rune) bool { return r == '/' }), ".")
		p.snapPaths = append(p.snapPaths, document.FieldSnapshot+"."+dotted)
		p.journalPaths = append(p.journalPaths, document.FieldEvents+"."+document.FieldPayload+"."+journalPrefix+"."+dotted)
	}
	return p, nil
}

// decryptAll writes plaintext, decrypting each value with whichever key
// reads it; a value neither key reads leaves the document as it is
// (skipped, as Ditto's disable treats it as plaintext already).
func decryptAll(f *fieldcrypto.Fields) fieldcrypto.Transform {
	return func(doc []byte, prefix string) ([]byte, bool, error) {
		out, err := f.Decrypt(doc, prefix)
		if err != nil {
			if errors.Is(err, fieldcrypto.ErrDecrypt) {
				return doc, false, nil
			}
			return nil, false, err
		}
		if bytes.Equal(out, doc) {
			return doc, false, nil
		}
		return out, true, nil
	}
}

// decryptAllValues is decryptAll on the values.
func decryptAllValues(f *fieldcrypto.Fields) fieldcrypto.ValuesFunc {
	return func(vals []fieldcrypto.Value) (bool, error) {
		changed, err := f.DecryptValues(vals)
		if errors.Is(err, fieldcrypto.ErrDecrypt) {
			return false, nil
		}
		return changed, err
	}
}

// run is one migration run, executed on its own goroutine.
type run struct {
	svc    *Service
	plan   *plan
	p      persistence.MigrationProgress
	dryRun bool
	abort  chan struct{}
	log    zerolog.Logger

	owner   string
	lost    chan struct{} // closed when the lease was lost
	bucket  tokenBucket
	aborted bool
}

func (r *run) store() persistence.Migration { return r.svc.cfg.Store }

func (r *run) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), r.svc.cfg.StoreTimeout)
}

func (r *run) now() time.Time { return r.svc.cfg.Now() }

func (r *run) execute(done chan struct{}) {
	defer close(done)
	defer func() { r.svc.finish(r.p) }()
	r.owner = uuid.NewString()
	if !r.acquireLease() {
		return
	}
	stopRenew := r.renewLease()
	defer func() {
		stopRenew()
		ctx, cancel := r.ctx()
		defer cancel()
		if err := r.store().DeleteLease(ctx, r.owner); err != nil {
			r.log.Warn().Err(err).Msg("releasing the migration lease failed")
		}
	}()
	r.bucket = newTokenBucket(r.plan.perMinute, r.now)

	if r.p.Phase == PhaseSnapshots {
		r.phase(document.SnapshotCollection)
		if !r.aborted {
			r.p.Phase = PhaseJournal
			r.p.UpdatedAt = r.svc.now()
			r.svc.update(r.p)
		}
	}
	if !r.aborted && r.p.Phase == PhaseJournal {
		r.phase(document.JournalCollection)
		if !r.aborted {
			r.p.Phase = PhaseCompleted
			r.p.UpdatedAt = r.svc.now()
		}
	}
	if !r.dryRun {
		r.saveWithRetry(2)
	}
	r.log.Info().Str("phase", r.p.Phase).Bool("aborted", r.aborted).
		Int64("snapshots_processed", r.p.SnapshotsProcessed).Int64("snapshots_skipped", r.p.SnapshotsSkipped).Int64("snapshots_failed", r.p.SnapshotsFailed).
		Int64("journal_processed", r.p.JournalProcessed).Int64("journal_skipped", r.p.JournalSkipped).Int64("journal_failed", r.p.JournalFailed).
		Msg("encryption migration ended")
}

func (r *run) stopping() bool {
	select {
	case <-r.abort:
		return true
	case <-r.lost:
		return true
	default:
		return false
	}
}

// prepared is one batch read and rewritten, ready to be written.
type prepared struct {
	batch   [][]byte
	results []rewritten
	scanErr error // the scan failed: the run ends
	stop    bool  // aborted or the lease was lost before the batch
}

// phase processes one collection batch by batch until it is done or the
// run is stopped; a stop takes effect between batches. Reading and rewriting
// the next batch overlaps with writing the current one (a two-stage
// pipeline), so the CPU work of the crypto runs while the store syncs.
func (r *run) phase(coll string) {
	snaps := coll == document.SnapshotCollection
	paths, lastID := r.plan.journalPaths, &r.p.LastJournalID
	lastPID := &r.p.LastJournalPID
	processed, skipped, failed := &r.p.JournalProcessed, &r.p.JournalSkipped, &r.p.JournalFailed
	if snaps {
		paths, lastID, lastPID = r.plan.snapPaths, &r.p.LastSnapshotID, &r.p.LastSnapshotPID
		processed, skipped, failed = &r.p.SnapshotsProcessed, &r.p.SnapshotsSkipped, &r.p.SnapshotsFailed
	}
	next := make(chan prepared, 1)
	quit := make(chan struct{}) // the writer stopped early
	defer close(quit)
	go r.prepare(coll, snaps, *lastID, paths, next, quit)

	for {
		if r.stopping() {
			r.aborted = true
			return
		}
		pb, ok := <-next
		switch {
		case !ok:
			return // the collection is done
		case pb.stop:
			r.aborted = true
			return
		case pb.scanErr != nil:
			// As Ditto's stream error: the run ends, the stored progress is
			// what the last batch saved.
			r.log.Error().Err(pb.scanErr).Str("collection", coll).Msg("encryption migration scan failed")
			r.aborted = true
			return
		}
		batch := pb.batch
		var writes [][]byte
		for i, res := range pb.results {
			doc, out, changed, err := batch[i], res.out, res.changed, res.err
			switch {
			case err != nil:
				*failed++
				id, _ := document.IDString(doc)
				r.log.Error().Err(err).Str("collection", coll).Str("_id", id).Str("pid", document.PIDOf(doc)).Msg("document not migrated")
			case changed:
				*processed++
				writes = append(writes, out)
			default:
				*skipped++
			}
		}
		last := batch[len(batch)-1]
		*lastID, _ = document.IDString(last)
		*lastPID = document.PIDOf(last)
		r.p.UpdatedAt = r.svc.now()
		saved := false
		if !r.dryRun && len(writes) > 0 {
			ctx, cancel := r.ctx()
			var n int
			var err error
			if pc, ok := r.store().(persistence.ProgressCommitter); ok {
				// documents and progress in one durable write
				n, err = pc.ReplaceByIDWithProgress(ctx, coll, writes, r.p)
				saved = err == nil
			} else {
				n, err = r.store().ReplaceByID(ctx, coll, writes)
			}
			cancel()
			switch {
			case err != nil:
				r.log.Error().Err(err).Str("collection", coll).Int("documents", len(writes)).Msg("bulk replace failed")
				*processed -= int64(len(writes))
				*failed += int64(len(writes))
			case n < len(writes):
				r.log.Warn().Str("collection", coll).Int("sent", len(writes)).Int("replaced", n).Msg("fewer documents replaced than sent")
			}
		}
		if !r.dryRun && !saved {
			ctx, cancel := r.ctx()
			if err := r.store().SaveProgress(ctx, r.p); err != nil {
				r.log.Error().Err(err).Msg("saving the migration progress failed")
			}
			cancel()
		}
		r.svc.update(r.p)
	}
}

// prepare reads batches after `after`, throttled, and rewrites them; it
// closes next when the collection is done and stops when the writer quits.
func (r *run) prepare(coll string, snaps bool, after string, paths []string, next chan<- prepared, quit <-chan struct{}) {
	defer close(next)
	send := func(p prepared) bool {
		select {
		case next <- p:
			return true
		case <-quit:
			return false
		}
	}
	for {
		if r.stopping() {
			send(prepared{stop: true})
			return
		}
		var batch [][]byte
		ctx, cancel := r.ctx()
		err := r.store().ScanAfterID(ctx, coll, after, paths, r.plan.batch, func(doc []byte) error {
			batch = append(batch, doc)
			return nil
		})
		cancel()
		if err != nil {
			send(prepared{scanErr: err})
			return
		}
		if len(batch) == 0 {
			return
		}
		if !r.bucket.take(len(batch), r.abort) {
			send(prepared{stop: true})
			return
		}
		after, _ = document.IDString(batch[len(batch)-1])
		if !send(prepared{batch: batch, results: r.rewriteAll(snaps, batch)}) {
			return
		}
	}
}

type rewritten struct {
	out     []byte
	changed bool
	err     error
}

// rewriteAll rewrites a batch on every core: decrypting and encrypting is
// the migration's CPU work, and the documents are independent. Results keep
// the batch's order.
func (r *run) rewriteAll(snaps bool, batch [][]byte) []rewritten {
	res := make([]rewritten, len(batch))
	workers := min(runtime.GOMAXPROCS(0), len(batch))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < len(batch); i = int(next.Add(1)) - 1 {
				out, changed, err := r.plan.rewrite(snaps, batch[i])
				res[i] = rewritten{out, changed, err}
			}
		}()
	}
	wg.Wait()
	return res
}

// rewrite rewrites one document: in BSON directly where it can, else
// through JSON (both decide the same, see document.BSONRewriter). A document with
// nothing to rewrite comes back unchanged without an error (skipped).
func (p *plan) rewrite(snaps bool, doc []byte) ([]byte, bool, error) {
	if b := p.bson; b != nil {
		var out []byte
		var changed bool
		var err error
		if snaps {
			out, changed, err = b.Snapshot(doc)
		} else {
			out, changed, err = b.Journal(doc)
		}
		if !errors.Is(err, document.ErrNeedsJSON) {
			if errors.Is(err, document.ErrNothingToRewrite) {
				return nil, false, nil
			}
			return out, changed, err
		}
	}
	return p.rewriteJSON(snaps, doc)
}

// rewriteJSON rewrites through JSON: the payload is converted, transformed
// and converted back.
func (p *plan) rewriteJSON(snaps bool, doc []byte) ([]byte, bool, error) {
	var out []byte
	var changed bool
	var err error
	if snaps {
		out, changed, err = document.RewriteSnapshot(doc, func(js json.RawMessage) (json.RawMessage, bool, error) {
			return p.transform(js, "")
		})
	} else {
		out, changed, err = document.RewriteJournal(doc, func(js json.RawMessage) (json.RawMessage, bool, error) {
			return p.transform(js, journalPrefix)
		})
	}
	if errors.Is(err, document.ErrNothingToRewrite) {
		return nil, false, nil
	}
	return out, changed, err
}

func (r *run) saveWithRetry(retries int) {
	for i := 0; ; i++ {
		ctx, cancel := r.ctx()
		err := r.store().SaveProgress(ctx, r.p)
		cancel()
		if err == nil {
			return
		}
		if i >= retries {
			r.log.Error().Err(err).Msg("saving the migration progress failed")
			return
		}
	}
}

// acquireLease inserts the lease, breaking one whose holder stopped
// renewing it; it waits at most two lease lifetimes for a live holder.
func (r *run) acquireLease() bool {
	ttl := r.svc.cfg.LeaseTTL
	giveUp := time.Now().Add(2*ttl + time.Second)
	for {
		ctx, cancel := r.ctx()
		err := r.store().InsertLease(ctx, persistence.Lease{Owner: r.owner, ExpiresAt: r.now().Add(ttl).UnixMilli()})
		if err == nil {
			cancel()
			r.lost = make(chan struct{})
			return true
		}
		if errors.Is(err, persistence.ErrConflict) {
			if held, lerr := r.store().LoadLease(ctx); lerr == nil && held.ExpiresAt < r.now().UnixMilli() {
				r.log.Warn().Msg("breaking an expired migration lease")
				if derr := r.store().DeleteLease(ctx, held.Owner); derr != nil {
					r.log.Warn().Err(derr).Msg("breaking the lease failed")
				}
				cancel()
				continue
			}
		} else {
			r.log.Error().Err(err).Msg("taking the migration lease failed")
		}
		cancel()
		if time.Now().After(giveUp) {
			r.log.Error().Msg("encryption migration not run: another run holds the lease")
			r.aborted = true
			return false
		}
		select {
		case <-r.abort:
			r.aborted = true
			return false
		case <-time.After(ttl / 10):
		}
	}
}

// renewLease renews the lease every third of its lifetime until stopped;
// losing it stops the run after the current batch.
func (r *run) renewLease() (stop func()) {
	ttl := r.svc.cfg.LeaseTTL
	quit, ended := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
				ctx, cancel := r.ctx()
				err := r.store().RenewLease(ctx, r.owner, r.now().Add(ttl).UnixMilli())
				cancel()
				if errors.Is(err, persistence.ErrNotFound) {
					r.log.Error().Msg("encryption migration lost its lease; stopping after this batch")
					close(r.lost)
					return
				}
				if err != nil {
					r.log.Warn().Err(err).Msg("renewing the migration lease failed")
				}
			}
		}
	}()
	return func() { close(quit); <-ended }
}

// tokenBucket throttles to perMinute documents a minute with bursts up to
// perMinute, like Pekko's throttle(n, 1 minute); 0 means no limit.
type tokenBucket struct {
	perMinute int
	tokens    float64
	last      time.Time
	now       func() time.Time
}

func newTokenBucket(perMinute int, now func() time.Time) tokenBucket {
	return tokenBucket{perMinute: perMinute, tokens: float64(perMinute), last: now(), now: now}
}

// take waits until n tokens are there (a batch larger than the burst waits
// for the whole batch's share); false when aborted while waiting.
func (b *tokenBucket) take(n int, abort <-chan struct{}) bool {
	if b.perMinute <= 0 {
		return true
	}
	rate := float64(b.perMinute) / float64(time.Minute)
	for {
		now := b.now()
		b.tokens = min(float64(b.perMinute), b.tokens+float64(now.Sub(b.last))*rate)
		b.last = now
		need := float64(min(n, b.perMinute))
		if b.tokens >= need {
			b.tokens -= float64(n)
			return true
		}
		wait := time.Duration((need - b.tokens) / rate)
		select {
		case <-abort:
			return false
		case <-time.After(wait):
		}
	}
}
