package monitor

import (
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Registry.
type Options struct {
	ConnectionID   string
	ConnectionType string // only a label of the Prometheus export
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// ThrottlingLimit: when an inbound address consumes more than this many
	// messages in one 10 s slot, each further message records a throttled
	// failure, as Ditto's throttling alert does for AMQP 1.0 and Kafka
	// (limit × 10 s / interval × (1 − tolerance)). 0: no detection.
	ThrottlingLimit int64
}

// Registry holds the counters of one connection as seen by one client (or by
// the whole node when its clients share it). Safe for concurrent use.
type Registry struct {
	opts Options
	now  func() time.Time

	mu       sync.RWMutex
	counters map[counterKey]*Counter
	addrs    [2][]string // addresses per direction in first-seen order
}

type counterKey struct {
	dir     Direction
	typ     MetricType
	address string
}

// NewRegistry returns an empty registry.
func NewRegistry(o Options) *Registry {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	return &Registry{opts: o, now: now, counters: make(map[counterKey]*Counter)}
}

// ConnectionID is the id given in Options.
func (r *Registry) ConnectionID() string { return r.opts.ConnectionID }

// Init creates every counter Ditto creates when a client starts: all types
// of the inbound direction per source address, all outbound types per target
// address and for ResponsesAddress. Without Init an address appears in the
// answer only once something was counted on it.
func (r *Registry) Init(sourceAddresses, targetAddresses []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range sourceAddresses {
		for _, t := range MetricTypes(Inbound) {
			r.counterLocked(Inbound, t, a)
		}
	}
	for _, a := range append(append([]string(nil), targetAddresses...), ResponsesAddress) {
		for _, t := range MetricTypes(Outbound) {
			r.counterLocked(Outbound, t, a)
		}
	}
}

// Counter returns the counter of (direction, type, address), creating it on
// first use. Looking up an existing counter does not allocate; clients may
// still keep the *Counter to skip the map.
func (r *Registry) Counter(d Direction, t MetricType, address string) *Counter {
	k := counterKey{d, t, address}
	r.mu.RLock()
	c := r.counters[k]
	r.mu.RUnlock()
	if c != nil {
		return c
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.counterLocked(d, t, address)
}

// Inbound is Counter(Inbound, t, source address).
func (r *Registry) Inbound(t MetricType, address string) *Counter {
	return r.Counter(Inbound, t, address)
}

// Outbound is Counter(Outbound, t, target address).
func (r *Registry) Outbound(t MetricType, address string) *Counter {
	return r.Counter(Outbound, t, address)
}

// Response is the outbound counter of t on ResponsesAddress.
func (r *Registry) Response(t MetricType) *Counter {
	return r.Counter(Outbound, t, ResponsesAddress)
}

func (r *Registry) counterLocked(d Direction, t MetricType, address string) *Counter {
	k := counterKey{d, t, address}
	if c := r.counters[k]; c != nil {
		return c
	}
	c := &Counter{reg: r, dir: d, typ: t, address: address}
	if t == Throttled {
		c.marks = new([2]minuteMarks)
	} else {
		c.rings = new([2]rings)
	}
	if d == Inbound && t == Consumed && r.opts.ThrottlingLimit > 0 {
		c.throttleLimit = r.opts.ThrottlingLimit
		c.throttled = r.counterLocked(Inbound, Throttled, address)
	}
	if !r.known(d, address) {
		r.addrs[d] = append(r.addrs[d], address)
	}
	r.counters[k] = c
	return c
}

func (r *Registry) known(d Direction, address string) bool {
	for _, a := range r.addrs[d] {
		if a == address {
			return true
		}
	}
	return false
}

// Reset clears all window counts of this registry; lastMessageAt stays, the
// Prometheus totals (monotonic by definition) too.
func (r *Registry) Reset() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.counters {
		c.reset()
	}
}

// Snapshot reads every counter at the registry's current time.
func (r *Registry) Snapshot() *MetricsSnapshot {
	now := r.now().UnixMilli()
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := &MetricsSnapshot{}
	for d := Inbound; d <= Outbound; d++ {
		list := make([]AddressMetrics, 0, len(r.addrs[d]))
		for _, a := range r.addrs[d] {
			am := AddressMetric{}
			for t := MetricType(0); t < numMetricTypes; t++ {
				if c := r.counters[counterKey{d, t, a}]; c != nil {
					am[t] = c.measurements(now)
				}
			}
			list = append(list, AddressMetrics{Address: a, Metric: am})
		}
		if d == Inbound {
			s.Sources = list
		} else {
			s.Targets = list
		}
	}
	return s
}

// each calls f for every counter; used by the Prometheus collector.
func (r *Registry) each(f func(*Counter)) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, c := range r.counters {
		f(c)
	}
}

// Counter is one (direction, metric type, address) counter with success and
// failure windows. Safe for concurrent use; recording does not allocate.
type Counter struct {
	reg     *Registry
	dir     Direction
	typ     MetricType
	address string

	mu    sync.Mutex
	rings *[2]rings       // index 0 success, 1 failure
	marks *[2]minuteMarks // instead of rings for Throttled

	total [2]atomic.Uint64 // since start, never reset: the Prometheus counter

	throttleLimit int64
	throttled     *Counter
}

// Direction, Type and Address identify the counter.
func (c *Counter) Direction() Direction { return c.dir }
func (c *Counter) Type() MetricType     { return c.typ }
func (c *Counter) Address() string      { return c.address }

