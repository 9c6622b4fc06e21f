package actors

import (
	"context"
	"sync"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/protocol"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Well-known names of the per-member actors that other members address
// directly (not grains: every member has exactly one of each).
const (
	piggybackName = "dittoconn-piggyback"
	relayName     = "dittoconn-signals"
)

// Dispatcher is this member's own routing of commands by actor path (the
// System): what a forwarded piggyback command runs against.
type Dispatcher interface {
	Dispatch(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error)
}

// PiggybackHandler runs a piggyback command that another member's gateway
// forwarded, as this instance's devops receiver, against local, and returns
// this instance's answer (NO_ANSWER when it is not addressed or does not
// answer). The gateway decides (gateway.ServeForwarded); internal/service
// passes it in Config.Piggyback, so actors never import the gateway.
type PiggybackHandler func(ctx context.Context, local Dispatcher, cmd *pb.Command) *pb.Reply

// piggybackReceiver answers forwarded piggyback commands off the actor's
// goroutine: a command may wait for a grain for its whole timeout.
type piggybackReceiver struct {
	handler PiggybackHandler // nil: every forwarded command gets NO_ANSWER
	local   Dispatcher
}

func (r *piggybackReceiver) Receive(ctx actor.Context) {
	cmd, ok := ctx.Message().(*pb.Command)
	if !ok {
		return
	}
	sender := ctx.Sender()
	if sender == nil {
		return
	}
	root := ctx.ActorSystem().Root
	if r.handler == nil {
		root.Send(sender, &pb.Reply{Kind: pb.Reply_NO_ANSWER})
		return
	}
	go func() {
		cctx, cancel := cmd.Context(ditto.DefaultAskTimeout) // the caller's deadline
		defer cancel()
		reply := r.handler(cctx, r.local, cmd)
		if reply == nil {
			reply = &pb.Reply{Kind: pb.Reply_NO_ANSWER}
		}
		root.Send(sender, reply)
	}()
}

// Forward sends a piggyback command to every other member and returns how
// many it went to and a channel with one reply per member (NO_ANSWER for a
// member that did not answer by ctx's deadline), closed after the last.
func (s *System) Forward(ctx context.Context, cmd *pb.Command) (int, <-chan *pb.Reply) {
	peers := s.members.Peers()
	out := make(chan *pb.Reply, len(peers))
	if len(peers) == 0 {
		close(out)
		return 0, out
	}
	cmd.SetDeadlineFrom(ctx)
	timeout := remaining(ctx)
	var wg sync.WaitGroup
	for _, addr := range peers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			v, err := s.actors.Root.RequestFuture(actor.NewPID(addr, piggybackName), cmd, timeout).Result()
			r, ok := v.(*pb.Reply)
			if err != nil || !ok {
				if err != nil && ctx.Err() == nil {
					s.log.Debug().Err(err).Str("member", addr).Msg("forwarded piggyback command got no answer")
				}
				r = &pb.Reply{Kind: pb.Reply_NO_ANSWER}
			}
			out <- r
		}()
	}
	go func() { wg.Wait(); close(out) }()
	return len(peers), out
}

// clusterBus delivers every signal to this member's bus and relays it to
// every other member's, where the targets subscribed to its stream get it.
// A direct relay to each member's well-known actor is one hop per signal;
// protoactor's cluster pub/sub routes through a topic grain on some third
// member and acknowledges every batch, for no gain at this size.
type clusterBus struct {
	local   bus.Bus
	members *members
	root    *actor.RootContext
}

var _ bus.Bus = (*clusterBus)(nil)

func (b *clusterBus) Publish(sig *bus.Signal) int {
	n := b.local.Publish(sig)
	peers := b.members.Peers()
	if len(peers) == 0 {
		return n
	}
	msg := &pb.Signal{Stream: sig.Stream, Origin: sig.Origin, Message: protocol.Encode(sig.Message)}
	for _, addr := range peers {
		b.root.Send(actor.NewPID(addr, relayName), msg)
	}
	return n + len(peers)
}

func (b *clusterBus) Subscribe(stream string, h bus.Handler) func() {
	return b.local.Subscribe(stream, h)
}

// signalRelay publishes signals from other members on this member's bus.
type signalRelay struct {
	local bus.Bus
	log   func(err error, stream string)
}

func (r *signalRelay) Receive(ctx actor.Context) {
	msg, ok := ctx.Message().(*pb.Signal)
	if !ok {
		return
	}
	m, err := protocol.Decode(msg.Message)
	if err != nil {
		r.log(err, msg.Stream)
		return
	}
	topic, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		r.log(err, msg.Stream)
		return
	}
	r.local.Publish(&bus.Signal{Message: m, Topic: topic, Stream: msg.Stream, Origin: msg.Origin})
}
