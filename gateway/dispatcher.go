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

// Peers reaches the other members of a cluster of several connectivity
// instances (Config.Peers; actors implements it). A piggyback command that
// Ditto's pub/sub would deliver to several instances is forwarded to the
// other members (Command.Target, Service and Instance set); each decides,
// as its pub/sub subscription would, whether it is addressed, and answers
// with Reply.Instance set, or NO_ANSWER.
//
// Forward returns how many members the command went to and a channel with
// one reply per member, closed after the last; it must not outlast ctx.
type Peers interface {
	Forward(ctx context.Context, cmd *pb.Command) (int, <-chan *pb.Reply)
}
