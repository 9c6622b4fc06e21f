package gateway

import (
	"context"

	pb "github.com/dittoconn/dittoconn/proto"
)

// Dispatcher delivers a command to the actor at an actor path and waits for
// its reply. It is declared here, where it is used; actors implements it.
//
// Dispatch must return by ctx's deadline. It returns ditto.ErrNoRoute when no
// actor lives at target (the gateway answers 408 with body null, as Ditto
// does when nobody answers), and ctx.Err() when the deadline passed first.
type Dispatcher interface {
	Dispatch(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error)
}
