package actors

import (
	"context"

	"github.com/asynkron/protoactor-go/cluster"

	"github.com/dittoconn/dittoconn/actors/migration"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// migrationKinds is the encryption-migration kind when cfg asks for it:
// Ditto starts the singleton only when encryption is on or an old key is
// set, and then its path has an answer.
func migrationKinds(cfg *migration.Config) []*cluster.Kind {
	if cfg == nil {
		return nil
	}
	return []*cluster.Kind{migration.NewKind(*cfg)}
}

// requestMigration calls the singleton grain (one fixed identity) with the
// caller's deadline; without the singleton the path has no answer.
func (s *System) requestMigration(ctx context.Context, cmd *pb.Command) (*pb.Reply, error) {
	if _, ok := s.cluster.TryGetClusterKind(migration.Kind); !ok {
		return nil, ditto.ErrNoRoute
	}
	return s.requestGrain(ctx, migration.Kind, migration.Identity, cmd)
}
