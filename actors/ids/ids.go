// Package ids answers the connection-id listing commands
// (/user/connectivityRoot/connectionIdsRetrieval) straight from the store, as
// Ditto's ConnectionIdsRetrievalActor does: no grain is woken.
package ids

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/persistence"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Name is the actor's name under the root (its path's last element).
const Name = "connectionIdsRetrieval"

const pidPrefix = "connection:"

// Lister computes the listings.
type Lister struct {
	Heads   persistence.Heads
	Timeout time.Duration // bound when the command carries no deadline
	Logger  zerolog.Logger
}

// Props is the retrieval actor. Each request is served on its own goroutine so
// that one slow scan does not queue the others behind it.
func (l *Lister) Props() *actor.Props {
	return actor.PropsFromFunc(func(ctx actor.Context) {
		cmd, ok := ctx.Message().(*pb.Command)
		if !ok {
			return
		}
		sender, root := ctx.Sender(), ctx.ActorSystem().Root
		if sender == nil {
			return
		}
		go root.Send(sender, l.Handle(cmd))
	})
}

// Handle answers one command; a command of another type gets no answer, as
// Ditto's actor leaves it unhandled.
func (l *Lister) Handle(cmd *pb.Command) *pb.Reply {
	ctx, cancel := l.ctx(cmd)
	defer cancel()
	switch cmd.Type {
	case ditto.RetrieveAllConnectionIDs:
		ids, err := l.AllIDs(ctx)
		if err != nil {
			return l.failure(err)
		}
		return l.ok(cmd.Type, ids)
	case ditto.SudoRetrieveConnectionIDsTag:
		var body struct {
			Tag *string `json:"tag"`
		}
		if err := json.Unmarshal(cmd.Payload, &body); err != nil {
			return parseError(ditto.JSONInvalid(err.Error()))
		}
		if body.Tag == nil {
			return parseError(ditto.JSONFieldMissing("/tag"))
		}
		ids, err := l.IDsByTag(ctx, *body.Tag)
		if err != nil {
			return l.failure(err)
		}
		return l.ok(cmd.Type, ids)
	default:
		return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
	}
}

func (l *Lister) ctx(cmd *pb.Command) (context.Context, context.CancelFunc) {
	t := l.Timeout
	if t <= 0 {
		t = ditto.DefaultAskTimeout
	}
	return cmd.Context(t)
}

// AllIDs: ids whose newest snapshot is not deleted, plus ids whose newest
// event is not connectionDeleted; an id whose newest event is
// connectionDeleted is out. Sorted ascending.
func (l *Lister) AllIDs(ctx context.Context) ([]string, error) {
	live := map[string]bool{}
	err := l.Heads.LatestSnapshots(ctx, pidPrefix, func(s persistence.Snapshot) error {
		var head struct {
			Lifecycle string `json:"__lifecycle"`
		}
		if json.Unmarshal(s.Payload, &head) == nil && head.Lifecycle != "DELETED" {
			live[s.PID] = true
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = l.Heads.LatestEvents(ctx, pidPrefix, func(ev persistence.Event) error {
		live[ev.PID] = ev.Manifest != ditto.EventConnectionDeleted
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedIDs(live), nil
}

// IDsByTag: ids whose newest event carries tag.
func (l *Lister) IDsByTag(ctx context.Context, tag string) ([]string, error) {
	hit := map[string]bool{}
	err := l.Heads.LatestEvents(ctx, pidPrefix, func(ev persistence.Event) error {
		hit[ev.PID] = slices.Contains(ev.Tags, tag)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sortedIDs(hit), nil
}

func sortedIDs(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for pid, ok := range m {
		if ok && strings.HasPrefix(pid, pidPrefix) {
			out = append(out, strings.TrimPrefix(pid, pidPrefix))
		}
	}
	slices.Sort(out)
	return out
}

func (l *Lister) ok(cmdType string, ids []string) *pb.Reply {
	b, _ := json.Marshal(struct {
		Type          string   `json:"type"`
		Status        int      `json:"status"`
		ConnectionIDs []string `json:"connectionIds"`
	}{ditto.ResponseType(cmdType), http.StatusOK, ids})
	return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: http.StatusOK, Payload: b}
}

// failure is Ditto's connectivity.responses:errorResponse for a store failure.
func (l *Lister) failure(err error) *pb.Reply {
	l.Logger.Error().Err(err).Msg("loading connection ids failed")
	msg := "Failed to load connections ids from persistence: " + err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "Failed to load connections ids from persistence: timed out"
	}
	de := ditto.InternalError(msg)
	b, _ := json.Marshal(struct {
		Type    string          `json:"type"`
		Status  int             `json:"status"`
		Payload json.RawMessage `json:"payload"`
	}{"connectivity.responses:errorResponse", de.Status, de.JSON()})
	return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: int32(de.Status), Payload: b}
}

func parseError(de *ditto.Error) *pb.Reply {
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(de.Status), Payload: de.JSON()}
}
