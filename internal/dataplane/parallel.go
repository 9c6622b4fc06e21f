package dataplane

import (
	"sync/atomic"
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
// source address: the consuming goroutine hands the message to one of
// PoolSize workers of its client (waiting while all are busy, which is
// the back-pressure on the broker); the worker maps it (a JavaScript mapper
// lends it a runtime of its own, mapping.jsMapper), then waits for the
// message consumed before it on that address and only then routes,
// publishes and settles it. So the bus sees every address's messages, and
// every thing's signals, in the order the broker delivered them, as
// without the stage; only mapping overlaps.
//
// What it costs: PoolSize goroutines per client, a channel per message,
// and a message whose mapping is slow holds back those behind it on its
// address (and their workers) until it is done, as in Ditto's stream. A
// client's consumer returns before the message is processed; the workers
// end with Plane.Close, and a message submitted after it is processed on
// the consumer's goroutine.

// mappedIn is what the mapping stage produced for a message.
type mappedIn struct {
	outcomes []mapping.Outcome[protocol.Message]
}

// future is one consumed message on its way through the stage.
type future struct {
	idx     int
	m       client.Message
	now     time.Time
	claimed atomic.Bool   // a worker or the lane maps it, whoever is first
	mapped  chan struct{} // closed when a worker mapped it
	result  *mappedIn
}

// testMapHook, when set (tests), runs on a worker before it maps.
var testMapHook func()

type lane struct {
	queue chan *future
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
			l := &lane{queue: make(chan *future, n)}
			ms.lanes[i][s] = l
			p.wg.Add(1)
			go ms.sequence(l)
		}
	}
	return ms
}

// submit queues m on its lane and hands it to a mapping worker.
func (ms *mapStage) submit(idx int, m client.Message) {
	now := ms.p.now()
	i := (idx%len(ms.jobs) + len(ms.jobs)) % len(ms.jobs)
	s := ms.p.sourceFor(m.Address)
	l := ms.lanes[i][s]
	if l == nil || ms.p.ctx.Err() != nil {
		ms.p.process(idx, m, now, nil)
		return
	}
	f := &future{idx: idx, m: m, now: now, mapped: make(chan struct{})}
	select {
	case l.queue <- f:
	case <-ms.p.ctx.Done():
		ms.p.process(idx, m, now, nil)
		return
	}
	select {
	case ms.jobs[i] <- f:
	case <-ms.p.ctx.Done(): // the lane maps it
	}
}

func (ms *mapStage) work(jobs <-chan *future) {
	defer ms.p.wg.Done()
	for {
		select {
		case f := <-jobs:
			if f.claimed.CompareAndSwap(false, true) {
				if testMapHook != nil {
					testMapHook()
				}
				f.result = ms.mapIn(f.m)
				close(f.mapped)
			}
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
	ext, _ := s.mapInput(&m)
	return &mappedIn{outcomes: s.chain.MapIncoming(ext)}
}

// sequence processes the lane's messages in the order they were queued.
func (ms *mapStage) sequence(l *lane) {
	defer ms.p.wg.Done()
	for {
		select {
		case f := <-l.queue:
			ms.finish(f)
		case <-ms.p.ctx.Done():
			for {
				select {
				case f := <-l.queue:
					ms.finish(f)
				default:
					return
				}
			}
		}
	}
}

// finish waits for f's mapping and processes f. Only after Close does the
// lane map f itself, when no worker took it: before, it would take the
// mapping from the workers whenever it came first, and map one at a time.
func (ms *mapStage) finish(f *future) {
	select {
	case <-f.mapped:
	case <-ms.p.ctx.Done():
		if f.claimed.CompareAndSwap(false, true) {
			f.result = ms.mapIn(f.m)
		} else {
			<-f.mapped
		}
	}
	ms.p.process(f.idx, f.m, f.now, f.result)
}
