// Package bus is the signal bus of dittoconn's data plane: inbound
// processing publishes Ditto Protocol signals under their target topic
// (model.TopicTwinEvents, …) and every target of every open connection
// subscribes to the topics it lists.
//
// Bus is the seam: Local delivers within one process; a cluster-wide bus
// (proto.actor cluster pub/sub) can implement the same interface without
// touching the broker clients or the data plane.
package bus

import (
	"sync"
	"sync/atomic"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Signal is one Ditto Protocol message travelling between connections.
// Publishers hand it over complete and never change it afterwards;
// subscribers only read it.
type Signal struct {
	Message *protocol.Message
	Topic   protocol.Topic // parsed topic of Message
	Stream  string         // the target topic it is published under (model.Topic…)
	// Origin is the id of the connection whose source produced the signal
	// (Ditto's ditto-origin header); its own targets do not receive it.
	Origin string
	// Reply, when set, takes the answers to the signal (acknowledgements,
	// live responses) instead of Origin's response stream: the Ditto
	// session that delivered it (internal/bridge). Such a signal never
	// travels on a Bus; Ditto authorized it for the receiving target.
	Reply func(*protocol.Message)
}

// Handler receives a signal on the publisher's goroutine. It must not block
// for long: hand the work to a queue of your own.
type Handler func(*Signal)

// Bus routes signals by stream to the handlers subscribed to that stream.
type Bus interface {
	// Publish delivers s to every handler subscribed to s.Stream and
	// returns how many there were.
	Publish(s *Signal) int
	// Subscribe registers h for stream; the returned function cancels the
	// subscription (idempotent).
	Subscribe(stream string, h Handler) (cancel func())
}

// Local is the in-process Bus. Publishing takes no lock and does not
// allocate: the subscriber table is copied on every (rare) change.
type Local struct {
	mu   sync.Mutex
	subs atomic.Pointer[map[string][]*entry]
}

type entry struct{ h Handler }

var _ Bus = (*Local)(nil)

// NewLocal returns an empty in-process bus.
func NewLocal() *Local {
	b := &Local{}
	m := map[string][]*entry{}
	b.subs.Store(&m)
	return b
}

// Publish implements Bus.
func (b *Local) Publish(s *Signal) int {
	list := (*b.subs.Load())[s.Stream]
	for _, e := range list {
		e.h(s)
	}
	return len(list)
}

// Subscribe implements Bus.
func (b *Local) Subscribe(stream string, h Handler) func() {
	e := &entry{h: h}
	b.update(func(m map[string][]*entry) { m[stream] = append(append([]*entry(nil), m[stream]...), e) })
	var once sync.Once
	return func() {
		once.Do(func() {
			b.update(func(m map[string][]*entry) {
				var kept []*entry
				for _, x := range m[stream] {
					if x != e {
						kept = append(kept, x)
					}
				}
				if len(kept) == 0 {
					delete(m, stream)
				} else {
					m[stream] = kept
				}
			})
		})
	}
}

// Subscribers counts the handlers of stream.
func (b *Local) Subscribers(stream string) int { return len((*b.subs.Load())[stream]) }

func (b *Local) update(f func(map[string][]*entry)) {
	b.mu.Lock()
	defer b.mu.Unlock()
	old := *b.subs.Load()
	m := make(map[string][]*entry, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	f(m)
	b.subs.Store(&m)
}
