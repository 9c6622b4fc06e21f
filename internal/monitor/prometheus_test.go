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

// TestCollectorBridge: each connection's bridge links are exported as
// gauges and counters under its id, two links of one connection add up,
// and a removed link's series go.
func TestCollectorBridge(t *testing.T) {
	c := NewCollector()
	removeA := c.AddBridge("twin-1", func() BridgeStats {
		return BridgeStats{Sessions: 2, SessionsOpen: 1, InFlight: 3, Reconnects: 4, Dropped: 5, Timeouts: 6}
	})
	removeB := c.AddBridge("twin-1", func() BridgeStats { return BridgeStats{Sessions: 1, SessionsOpen: 1, Reconnects: 1} })
	removeC := c.AddBridge("twin-2", func() BridgeStats { return BridgeStats{Sessions: 1} })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	want := `
# HELP dittoconn_ditto_bridge_commands_in_flight Signals of the connection sent to Ditto and waiting for its answer.
# TYPE dittoconn_ditto_bridge_commands_in_flight gauge
dittoconn_ditto_bridge_commands_in_flight{connectionId="twin-1"} 3
dittoconn_ditto_bridge_commands_in_flight{connectionId="twin-2"} 0
# HELP dittoconn_ditto_bridge_dropped_total Signals from Ditto dropped because a target's queue was full.
# TYPE dittoconn_ditto_bridge_dropped_total counter
dittoconn_ditto_bridge_dropped_total{connectionId="twin-1"} 5
dittoconn_ditto_bridge_dropped_total{connectionId="twin-2"} 0
# HELP dittoconn_ditto_bridge_reconnects_total WebSockets to Ditto's gateway opened after the first of their session.
# TYPE dittoconn_ditto_bridge_reconnects_total counter
dittoconn_ditto_bridge_reconnects_total{connectionId="twin-1"} 5
dittoconn_ditto_bridge_reconnects_total{connectionId="twin-2"} 0
# HELP dittoconn_ditto_bridge_sessions Sessions with Ditto's gateway of the connection (one per target with topics, command-only sessions of its sources).
# TYPE dittoconn_ditto_bridge_sessions gauge
dittoconn_ditto_bridge_sessions{connectionId="twin-1"} 3
dittoconn_ditto_bridge_sessions{connectionId="twin-2"} 1
# HELP dittoconn_ditto_bridge_sessions_open Sessions of the connection with a live WebSocket to Ditto's gateway.
# TYPE dittoconn_ditto_bridge_sessions_open gauge
dittoconn_ditto_bridge_sessions_open{connectionId="twin-1"} 2
dittoconn_ditto_bridge_sessions_open{connectionId="twin-2"} 0
# HELP dittoconn_ditto_bridge_timeouts_total Signals sent to Ditto answered with the bridge's own 408 (no answer in time).
# TYPE dittoconn_ditto_bridge_timeouts_total counter
dittoconn_ditto_bridge_timeouts_total{connectionId="twin-1"} 6
dittoconn_ditto_bridge_timeouts_total{connectionId="twin-2"} 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	removeA()
	removeB()
	removeA() // a second Close of a link
	if n := testutil.CollectAndCount(c, "dittoconn_ditto_bridge_sessions"); n != 1 {
		t.Errorf("%d sessions series after removing twin-1's links, want twin-2's only", n)
	}
	removeC()
	if n := testutil.CollectAndCount(c); n != 0 {
		t.Errorf("%d series without links or registries", n)
	}
}
