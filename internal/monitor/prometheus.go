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
type Collector struct {
	messages   *prometheus.Desc
	liveStatus *prometheus.CounterVec

	mu   sync.RWMutex
	regs map[*Registry]struct{}
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
		regs: make(map[*Registry]struct{}),
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
	c.mu.RUnlock()
	for _, k := range order {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, sums[k],
			k.id, k.typ, k.category, k.direction, k.address, k.success)
	}
	c.liveStatus.Collect(ch)
}