// Success counts one successful message now.
func (c *Counter) Success() { c.RecordAt(true, c.reg.now()) }

// Failure counts one failed message now.
func (c *Counter) Failure() { c.RecordAt(false, c.reg.now()) }

// Record counts one message now.
func (c *Counter) Record(success bool) { c.RecordAt(success, c.reg.now()) }

// RecordAt counts one message that happened at t.
func (c *Counter) RecordAt(success bool, t time.Time) {
	i := 0
	if !success {
		i = 1
	}
	ms := t.UnixMilli()
	c.total[i].Add(1)
	var n int64
	c.mu.Lock()
	if c.marks != nil {
		c.marks[i].add(ms)
	} else {
		n = c.rings[i].add(ms)
	}
	c.mu.Unlock()
	if c.throttled != nil && n > c.throttleLimit {
		c.throttled.RecordAt(false, t)
	}
}

// Total is the number of successes or failures since the counter exists,
// unaffected by Reset.
func (c *Counter) Total(success bool) uint64 {
	if success {
		return c.total[0].Load()
	}
	return c.total[1].Load()
}

func (c *Counter) measurements(now int64) TypeMeasurements {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.marks != nil {
		return TypeMeasurements{Success: c.marks[0].measure(now), Failure: c.marks[1].measure(now)}
	}
	return TypeMeasurements{Success: c.rings[0].measure(now), Failure: c.rings[1].measure(now)}
}

func (c *Counter) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := 0; i < 2; i++ {
		if c.marks != nil {
			c.marks[i].reset()
		} else {
			c.rings[i].reset()
		}
	}
}

func msTime(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// Measurement is one success or failure measurement: counts per window and
// the time of the latest message (zero: never; JSON null).
type Measurement struct {
	PT1M, PT1H, PT24H int64
	LastMessageAt     time.Time
}

func (m Measurement) plus(o Measurement) Measurement {
	last := m.LastMessageAt
	if o.LastMessageAt.After(last) {
		last = o.LastMessageAt
	}
	return Measurement{m.PT1M + o.PT1M, m.PT1H + o.PT1H, m.PT24H + o.PT24H, last}
}

func (m Measurement) any() bool { return m.PT1M > 0 || m.PT1H > 0 || m.PT24H > 0 }

// TypeMeasurements are the success and failure measurements of one type.
type TypeMeasurements struct {
	Success, Failure Measurement
}

// AddressMetric is Ditto's AddressMetric: the measurements per metric type.
// Empty, it is written as JSON null.
type AddressMetric map[MetricType]TypeMeasurements

// merge adds o into a (Ditto's mergeAddressMetric: counts summed, the later
// lastMessageAt kept).
func (a AddressMetric) merge(o AddressMetric) {
	for t, m := range o {
		if cur, ok := a[t]; ok {
			a[t] = TypeMeasurements{cur.Success.plus(m.Success), cur.Failure.plus(m.Failure)}
		} else {
			a[t] = m
		}
	}
}

// AddressMetrics is the metric of one address.
type AddressMetrics struct {
	Address string
	Metric  AddressMetric
}

// MetricsSnapshot is what one client answers to retrieveConnectionMetrics:
// the address metrics of its sources and targets. A nil snapshot stands for
// "no client running".
type MetricsSnapshot struct {
	Sources []AddressMetrics
	Targets []AddressMetrics
}

// MergeMetrics merges the answers of several clients as Ditto's aggregator
// does: per address, counts summed and the latest lastMessageAt kept.
// Addresses keep the order of their first appearance. nil snapshots are
// skipped; all nil gives nil.
func MergeMetrics(snaps ...*MetricsSnapshot) *MetricsSnapshot {
	var out *MetricsSnapshot
	for _, s := range snaps {
		if s == nil {
			continue
		}
		if out == nil {
			out = &MetricsSnapshot{}
		}
		out.Sources = mergeList(out.Sources, s.Sources)
		out.Targets = mergeList(out.Targets, s.Targets)
	}
	return out
}

func mergeList(into, from []AddressMetrics) []AddressMetrics {
	for _, am := range from {
		i := indexOf(into, am.Address)
		if i < 0 {
			into = append(into, AddressMetrics{Address: am.Address, Metric: AddressMetric{}})
			i = len(into) - 1
		}
		into[i].Metric.merge(am.Metric)
	}
	return into
}

func indexOf(list []AddressMetrics, address string) int {
	for i := range list {
		if list[i].Address == address {
			return i
		}
	}
	return -1
}

func total(list []AddressMetrics) AddressMetric {
	out := AddressMetric{}
	for _, am := range list {
		out.merge(am.Metric)
	}
	return out
}

// Inbound is connectionMetrics.inbound: the sum over all source addresses.
func (s *MetricsSnapshot) Inbound() AddressMetric {
	if s == nil {
		return nil
	}
	return total(s.Sources)
}

// Outbound is connectionMetrics.outbound: the sum over all target addresses
// including ResponsesAddress.
func (s *MetricsSnapshot) Outbound() AddressMetric {
	if s == nil {
		return nil
	}
	return total(s.Targets)
}

// ContainsFailures reports whether connectionMetrics has any failure count.
func (s *MetricsSnapshot) ContainsFailures() bool {
	for _, am := range []AddressMetric{s.Inbound(), s.Outbound()} {
		for _, m := range am {
			if m.Failure.any() {
				return true
			}
		}
	}
	return false
}
