package connection

import (
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/test/poll"
)

// startSatellite starts a satellite host and places client 1 of an open
// MQTT 5 connection of generation gen on it; states receives what the
// satellite reports to its grain; the connection is returned too.
func startSatellite(t *testing.T, h *grainHarness, gen uint64) (*actor.PID, chan *satState, *model.Connection) {
	t.Helper()
	states := make(chan *satState, 64)
	owner := h.sys.Root.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		if cmd, ok := ctx.Message().(*pb.Command); ok {
			if m, _ := decodeInternal(cmd); m != nil {
				states <- m.(*satState)
			}
		}
	}))
	host := h.sys.Root.Spawn(NewSatelliteHost(h.cfg))
	c, err := model.ParseCommand([]byte(connJSON(model.TypeMQTT5, "open")))
	if err != nil {
		t.Fatal(err)
	}
	h.sys.Root.Send(host, encodeInternal(&satStart{Connection: c.JSON(true), Index: 1, Gen: gen,
		OwnerAddress: owner.Address, OwnerID: owner.Id}))
	return host, states, c
}

// A host starts the satellite client a grain places on it, tells the grain
// its state through the codec, and stops it when told.
func TestSatelliteHostStartsReportsStops(t *testing.T) {
	h := newGrainHarness(t)
	h.cfg.Clients[model.TypeMQTT5] = h.cfg.Clients[model.TypeMQTT]
	host, states, _ := startSatellite(t, h, 7)
	deadline := time.After(5 * time.Second)
	for open := false; !open; {
		select {
		case st := <-states:
			if st.ConnectionID != testID || st.Index != 1 || st.Gen != 7 || st.Instance != "i1" {
				t.Fatalf("state %+v", st)
			}
			open = st.Status == client.StatusOpen && st.Recovery == client.RecoverySucceeded &&
				len(st.Resources) == 1 && st.Resources[0].Type == "target" && st.Resources[0].Status == client.StatusOpen
		case <-deadline:
			t.Fatal("the satellite did not report open")
		}
	}
	h.sys.Root.Send(host, encodeInternal(&satStop{satRef{ConnectionID: testID, Index: 1}}))
	poll.Until(t, 5*time.Second, "the satellite client closes", func() bool { return h.closes.Load() == 1 })
	if n := h.connects.Load(); n != 1 {
		t.Errorf("%d connects, want 1", n)
	}
}

// fakeDittoLink is a link to Ditto with one open session.
type fakeDittoLink struct{ targets atomic.Int32 }

func (f *fakeDittoLink) Target([]string, []string, []bridge.Subscription, func(bridge.Delivery)) {
	f.targets.Add(1)
}
func (f *fakeDittoLink) Send([]string, *protocol.Message, func(*protocol.Message)) {}
func (f *fakeDittoLink) Status() []client.ResourceStatus {
	return []client.ResourceStatus{{Type: "client", Address: "a:b", Status: client.StatusOpen,
		RecoveryStatus: client.RecoverySucceeded, Details: "ditto session [a:b] ws://ditto/ws/2: open"}}
}
func (f *fakeDittoLink) Close() {}

// A satellite working next to Ditto subscribes nothing there (client 0
// does, so nothing arrives twice) and reports its sessions with Ditto,
// which the grain's status lists as client entries of the satellite's
// member.
func TestSatelliteReportsItsDittoSessions(t *testing.T) {
	h := newGrainHarness(t)
	h.cfg.Clients[model.TypeMQTT5] = h.cfg.Clients[model.TypeMQTT]
	link := &fakeDittoLink{}
	h.cfg.Ditto = func(string) dataplane.DittoLink { return link }
	_, states, c := startSatellite(t, h, 1)
	var st *satState
	deadline := time.After(5 * time.Second)
	for st == nil {
		select {
		case s := <-states:
			if s.Status == client.StatusOpen {
				st = s
			}
		case <-deadline:
			t.Fatal("the satellite did not report open")
		}
	}
	if n := link.targets.Load(); n != 0 {
		t.Errorf("the satellite subscribed %d targets at Ditto, want none", n)
	}
	sup := &supervisor{sats: []satSlot{{addr: "elsewhere", state: st}}}
	clients, _, targets, _, _ := sup.satelliteEntries(c)
	want := []statusEntry{
		{typ: "client", client: "i1", status: client.StatusOpen, recovery: client.RecoverySucceeded,
			details: st.Details, since: st.Since},
		{typ: "client", client: "i1", address: "a:b", status: client.StatusOpen, recovery: client.RecoverySucceeded,
			details: "ditto session [a:b] ws://ditto/ws/2: open"},
	}
	if len(clients) != 2 || clients[0] != want[0] || clients[1] != want[1] {
		t.Errorf("client entries %+v, want %+v", clients, want)
	}
	if len(targets) != 1 || targets[0].typ != "target" {
		t.Errorf("target entries %+v", targets)
	}
}

type noPeers struct{}

func (noPeers) Peers() []string { return nil }

// A grain starting its clients in a cluster stops the satellites of its
// connection on its own member: leftovers of its previous member's grain
// (it never places one here), which would consume beside client 0 until
// they expire.
func TestGrainStopsLeftoverSatellitesOnItsMember(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	t.Cleanup(sys.Shutdown)
	got := make(chan internal, 8)
	if _, err := sys.Root.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		if cmd, ok := ctx.Message().(*pb.Command); ok {
			if m, _ := decodeInternal(cmd); m != nil {
				got <- m
			}
		}
	}), SatelliteHostName); err != nil {
		t.Fatal(err)
	}
	grainPID := actor.NewPID(sys.Address(), "grain")
	c, err := model.ParseCommand([]byte(connJSON(model.TypeMQTT5, "open")))
	if err != nil {
		t.Fatal(err)
	}
	c.ClientCount = 3
	s := &supervisor{id: testID, cfg: &Config{Members: noPeers{}}, root: sys.Root, self: grainPID}
	s.startSatellites(c)
	for want := 1; want <= 2; want++ {
		select {
		case m := <-got:
			if st, ok := m.(*satStop); !ok || st.ConnectionID != testID || st.Index != want {
				t.Fatalf("the member's host got %#v, want a stop of %s#%d", m, testID, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no stop of %s#%d at the grain's own member", testID, want)
		}
	}
	// in a single process (no cluster) there is no leftover to stop: the
	// next message the host gets is the test's own, sent after
	s = &supervisor{id: testID, cfg: &Config{}, root: sys.Root, self: grainPID}
	s.startSatellites(c)
	s.toHost(sys.Address(), &satReset{satRef{ConnectionID: "marker"}})
	select {
	case m := <-got:
		if r, ok := m.(*satReset); !ok || r.ConnectionID != "marker" {
			t.Fatalf("without a cluster the host got %#v", m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the marker did not arrive")
	}
}
