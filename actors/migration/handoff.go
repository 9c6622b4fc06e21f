package migration

import (
	"context"
	"errors"
	"time"

	"github.com/dittoconn/dittoconn/persistence"
)

// The singleton moves whenever the cluster's members change (its fixed
// identity hashes to another member) and on a graceful stop. A run it
// was executing then stops after its current batch, as an abort does, and
// leaves a hand-off mark in the lease document; the next activation, on
// whichever member, resumes it. A crashed member leaves no mark: its lease
// expires and the operator resumes, as in Ditto.

// handoffOwner is the owner of a lease that marks a run to resume. It
// expires at once, so the resumed run takes it over like a stale lease.
const handoffOwner = "handoff"

// markHandoff leaves the mark after a run ended because its singleton
// stopped.
func (s *Service) markHandoff() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
	defer cancel()
	err := s.cfg.Store.InsertLease(ctx, persistence.Lease{Owner: handoffOwner, ExpiresAt: s.cfg.Now().UnixMilli()})
	if err != nil {
		s.log.Warn().Err(err).Msg("leaving the hand-off mark failed; the migration needs a resume")
		return
	}
	s.log.Info().Msg("encryption migration handed off; the next singleton resumes it")
}

// PickUpHandoff resumes a run another activation handed off. A lease held
// by a live run (the old activation finishing its batch) is watched until
// it turns into the mark or goes away, at most two lease lifetimes.
func (s *Service) PickUpHandoff() {
	giveUp := time.Now().Add(2*s.cfg.LeaseTTL + time.Second)
	for {
		if s.Running() {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
		lease, err := s.cfg.Store.LoadLease(ctx)
		cancel()
		switch {
		case errors.Is(err, persistence.ErrNotFound):
			return
		case err != nil:
			s.log.Warn().Err(err).Msg("reading the migration lease failed")
		case lease.Owner == handoffOwner:
			ctx, cancel := context.WithTimeout(context.Background(), s.cfg.StoreTimeout)
			reply := s.migrate(ctx, false, true)
			cancel()
			s.log.Info().Int32("status", reply.GetStatus()).Msg("encryption migration resumed after its singleton moved")
			return
		case lease.ExpiresAt < s.cfg.Now().UnixMilli():
			return // a crashed holder: the operator resumes
		}
		if time.Now().After(giveUp) {
			return
		}
		time.Sleep(s.cfg.LeaseTTL / 10)
	}
}
