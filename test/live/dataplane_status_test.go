package live

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationDataPlaneLiveStatusMetric: every live status a client
// reports is counted in Prometheus' connection_live_status_reported_total
// (open when it connected, closed when it was closed).
func TestIntegrationDataPlaneLiveStatusMetric(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Collector: monitor.NewCollector()})
	id := dpID("live-status")
	dpOpen(t, n, map[string]any{"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"sources": []any{map[string]any{"addresses": []string{"dp/live-status/#"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 0}}})
	series := func(status string) string {
		return `connection_live_status_reported_total{connectionId="` + id + `",connectionType="mqtt",status="` + status + `"} 1`
	}
	scrape := func() string { return scrapeMetrics(t, n) }
	if prom := scrape(); !strings.Contains(prom, series("open")) {
		t.Errorf("/metrics lacks %s", series("open"))
	}
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); r == nil || r.Status != http.StatusOK {
		t.Fatalf("close: %v", r)
	}
	poll.Until(t, 10*time.Second, "closed is reported", func() bool { return strings.Contains(scrape(), series("closed")) })
}
