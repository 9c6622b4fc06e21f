package test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestUnknownIDsPassivateQuickly: retrieving ids that never had a connection
// (each a 404) costs little memory per id, and only briefly: those grains
// passivate after PassivateUnknownAfter, while a deleted connection's grain
// keeps PassivateDeletedAfter. (Before, each unknown id held 3.6 kB for the
// deleted connections' 5 minutes.)
func TestUnknownIDsPassivateQuickly(t *testing.T) {
	const ids = 10000
	retrieveAll := func(n *kit.Node, prefix string, count int) {
		t.Helper()
		var wg sync.WaitGroup
		const workers = 8
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < count; i += workers {
					id := fmt.Sprintf("%s-%d", prefix, i)
					if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id)); r == nil || r.Status != http.StatusNotFound {
						t.Errorf("retrieve %s: %v, want 404", id, r)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}

	// The cost of a grain, on a node that keeps them all for the measurement.
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{PassivateUnknownAfter: time.Hour})
	retrieveAll(n, "warm", 500) // pools and maps reach their working size
	base, before := takeSample(), n.Sys.ActivatedGrains()
	retrieveAll(n, "unknown", ids)
	peak, grains := takeSample(), n.Sys.ActivatedGrains()-before
	if grains != ids {
		t.Fatalf("%d grains after %d retrieves of unknown ids", grains, ids)
	}
	perGrain := (peak.heapMB - base.heapMB) * 1e6 / ids
	n.Stop()
	// the grain's own share is about 200 B; protoactor's activation, mailbox,
	// registry entries and receive timer the rest
	if perGrain > 3000 {
		t.Errorf("%.0f B of heap per unknown-id grain, want at most 3000", perGrain)
	}

	// How long they stay, on a node that passivates them quickly.
	n = kit.Start(t, kit.Bolt().Open(t)(), kit.Options{PassivateUnknownAfter: 500 * time.Millisecond, PassivateDeletedAfter: time.Minute})
	const deleted = "unknown-ids-deleted"
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.MQTTConnection(deleted, "closed"))); r == nil || r.Status != http.StatusCreated {
		t.Fatalf("create: %v", r)
	}
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", deleted)); r == nil || r.Status != http.StatusNoContent {
		t.Fatalf("delete: %v", r)
	}
	base = takeSample()
	retrieveAll(n, "unknown", ids)
	// only the deleted connection's grain stays
	poll.Until(t, 20*time.Second, "the unknown ids' grains passivate", func() bool { return n.Sys.ActivatedGrains() == 1 })
	after := takeSample()
	// What stays after passivation is protoactor's, bounded by the peak of
	// live grains (not by the ids ever seen): its process registry's maps
	// keep their size, and its PID sets keep stale entries past their length.
	t.Logf("%d unknown-id grains held %.0f B each; on the second node the heap went from %.1f to %.1f MB once they passivated",
		ids, perGrain, base.heapMB, after.heapMB)
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", deleted)); r == nil || r.Status != http.StatusNotFound {
		t.Errorf("retrieve of the deleted connection: %v, want 404", r)
	}
}
