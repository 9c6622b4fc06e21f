package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"

	"github.com/dittoconn/dittoconn/actors/connection"
	"github.com/dittoconn/dittoconn/internal/model"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// carriesConnection: commands whose identity is connection.id.
var carriesConnection = map[string]bool{
	ditto.CreateConnection: true, ditto.ModifyConnection: true, ditto.TestConnection: true,
}

// notForShard: types the connection shard region cannot route (they carry no
// connection id); Ditto drops them, so nobody answers.
var notForShard = map[string]bool{
	ditto.RetrieveAllConnectionIDs: true, ditto.SudoRetrieveConnectionIDsTag: true,
	ditto.MigrateEncryption: true, ditto.MigrateEncryptionStatus: true, ditto.MigrateEncryptionAbort: true,
}

// Dispatch routes cmd by actor path and waits for the answer, never past
// ctx's deadline. It implements gateway.Dispatcher.
func (s *System) Dispatch(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error) {
	cmd.SetDeadlineFrom(ctx)
	switch target {
	case ditto.PathConnectionShard:
		if notForShard[cmd.Type] {
			return nil, ditto.ErrNoRoute
		}
		id, bad := EntityID(cmd)
		if bad != nil {
			return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(bad.Status), Payload: bad.JSON()}, nil
		}
		cmd.EntityId = id
		return s.requestGrain(ctx, connection.Kind, id, cmd)
	case ditto.PathEncryptionMigration:
		return s.requestMigration(ctx, cmd)
	case ditto.PathConnectionIDs:
		return s.requestLocal(ctx, s.idsPID, cmd)
	default:
		return nil, ditto.ErrNoRoute
	}
}

// EntityID reads the connection id a command is for: connectionId, or the id
// of the connection it carries (which must parse, as Ditto parses the command
// before routing it).
func EntityID(cmd *pb.Command) (string, *ditto.Error) {
	var body struct {
		ConnectionID *string         `json:"connectionId"`
		Connection   json.RawMessage `json:"connection"`
	}
	if err := json.Unmarshal(cmd.Payload, &body); err != nil {
		return "", ditto.New(400, ditto.CodeJSONFormatInvalid, err.Error(), "")
	}
	if carriesConnection[cmd.Type] {
		if len(body.Connection) == 0 || string(body.Connection) == "null" {
			return "", ditto.JSONFieldMissing("/connection")
		}
		c, err := model.ParseCommand(body.Connection)
		if err != nil {
			if de, ok := ditto.As(err); ok {
				return "", de
			}
			return "", ditto.JSONInvalid(err.Error())
		}
		return c.ID, nil
	}
	if body.ConnectionID == nil {
		return "", ditto.JSONFieldMissing("/connectionId")
	}
	if !model.ValidID(*body.ConnectionID) {
		return "", ditto.ConnectionIDInvalid(*body.ConnectionID)
	}
	return *body.ConnectionID, nil
}

type result struct {
	reply *pb.Reply
	err   error
}

// requestGrain calls the grain with cluster.Request (it retries after a
// stale activation; RequestFuture does not) and gives up at ctx's deadline:
// protoactor's own timeout is not a deadline. When members leave while it
// waits, it asks again: a request to a dead member's address is held, not
// failed, for as long as protoactor redials it. The grains of live members
// do not move when others leave, so a second ask of a live grain lands
// behind the first in its mailbox and the first answer wins.
func (s *System) requestGrain(ctx context.Context, kind, id string, cmd *pb.Command) (*pb.Reply, error) {
	left := s.members.leftSignal()
	ch := make(chan result, 2)
	// Fast path for a grain whose PID is cached: one future bounded by the
	// deadline. A stale PID (the grain passivated) answers dead letter at
	// once; then the cluster path activates it.
	if pid, ok := s.cluster.PidCache.Get(id, kind); ok {
		go func() {
			v, err := s.actors.Root.RequestFuture(pid, cmd, remaining(ctx)).Result()
			if err != nil && !errors.Is(err, actor.ErrTimeout) {
				s.cluster.PidCache.RemoveByValue(id, kind, pid)
				s.askCluster(ctx, kind, id, cmd, ch)
				return
			}
			send(ch, toResult(v, err))
		}()
	} else {
		go s.askCluster(ctx, kind, id, cmd, ch)
	}
	for {
		select {
		case r := <-ch:
			if r.err != nil && ctx.Err() != nil {
				return nil, ctx.Err()
			}
			if errors.Is(r.err, actor.ErrTimeout) {
				return nil, context.DeadlineExceeded
			}
			return r.reply, r.err
		case <-left:
			left = s.members.leftSignal()
			// Look the grain up afresh (protoactor has dropped the dead
			// member's cached PIDs by now; this one may be a live member's).
			s.cluster.PidCache.Remove(id, kind)
			go s.askCluster(ctx, kind, id, cmd, ch)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// askCluster is one cluster.Request bounded by ctx's remaining time.
func (s *System) askCluster(ctx context.Context, kind, id string, cmd *pb.Command, ch chan<- result) {
	v, err := s.cluster.Request(id, kind, cmd,
		cluster.WithTimeout(remaining(ctx)),
		cluster.WithRetryCount(3),
		cluster.WithRetryAction(func(i int) int {
			time.Sleep(time.Duration(i+1) * 20 * time.Millisecond)
			return i + 1
		}))
	send(ch, toResult(v, err))
}

// send delivers r unless the caller has its answer already.
func send(ch chan<- result, r result) {
	select {
	case ch <- r:
	default:
	}
}

// requestLocal asks a local root actor.
func (s *System) requestLocal(ctx context.Context, pid *actor.PID, cmd *pb.Command) (*pb.Reply, error) {
	timeout := remaining(ctx)
	ch := make(chan result, 1)
	go func() {
		v, err := s.actors.Root.RequestFuture(pid, cmd, timeout).Result()
		ch <- toResult(v, err)
	}()
	return wait(ctx, ch)
}

func toResult(v any, err error) result {
	if err != nil {
		return result{err: err}
	}
	r, ok := v.(*pb.Reply)
	if !ok {
		return result{err: fmt.Errorf("actors: unexpected reply %T", v)}
	}
	return result{reply: r}
}

func wait(ctx context.Context, ch <-chan result) (*pb.Reply, error) {
	select {
	case r := <-ch:
		if r.err != nil && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return r.reply, r.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// remaining is the time left before ctx's deadline (Ditto's default ask
// timeout when it has none).
func remaining(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return ditto.DefaultAskTimeout
}
