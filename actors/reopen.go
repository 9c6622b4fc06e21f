package actors

import (
	"context"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"

	"github.com/dittoconn/dittoconn/actors/connection"
	"github.com/dittoconn/dittoconn/actors/migration"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// reopenLoop wakes, in the background, every stored connection whose
// desired status is open and whose grain this member hosts: once at start
// and again after every change of the cluster's members, since grains move
// with the members (a dead member's to survivors, some to a new member)
// and nothing else would reconnect them. A woken grain reconnects after its
// recovery. Ditto wakes one per second; here up to parallelism at a time.
func (s *System) reopenLoop(ctx context.Context) {
	defer close(s.reopenDone)
	first := true
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.members.changed:
		}
		if !first {
			// Let the members settle (and the old hosts stop the grains
			// they no longer own) before waking.
			select {
			case <-ctx.Done():
				return
			case <-time.After(500 * time.Millisecond):
			}
			select {
			case <-s.members.changed:
			default:
			}
		}
		first = false
		s.reopenOwned(ctx)
		s.touchMigration()
	}
}

// touchMigration activates the migration singleton wherever it now lives,
// so that it resumes a run that was handed off when it moved.
func (s *System) touchMigration() {
	if _, ok := s.cluster.TryGetClusterKind(migration.Kind); !ok {
		return
	}
	_, err := s.cluster.Request(migration.Identity, migration.Kind,
		&pb.Command{Type: ditto.MigrateEncryptionStatus, Headers: map[string]string{ditto.HeaderResponseRequired: "false"}},
		cluster.WithTimeout(5*time.Second), cluster.WithRetryCount(2))
	if err != nil {
		s.log.Debug().Err(err).Msg("touching the migration singleton failed")
	}
}

func (s *System) reopenOwned(ctx context.Context) {
	parallelism := s.reopenPar
	if parallelism <= 0 {
		parallelism = DefaultReopenParallelism
	}
	start := time.Now()
	lctx, lcancel := context.WithTimeout(ctx, time.Minute)
	all, err := s.lister.IDsByTag(lctx, connection.AlwaysAliveTag)
	lcancel()
	if err != nil {
		if ctx.Err() == nil {
			s.log.Error().Err(err).Msg("listing open connections failed; they reopen on their next command")
		}
		return
	}
	idList := all[:0:0]
	for _, id := range all {
		if s.members.owns(id) {
			idList = append(idList, id)
		}
	}
	jobs := make(chan string)
	var wg sync.WaitGroup
	for i := 0; i < min(parallelism, len(idList)); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range jobs {
				s.wake(id)
			}
		}()
	}
feed:
	for _, id := range idList {
		select {
		case jobs <- id:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if len(idList) > 0 {
		s.log.Info().Int("connections", len(idList)).Int("members", s.members.count()).
			Dur("took", time.Since(start)).Msg("woke stored open connections")
	}
}

// wake activates one grain (its recovery starts its clients).
func (s *System) wake(id string) {
	_, err := s.cluster.Request(id, connection.Kind, &pb.Command{Type: connection.WakeType, EntityId: id},
		cluster.WithTimeout(30*time.Second), cluster.WithRetryCount(3))
	if err != nil {
		s.log.Warn().Err(err).Str("connection_id", id).Msg("waking connection failed")
	}
}
