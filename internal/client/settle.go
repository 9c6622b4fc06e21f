package client

import (
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
)

// DefaultMaxUnsettled is how many consumed messages one consumer may hold
// unsettled: Ditto's consumer throttling limit (100) times its
// max-in-flight-factor (2.0).
const DefaultMaxUnsettled = 200

// MaxUnsettled is the bound of unsettled messages per consumer of a
// protocol: Ditto's consumer throttling limit × max-in-flight-factor, read
// from the protocol's environment variables of them where Ditto has them
// (limitEnv, factorEnv; "" for none), with Ditto's defaults 100 and 2.0.
// DITTOCONN_CONSUMER_MAX_UNSETTLED, when set, overrides it for every
// protocol. Unparsable or out-of-range values fall back to the defaults, as
// the bound must stay bounded.
func MaxUnsettled(limitEnv, factorEnv string) int {
	return maxUnsettled(limitEnv, factorEnv, Getenv)
}

// settings holds the service-wide client settings (Ditto's variables such
// as MQTT_CONSUMER_THROTTLING_LIMIT) that the configuration root read at
// start; before UseSettings, every one is unset (Ditto's defaults), so no
// client package reads the process environment behind the root's back.
var settings atomic.Pointer[map[string]string]

// UseSettings installs the service-wide client settings, variable → value,
// as cmd/dittoconn read them. The last call wins; clients built afterwards
// use them.
func UseSettings(vars map[string]string) {
	m := maps.Clone(vars)
	settings.Store(&m)
}

// Getenv returns the installed service-wide setting k ("" when unset).
func Getenv(k string) string {
	if m := settings.Load(); m != nil {
		return (*m)[k]
	}
	return ""
}

func maxUnsettled(limitEnv, factorEnv string, getenv func(string) string) int {
	if n, err := strconv.Atoi(getenv("DITTOCONN_CONSUMER_MAX_UNSETTLED")); err == nil && n > 0 {
		return n
	}
	limit, factor := 100.0, 2.0
	if limitEnv != "" {
		if v, err := strconv.ParseFloat(getenv(limitEnv), 64); err == nil && v > 0 {
			limit = v
		}
	}
	if factorEnv != "" {
		if v, err := strconv.ParseFloat(getenv(factorEnv), 64); err == nil && v >= 1 {
			factor = v
		}
	}
	return max(int(limit*factor), 1)
}

// Settler bounds the unsettled messages of one consumer and performs their
// settlements on a goroutine of its own, so that Message.Settle never
// blocks on the broker and may be called from any goroutine.
//
// A consumer starts it, calls Acquire before it hands a message to Inbound
// (waiting while the bound is reached, which stops it consuming) and sets
// the message's Settle to Settle(do). The first call of that function
// queues do(outcome); later calls are ignored. The slot is freed after do
// ran, so at most max settlements are ever queued and memory stays bounded.
// Close performs what is queued, then stops.
//
// Concurrency costs one goroutine per Settler and one channel operation per
// message on each side; settlements of one Settler run one at a time, in
// the order they were called.
type Settler struct {
	slots chan struct{}
	queue chan settlement
	stop  chan struct{}

	mu      sync.Mutex
	started bool
	closed  bool
	done    chan struct{}
}

type settlement struct {
	do func(Outcome)
	o  Outcome
}

// NewSettler is a Settler of at most max unsettled messages (max < 1:
// DefaultMaxUnsettled); Start starts it.
func NewSettler(max int) *Settler {
	if max < 1 {
		max = DefaultMaxUnsettled
	}
	return &Settler{
		slots: make(chan struct{}, max),
		queue: make(chan settlement, max),
		stop:  make(chan struct{}),
		done:  make(chan struct{}),
	}
}

// Max is the bound.
func (s *Settler) Max() int { return cap(s.slots) }

// Unsettled is how many messages hold a slot now.
func (s *Settler) Unsettled() int { return len(s.slots) }

// Start starts the goroutine that performs settlements; once only, and not
// after Close.
func (s *Settler) Start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.started || s.closed {
		return
	}
	s.started = true
	go s.run()
}

// Acquire waits for room for one more unsettled message; it returns false,
// without a slot, once stop or Close closed.
func (s *Settler) Acquire(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return false
	case <-s.stop:
		return false
	default:
	}
	select {
	case s.slots <- struct{}{}:
		return true
	case <-stop:
		return false
	case <-s.stop:
		return false
	}
}

// Settle is the Message.Settle of a message that holds a slot: its first
// call queues do(outcome) and frees the slot once do returned; later calls
// are ignored. do runs on the Settler's goroutine; nil do only frees the
// slot (a message with nothing to tell the broker).
func (s *Settler) Settle(do func(Outcome)) func(Outcome) {
	var called atomic.Bool
	return func(o Outcome) {
		if !called.CompareAndSwap(false, true) {
			return
		}
		// Never full: every queued settlement holds one of cap(queue) slots.
		select {
		case s.queue <- settlement{do: do, o: o}:
		default:
		}
	}
}

func (s *Settler) run() {
	defer close(s.done)
	for {
		select {
		case st := <-s.queue:
			s.perform(st)
		case <-s.stop:
			for { // what was settled before Close still reaches the broker
				select {
				case st := <-s.queue:
					s.perform(st)
				default:
					return
				}
			}
		}
	}
}

func (s *Settler) perform(st settlement) {
	if st.do != nil {
		st.do(st.o)
	}
	<-s.slots
}

// Close unblocks Acquire, performs the settlements queued so far and stops;
// it returns when they are done or stop closes. Settlements called later
// are dropped: their session is going, so the broker redelivers the
// messages. A consumer closes its Settlers before it closes its broker
// connection.
func (s *Settler) Close(stop <-chan struct{}) {
	s.mu.Lock()
	started := s.started
	if !s.closed {
		s.closed = true
		close(s.stop)
	}
	s.mu.Unlock()
	if !started {
		return
	}
	select {
	case <-s.done:
	case <-stop:
	}
}
