package connection

import (
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/test/poll"
)

// A host starts the satellite client a grain places on it, tells the grain
// its state through the codec, and stops it when told.
func TestSatelliteHostStartsReportsStops(t *testing.T) {
	h := newGrainHarness(t)
	h.cfg.Clients[model.TypeMQTT5] = h.cfg.Clients[model.TypeMQTT]
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
	h.sys.Root.Send(host, encodeInternal(&satStart{Connection: c.JSON(true), Index: 1, Gen: 7,
		OwnerAddress: owner.Address, OwnerID: owner.Id}))
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
