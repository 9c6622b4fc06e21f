package gateway

import (
	"context"
	"net/http"
	"sync"
	"testing"

	"github.com/rs/zerolog"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// fakePeers is a cluster of one other member, instance "2", which answers
// every forwarded command with peerJSON (or NO_ANSWER when silent).
type fakePeers struct {
	mu        sync.Mutex
	forwarded []*pb.Command
	silent    bool
}

const peerJSON = `{"type":"connectivity.responses:retrieveConnection","status":200,"from":"2"}`

func (p *fakePeers) Forward(_ context.Context, cmd *pb.Command) (int, <-chan *pb.Reply) {
	p.mu.Lock()
	p.forwarded = append(p.forwarded, cmd)
	p.mu.Unlock()
	out := make(chan *pb.Reply, 1)
	if p.silent {
		out <- &pb.Reply{Kind: pb.Reply_NO_ANSWER}
	} else {
		out <- &pb.Reply{Kind: pb.Reply_RESPONSE, Status: http.StatusOK, Payload: []byte(peerJSON), Instance: "2"}
	}
	close(out)
	return 1, out
}

func (p *fakePeers) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.forwarded)
}

// TestPeersGivenAtConstruction: with Config.Peers, a command several
// instances receive is forwarded and the answers aggregated; a command only
// this instance receives is not forwarded; one for another instance is only
// forwarded.
func TestPeersGivenAtConstruction(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		headers   string
		silent    bool
		forwarded bool
		local     bool
		want      string // "" means 408 null
	}{
		{"service-wide, aggregated", "/devops/piggyback/connectivity", `{}`, false, true, true,
			`{"connectivity":{"1":` + responseJSON + `,"2":` + peerJSON + `}}`},
		{"service-wide, peer silent", "/devops/piggyback/connectivity", `{}`, true, true, true,
			`{"connectivity":{"1":` + responseJSON + `}}`},
		{"this instance", "/devops/piggyback/connectivity/1", `{}`, false, false, true,
			`{"connectivity":{"1":` + responseJSON + `}}`},
		{"another instance", "/devops/piggyback/connectivity/2", `{}`, false, true, false,
			`{"connectivity":{"2":` + peerJSON + `}}`},
		{"another instance, silent", "/devops/piggyback/connectivity/2", `{}`, true, true, false, ""},
		{"group topic", "/devops/piggyback/connectivity", `{"is-group-topic":true}`, false, false, true,
			`{"connectivity":{"1":` + responseJSON + `}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(responseJSON)
			peers := &fakePeers{silent: tt.silent}
			cfg := testConfig(t)
			cfg.Peers = peers
			rec := serve(t, New(cfg, d), request{path: tt.path, body: envelopeBody(shard, tt.headers, retrieveCmd)})
			if tt.want == "" {
				assert408(t, rec)
			} else {
				assertStatus(t, rec, http.StatusOK)
				assertJSONBody(t, rec, tt.want)
			}
			if got := peers.count() == 1; got != tt.forwarded {
				t.Fatalf("forwarded = %v, want %v", got, tt.forwarded)
			}
			if got := len(d.recorded()) == 1; got != tt.local {
				t.Fatalf("ran locally = %v, want %v", got, tt.local)
			}
		})
	}
}

// TestServeForwarded: a forwarded command runs on this member's Dispatcher
// only when this instance would receive it, and answers with its instance.
func TestServeForwarded(t *testing.T) {
	tests := []struct {
		name     string
		service  string
		instance string
		headers  map[string]string
		answered bool
	}{
		{"service-wide", ditto.ServiceName, "", nil, true},
		{"this instance", ditto.ServiceName, testInstance, nil, true},
		{"another instance", ditto.ServiceName, "2", nil, false},
		{"another service", "things", "", nil, false},
		{"instance, group topic", ditto.ServiceName, testInstance, map[string]string{ditto.HeaderIsGroupTopic: "true"}, false},
	}
	serveForwarded := ServeForwarded(testInstance, zerolog.New(zerolog.NewTestWriter(t)))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(responseJSON)
			reply := serveForwarded(context.Background(), d, &pb.Command{Type: ditto.RetrieveConnection, Headers: tt.headers,
				Payload: []byte(retrieveCmd), Target: shard, Service: tt.service, Instance: tt.instance})
			if !tt.answered {
				if reply.GetKind() != pb.Reply_NO_ANSWER || len(d.recorded()) != 0 {
					t.Fatalf("reply %v after %d dispatches, want NO_ANSWER and none", reply, len(d.recorded()))
				}
				return
			}
			if reply.GetKind() != pb.Reply_RESPONSE || reply.GetInstance() != testInstance || reply.GetStatus() != http.StatusOK {
				t.Fatalf("reply %v, want RESPONSE from instance %s", reply, testInstance)
			}
			assertJSONEqual(t, reply.GetPayload(), []byte(responseJSON))
			if c := d.onlyCall(t); c.target != shard {
				t.Fatalf("dispatched to %q", c.target)
			}
		})
	}
}
