package test

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestUnknownIDsPassivateQuickly: retrieving ids that never had a connection
// (each a 404) costs little memory per id, and only briefly: those grains
// passivate after PassivateUnknownAfter, while a deleted connection's grain
// keeps PassivateDeletedAfter, and a second wave of other ids leaves no more
// behind than the first. (Before, each unknown id held 3.6 kB for the
// deleted connections' 5 minutes.)
func TestUnknownIDsPassivateQuickly(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{PassivateUnknownAfter: 3 * time.Second, PassivateDeletedAfter: time.Minute})
	retrieveAll := func(prefix string, count int) {
		t.Helper()
		var wg sync.WaitGroup
		const workers = 8
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < count; i += workers {
					id := fmt.Sprintf("%s-%d", prefix, i)
					if r := n.Send(t, shard, nil, cmd(ditto.RetrieveConnection, "connectionId", id)); r == nil || r.Status != http.StatusNotFound {
						t.Errorf("retrieve %s: %v, want 404", id, r)
						return
					}
				}
			}(w)
		}
		wg.Wait()
	}
	// only the deleted connection's grain stays
	passivated := func() {
		t.Helper()
		kit.Eventually(t, 20*time.Second, "the unknown ids' grains passivate", func() bool { return n.Sys.ActivatedGrains() == 1 })
	}
	const deleted = "unknown-ids-deleted"
	if r := n.Send(t, shard, nil, cmd(ditto.CreateConnection, "connection", mqttConnection(deleted, "closed"))); r == nil || r.Status != http.StatusCreated {
		t.Fatalf("create: %v", r)
	}
	if r := n.Send(t, shard, nil, cmd(ditto.DeleteConnection, "connectionId", deleted)); r == nil || r.Status != http.StatusNoContent {
		t.Fatalf("delete: %v", r)
	}
	retrieveAll("warm", 500) // pools and maps reach their working size
	passivated()
	base := takeSample()

	const ids = 10000
	retrieveAll("unknown", ids)
	peak := takeSample()
	// grains that passivated during the sample make this an overestimate
	alive := n.Sys.ActivatedGrains() - 1
	if alive < ids/4 {
		t.Fatalf("%d grains right after %d retrieves: the test measures nothing", alive, ids)
	}
	perGrain := (peak.heapMB - base.heapMB) * 1e6 / float64(alive)
	passivated()
	first := takeSample()
	retrieveAll("other", ids)
	passivated()
	second := takeSample()
	t.Logf("heap %.1f MB, %.1f MB with %d unknown-id grains (%.0f B each), %.1f MB after they passivated, %.1f MB after %d more",
		base.heapMB, peak.heapMB, alive, perGrain, first.heapMB, second.heapMB, ids)
	// the grain's own share is about 200 B; protoactor's activation, mailbox,
	// registry entries and receive timer the rest
	if perGrain > 3000 {
		t.Errorf("%.0f B of heap per unknown-id grain, want at most 3000", perGrain)
	}
	// what stays is protoactor's maps at their peak size, not a cost per id
	if second.heapMB > first.heapMB+4 {
		t.Errorf("heap grew from %.1f to %.1f MB over a second wave of unknown ids", first.heapMB, second.heapMB)
	}
	if r := n.Send(t, shard, nil, cmd(ditto.RetrieveConnection, "connectionId", deleted)); r == nil || r.Status != http.StatusNotFound {
		t.Errorf("retrieve of the deleted connection: %v, want 404", r)
	}
}
