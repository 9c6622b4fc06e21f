package dataplane

import (
	"sync"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Parallel mapping (processorPoolSize). Ditto maps the messages a client
// consumed processorPoolSize at a time (at most the max-pool-size setting)
// and hands the outcomes on in the order the messages arrived (a stream's
// mapAsync), each mapping processor with mappers, and so a JavaScript
// scope, of its own. The mapping stage does the same per client and
// source address: the consuming goroutine takes a slot (waiting while
// PoolSize messages of its client are under way, which is the
// back-pressure on the broker), a goroutine maps the message (a JavaScript
// mapper lends it a runtime of its own, mapping.jsMapper), then waits for
// the message consumed before it on that address and only then routes,
// publishes and settles it. So the bus sees every address's messages, and
// every thing's signals, in the order the broker delivered them, as
// without the stage; only mapping overlaps.
//
// What it costs: a goroutine and a channel per message, and a message
// whose mapping is slow holds back those behind it on its address (their
// slots too) until it is done, as in Ditto's stream. A client's consumer
// returns before the message is processed, so Plane.Wait also waits for
// these goroutines.

// mappedIn is what the mapping stage produced for a message.
type mappedIn struct {
	outcomes []mapping.Outcome[protocol.Message]
}

// testMapHook, when set (tests), runs on the stage's goroutine before it
// maps.
var testMapHook func()

// laneKey orders the messages of one client and source address.
type laneKey struct {
	idx  int
	addr string
}

type mapStage struct {
	p     *Plane
	slots []chan struct{} // per client index, PoolSize each

	mu    sync.Mutex
	tails map[laneKey]chan struct{} // closed when the lane's last message is processed
}

func newMapStage(p *Plane, n int) *mapStage {
	ms := &mapStage{p: p, slots: make([]chan struct{}, len(p.slots)), tails: map[laneKey]chan struct{}{}}
	for i := range ms.slots {
		ms.slots[i] = make(chan struct{}, n)
	}
	return ms
}

// submit maps m on a goroutine of its own and processes it after the
// message submitted before it on its lane.
func (ms *mapStage) submit(idx int, m client.Message) {
	now := ms.p.now()
	slot := ms.slots[(idx%len(ms.slots)+len(ms.slots))%len(ms.slots)]
	slot <- struct{}{}
	key := laneKey{idx: idx, addr: m.Address}
	done := make(chan struct{})
	ms.mu.Lock()
	prev := ms.tails[key]
	ms.tails[key] = done
	ms.mu.Unlock()

	ms.p.wg.Add(1)
	go func() {
		defer ms.p.wg.Done()
		defer func() { <-slot }()
		defer func() {
			ms.mu.Lock()
			if ms.tails[key] == done {
				delete(ms.tails, key)
			}
			ms.mu.Unlock()
			close(done)
		}()
		if testMapHook != nil {
			testMapHook()
		}
		var mapped *mappedIn
		if s := ms.p.sourceFor(m.Address); s != nil && !m.Expired {
			ext, _ := s.mapInput(&m)
			mapped = &mappedIn{outcomes: s.chain.MapIncoming(ext)}
		}
		if prev != nil {
			<-prev
		}
		ms.p.process(idx, m, now, mapped)
	}()
}
