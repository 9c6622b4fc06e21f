package live

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationBridgeMetrics: the state of a connection's sessions with
// Ditto shows on /metrics under its id: one session, open once its target
// subscribed; when Ditto drops the socket the session reconnects and the
// reconnect counter rises; closing the connection removes its series.
func TestIntegrationBridgeMetrics(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Collector: monitor.NewCollector(),
		Ditto: &bridge.Config{URI: emu.URL(), Auth: bridge.AuthPreAuthenticated, ReconnectMin: 50 * time.Millisecond,
			ReconnectMax: 500 * time.Millisecond, PingInterval: 5 * time.Second}})
	id := dpID("bridge-metrics")
	dpOpen(t, n, map[string]any{"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"targets": []any{map[string]any{"address": "bridge/" + fmt.Sprint(runID) + "/metrics", "qos": 1,
			"authorizationContext": []string{"integration:reader"}, "topics": []string{"_/_/things/twin/events"}}}})
	value := func(prom, name string) float64 { return connectionMetric(t, prom, id, name) }
	scrape := func() string { return scrapeMetrics(t, n) }
	poll.Check(t, 15*time.Second, func() error {
		if len(emu.Sessions()) != 1 || len(emu.Sessions()[0].Subscriptions) != 1 {
			return fmt.Errorf("sessions at Ditto: %+v", emu.Sessions())
		}
		return nil
	})
	prom := scrape()
	for name, want := range map[string]float64{"dittoconn_ditto_bridge_sessions": 1, "dittoconn_ditto_bridge_sessions_open": 1,
		"dittoconn_ditto_bridge_commands_in_flight": 0, "dittoconn_ditto_bridge_reconnects_total": 0,
		"dittoconn_ditto_bridge_dropped_total": 0, "dittoconn_ditto_bridge_timeouts_total": 0} {
		if got := value(prom, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}

	emu.KillSessions()
	poll.Check(t, 15*time.Second, func() error {
		prom := scrape()
		if r, open := value(prom, "dittoconn_ditto_bridge_reconnects_total"), value(prom, "dittoconn_ditto_bridge_sessions_open"); r < 1 || open != 1 {
			return fmt.Errorf("after Ditto dropped the socket: reconnects %v, sessions open %v", r, open)
		}
		return nil
	})
	if got := value(scrape(), "dittoconn_ditto_bridge_sessions"); got != 1 {
		t.Errorf("sessions = %v after the reconnect, want 1", got)
	}

	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("close: %v", r)
	}
	poll.Check(t, 10*time.Second, func() error {
		if v := value(scrape(), "dittoconn_ditto_bridge_sessions"); v != -1 {
			return fmt.Errorf("sessions series still exported after close: %v", v)
		}
		return nil
	})
}

// scrapeMetrics is the node's /metrics text.
func scrapeMetrics(t *testing.T, n *kit.Node) string {
	t.Helper()
	_, b := n.Do(t, http.MethodGet, "/metrics", nil, false)
	return string(b)
}

// connectionMetric reads series name of connection id from a /metrics
// text; absent: -1.
func connectionMetric(t *testing.T, prom, id, name string) float64 {
	t.Helper()
	prefix := name + `{connectionId="` + id + `"} `
	for _, line := range strings.Split(prom, "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}
