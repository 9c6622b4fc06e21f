package monitor

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector exports the message counters of the registered connections in
// the shape of Ditto's Kamon counter "connection_messages" (tags id, type =
// connection type, category = metric type, direction, success) plus an
// address label, and Ditto's "connection_live_status_reported" counter.
// Values are the counters' totals since start, which Reset does not touch.
// It also exports the state of each connection's link to Ditto's gateway
// (dittoconn_ditto_bridge_*; Ditto has no such component, the names are
// dittoconn's own).
type Collector struct {
	messages   *prometheus.Desc
	liveStatus *prometheus.CounterVec
	bridge     []bridgeMetric

	mu    sync.RWMutex
	regs  map[*Registry]struct{}
	links map[*bridgeLink]struct{}
}

// BridgeStats is what the Ditto bridge reports of one connection's link
// (bridge.Stats; the service converts, so that monitor stays a leaf).
type BridgeStats struct {
	Sessions, SessionsOpen, InFlight int
	Reconnects, Dropped, Timeouts    uint64
}

type bridgeLink struct {
	id    string
	stats func() BridgeStats
}

type bridgeMetric struct {
	desc  *prometheus.Desc
	kind  prometheus.ValueType
	value func(BridgeStats) float64
}

// The bridge's series, one per connection (label connectionId, as
// connection_live_status_reported's): gauges of its sessions and totals
// since its link opened (a reopened connection starts them again, which
// Prometheus reads as a counter reset).
var bridgeMetrics = []struct {
	name, help string
	kind       prometheus.ValueType
	value      func(BridgeStats) float64
}{
	{"dittoconn_ditto_bridge_sessions", "Sessions with Ditto's gateway of the connection (one per target with topics, command-only sessions of its sources).",
		prometheus.GaugeValue, func(s BridgeStats) float64 { return float64(s.Sessions) }},
	{"dittoconn_ditto_bridge_sessions_open", "Sessions of the connection with a live WebSocket to Ditto's gateway.",
		prometheus.GaugeValue, func(s BridgeStats) float64 { return float64(s.SessionsOpen) }},
	{"dittoconn_ditto_bridge_commands_in_flight", "Signals of the connection sent to Ditto and waiting for its answer.",
		prometheus.GaugeValue, func(s BridgeStats) float64 { return float64(s.InFlight) }},
	{"dittoconn_ditto_bridge_reconnects_total", "WebSockets to Ditto's gateway opened after the first of their session.",
		prometheus.CounterValue, func(s BridgeStats) float64 { return float64(s.Reconnects) }},
	{"dittoconn_ditto_bridge_dropped_total", "Signals from Ditto dropped because a target's queue was full.",
		prometheus.CounterValue, func(s BridgeStats) float64 { return float64(s.Dropped) }},
	{"dittoconn_ditto_bridge_timeouts_total", "Signals sent to Ditto answered with the bridge's own 408 (no answer in time).",
		prometheus.CounterValue, func(s BridgeStats) float64 { return float64(s.Timeouts) }},
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a collector without registries; register it with a
// prometheus.Registerer and serve it on /metrics.
func NewCollector() *Collector {
	return &Collector{
		messages: prometheus.NewDesc("connection_messages_total",
			"Messages counted per connection, metric type (category), direction, address and outcome.",
			[]string{"id", "type", "category", "direction", "address", "success"}, nil),
		liveStatus: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "connection_live_status_reported_total",
			Help: "Live status reports of connections, by status.",
		}, []string{"connectionId", "connectionType", "status"}),
		bridge: bridgeDescs(),
		regs:   make(map[*Registry]struct{}),
		links:  make(map[*bridgeLink]struct{}),
	}
}

func bridgeDescs() []bridgeMetric {
	out := make([]bridgeMetric, 0, len(bridgeMetrics))
	for _, m := range bridgeMetrics {
		out = append(out, bridgeMetric{desc: prometheus.NewDesc(m.name, m.help, []string{"connectionId"}, nil),
			kind: m.kind, value: m.value})
	}
	return out
}

// AddBridge exports the Ditto bridge counters of connection connectionID
// (stats is read at every scrape, so it must be cheap and safe for
// concurrent use) until remove is called (when the link closes). Several
// links of one connection on this node add up.
func (c *Collector) AddBridge(connectionID string, stats func() BridgeStats) (remove func()) {
	l := &bridgeLink{id: connectionID, stats: stats}
	c.mu.Lock()
	c.links[l] = struct{}{}
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.links, l)
		c.mu.Unlock()
	}
}

// Add exports r's counters (a client start registers its registry).
func (c *Collector) Add(r *Registry) {
	c.mu.Lock()
	c.regs[r] = struct{}{}
	c.mu.Unlock()
}

// Remove stops exporting r (client stop).
func (c *Collector) Remove(r *Registry) {
	c.mu.Lock()
	delete(c.regs, r)
	c.mu.Unlock()
}

// LiveStatusReported counts one live status report of a connection
// ("open", "closed", "failed", …), as Ditto's periodic status check does.
func (c *Collector) LiveStatusReported(connectionID, connectionType, status string) {
	c.liveStatus.WithLabelValues(connectionID, connectionType, status).Inc()
}

// Forget drops the live status series of a deleted connection, so that
// churn does not grow the export for ever. Its message series go with its
// registries (Remove, when its clients stop).
func (c *Collector) Forget(connectionID string) {
	c.liveStatus.DeletePartialMatch(prometheus.Labels{"connectionId": connectionID})
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.messages
	for _, m := range c.bridge {
		ch <- m.desc
	}
	c.liveStatus.Describe(ch)
}

// Collect implements prometheus.Collector. Several registries of one
// connection (several clients on this node) add up.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	type key struct {
		id, typ, category, direction, address, success string
	}
	sums := make(map[key]float64)
	var order []key
	c.mu.RLock()
	for r := range c.regs {
		r.each(func(ctr *Counter) {
			for i, success := range [2]string{"true", "false"} {
				k := key{r.opts.ConnectionID, r.opts.ConnectionType, ctr.typ.String(), ctr.dir.String(), ctr.address, success}
				if _, ok := sums[k]; !ok {
					order = append(order, k)
				}
				sums[k] += float64(ctr.total[i].Load())
			}
		})
	}
	links := make([]*bridgeLink, 0, len(c.links))
	for l := range c.links {
		links = append(links, l)
	}
	c.mu.RUnlock()
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, sums[k],
			k.id, k.typ, k.category, k.direction, k.address, k.success)
	}
	// read outside the lock: a link's Stats takes its own locks
	bridge := make(map[string]BridgeStats, len(links))
	var ids []string
	for _, l := range links {
		st := l.stats()
		sum, ok := bridge[l.id]
		if !ok {
			ids = append(ids, l.id)
		}
		sum.Sessions += st.Sessions
		sum.SessionsOpen += st.SessionsOpen
		sum.InFlight += st.InFlight
		sum.Reconnects += st.Reconnects
		sum.Dropped += st.Dropped
		sum.Timeouts += st.Timeouts
		bridge[l.id] = sum
	}
	for _, id := range ids {
		for _, m := range c.bridge {
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.value(bridge[id]), id)
		}
	}
	c.liveStatus.Collect(ch)
}
