package dataplane

import (
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Parallel mapping (processorPoolSize). Ditto maps the messages a client
// consumed processorPoolSize at a time (at most the max-pool-size setting)
// and hands the outcomes on in the order the messages arrived (a stream's
// mapAsync), each mapping processor with mappers, and so a JavaScript
// scope, of its own. The mapping stage does the same per client and
// source: the consuming goroutine queues the message on its source's lane
// (at most PoolSize on it, which is the back-pressure on the broker) and
// hands it to one of PoolSize mapping workers of its client (a JavaScript
// mapper lends each a runtime of its own, mapping.jsMapper). A worker that
// finished a mapping routes, publishes and settles the messages at the
// head of the lane whose mapping is done, in queued order, unless another
// worker is doing so already; then it takes the next message to map. So
// the bus sees every source's messages, and every thing's signals, in the
// order the broker delivered them, as without the stage; only mapping
// overlaps, and no goroutine waits for another's mapping.
//
// What it costs: PoolSize goroutines per client, a lock per lane taken
// twice per message, and a message whose mapping is slow holds back those
// behind it on its lane until it is done, as in Ditto's stream. Each
// message changes goroutine once (consumer to worker); on a machine whose
// cores are all busy that hand-over waits for the scheduler, and a pool
// can be slower than mapping on the consumer's goroutine (docs/BENCHMARKS.md).
// A client's consumer returns before its message is processed. Plane.Close
// ends the workers once idle; what was queued is still mapped (by the
// consumer if no worker took it) and processed, and a message consumed
// after Close is processed on the consumer's goroutine.

// mappedIn is what the mapping stage produced for a message: the chain's
// outcomes and the message's authorization subjects.
type mappedIn struct {
	outcomes []mapping.Outcome[protocol.Message]
	subjects []string
}

// future is one consumed message on its way through the stage; its fields
// after m are guarded by its lane's mu.
type future struct {
	idx    int
	m      client.Message
	now    time.Time
	lane   *lane
	mapped bool
	result *mappedIn
}

// testMapHook, when set (tests), runs on a worker before it maps.
var testMapHook func()

type lane struct {
	slots chan struct{} // PoolSize: messages on the lane

	mu       sync.Mutex
	queue    []*future // in consumed order
	draining bool      // a worker processes the head
}

type mapStage struct {
	p     *Plane
	n     int                 // workers per client
	jobs  []chan *future      // per client index
	lanes []map[*source]*lane // per client index
}

func newMapStage(p *Plane, n int) *mapStage {
	ms := &mapStage{p: p, n: n, jobs: make([]chan *future, len(p.slots)), lanes: make([]map[*source]*lane, len(p.slots))}
	for i := range ms.jobs {
		ms.jobs[i] = make(chan *future)
		for range n {
			p.wg.Add(1)
			go ms.work(ms.jobs[i])
		}
		ms.lanes[i] = map[*source]*lane{}
		for _, s := range p.sources {
			ms.lanes[i][s] = &lane{slots: make(chan struct{}, n)}
		}
	}
	return ms
}

// submit queues m on its lane and hands it to a mapping worker.
func (ms *mapStage) submit(idx int, m client.Message) {
	now := ms.p.now()
	i := (idx%len(ms.jobs) + len(ms.jobs)) % len(ms.jobs)
	l := ms.lanes[i][ms.p.sourceFor(m.Address)]
	if l == nil || ms.p.ctx.Err() != nil {
		ms.p.process(idx, m, now, nil)
		return
	}
	select {
	case l.slots <- struct{}{}:
	case <-ms.p.ctx.Done():
		ms.p.process(idx, m, now, nil)
		return
	}
	f := &future{idx: idx, m: m, now: now, lane: l}
	l.mu.Lock()
	l.queue = append(l.queue, f)
	l.mu.Unlock()
	select {
	case ms.jobs[i] <- f:
	case <-ms.p.ctx.Done():
		ms.complete(f, ms.mapIn(f.m)) // no worker any more
	}
}

func (ms *mapStage) work(jobs <-chan *future) {
	defer ms.p.wg.Done()
	for {
		select {
		case f := <-jobs:
			if testMapHook != nil {
				testMapHook()
			}
			ms.complete(f, ms.mapIn(f.m))
		case <-ms.p.ctx.Done():
			return
		}
	}
}

// mapIn is the chain's outcomes for m (nil: nothing to map).
func (ms *mapStage) mapIn(m client.Message) *mappedIn {
	s := ms.p.sourceFor(m.Address)
	if s == nil || m.Expired {
		return nil
	}
	ext, subjects := s.mapInput(&m)
	return &mappedIn{outcomes: s.chain.MapIncoming(ext), subjects: subjects}
}

// complete records f's mapping and, unless another goroutine does it
// already, processes the lane's mapped messages from its head on.
func (ms *mapStage) complete(f *future, result *mappedIn) {
	l := f.lane
	l.mu.Lock()
	f.mapped, f.result = true, result
	if l.draining {
		l.mu.Unlock()
		return
	}
	l.draining = true
	for len(l.queue) > 0 && l.queue[0].mapped {
		head := l.queue[0]
		l.queue[0] = nil
		l.queue = l.queue[1:]
		l.mu.Unlock()
		ms.p.process(head.idx, head.m, head.now, head.result)
		<-l.slots
		l.mu.Lock()
	}
	l.draining = false
	l.mu.Unlock()
}
