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

// testMapHook, when set (tests), runs on the stage's goroutine before it
// maps.
var testMapHook func()

// laneKey orders the messages of one client and source address.
type laneKey struct {
	idx  int
	addr string
}

type mapStage struct {
	p    *Plane
	n    int           // workers per client
	jobs []chan mapJob // per client index, taken by PoolSize workers each

	mu    sync.Mutex
	tails map[laneKey]chan struct{} // closed when the lane's last message is processed
}

// mapJob is one consumed message: prev is closed when the message before
// it on its lane is processed, done when this one is.
type mapJob struct {
	idx        int
	m          client.Message
	now        time.Time
	key        laneKey
	prev, done chan struct{}
}

// newMapStage starts n workers per client index. Workers, not a goroutine
// per message: a script runs deep in the Go stack, and a fresh goroutine
// would grow its stack again for every message.
func newMapStage(p *Plane, n int) *mapStage {
	ms := &mapStage{p: p, n: n, jobs: make([]chan mapJob, len(p.slots)), tails: map[laneKey]chan struct{}{}}
	for i := range ms.jobs {
		ms.jobs[i] = make(chan mapJob)
		for range n {
			p.wg.Add(1)
			go ms.work(ms.jobs[i])
		}
	}
	return ms
}

// submit hands m to a worker of its client, waiting while all are busy
// (back-pressure on the consumer); after Close it processes m itself.
func (ms *mapStage) submit(idx int, m client.Message) {
	key := laneKey{idx: idx, addr: m.Address}
	job := mapJob{idx: idx, m: m, now: ms.p.now(), key: key, done: make(chan struct{})}
	ms.mu.Lock()
	job.prev = ms.tails[key]
	ms.tails[key] = job.done
	ms.mu.Unlock()
	select {
	case ms.jobs[(idx%len(ms.jobs)+len(ms.jobs))%len(ms.jobs)] <- job:
	case <-ms.p.ctx.Done():
		ms.run(job)
	}
}

func (ms *mapStage) work(jobs <-chan mapJob) {
	defer ms.p.wg.Done()
	for {
		select {
		case job := <-jobs:
			ms.run(job)
		case <-ms.p.ctx.Done():
			return
		}
	}
}

// run maps job's message, waits for its lane's previous message and
// processes it.
func (ms *mapStage) run(job mapJob) {
	defer func() {
		ms.mu.Lock()
		if ms.tails[job.key] == job.done {
			delete(ms.tails, job.key)
		}
		ms.mu.Unlock()
		close(job.done)
	}()
	if testMapHook != nil {
		testMapHook()
	}
	m := job.m
	var mapped *mappedIn
	if s := ms.p.sourceFor(m.Address); s != nil && !m.Expired {
		ext, _ := s.mapInput(&m)
		mapped = &mappedIn{outcomes: s.chain.MapIncoming(ext)}
	}
	if job.prev != nil {
		<-job.prev
	}
	ms.p.process(job.idx, m, job.now, mapped)
}
