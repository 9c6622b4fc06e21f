package monitor

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestPrometheusCollector(t *testing.T) {
	c := NewCollector()
	a := NewRegistry(Options{ConnectionID: "mqtt-1", ConnectionType: "mqtt"})
	b := NewRegistry(Options{ConnectionID: "mqtt-1", ConnectionType: "mqtt"}) // a second client
	c.Add(a)
	c.Add(b)
	a.Inbound(Consumed, "devices/#").Success()
	a.Inbound(Consumed, "devices/#").Success()
	b.Inbound(Consumed, "devices/#").Success()
	a.Outbound(Published, "out").Failure()
	a.Reset() // totals survive: Prometheus counters are monotonic
	c.LiveStatusReported("mqtt-1", "mqtt", "open")

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP connection_live_status_reported_total Live status reports of connections, by status.
# TYPE connection_live_status_reported_total counter
connection_live_status_reported_total{connectionId="mqtt-1",connectionType="mqtt",status="open"} 1
# HELP connection_messages_total Messages counted per connection, metric type (category), direction, address and outcome.
# TYPE connection_messages_total counter
connection_messages_total{address="devices/#",category="consumed",direction="inbound",id="mqtt-1",success="false",type="mqtt"} 0
connection_messages_total{address="devices/#",category="consumed",direction="inbound",id="mqtt-1",success="true",type="mqtt"} 3
connection_messages_total{address="out",category="published",direction="outbound",id="mqtt-1",success="false",type="mqtt"} 1
connection_messages_total{address="out",category="published",direction="outbound",id="mqtt-1",success="true",type="mqtt"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	c.Remove(a)
	c.Remove(b)
	if n := testutil.CollectAndCount(c, "connection_messages_total"); n != 0 {
		t.Errorf("%d series after removal", n)
	}
}

// TestCollectorForget: forgetting a connection drops its live status series
// and keeps the others'.
func TestCollectorForget(t *testing.T) {
	c := NewCollector()
	c.LiveStatusReported("gone", "mqtt", "open")
	c.LiveStatusReported("gone", "mqtt", "closed")
	c.LiveStatusReported("kept", "kafka", "open")
	c.Forget("gone")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP connection_live_status_reported_total Live status reports of connections, by status.
# TYPE connection_live_status_reported_total counter
connection_live_status_reported_total{connectionId="kept",connectionType="kafka",status="open"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "connection_live_status_reported_total"); err != nil {
		t.Error(err)
	}
}
