package service

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/monitor"
)

// clusterView is a gateway.ClusterHealth the test changes.
type clusterView struct {
	mu        sync.Mutex
	clustered bool
	members   int
	since     time.Time
}

func (c *clusterView) ClusterHealth() (bool, int, time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.clustered, c.members, c.since
}

func scrape(t *testing.T, h http.Handler) string {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("/metrics = %d", rec.Code)
	}
	return rec.Body.String()
}

// TestMetricsClusterGauges: a cluster member exposes whether etcd answers
// and how many members it sees, read at each scrape; a single node has no
// such series.
func TestMetricsClusterGauges(t *testing.T) {
	single := scrape(t, metricsHandler(monitor.NewCollector(), &clusterView{members: 1}))
	if strings.Contains(single, "dittoconn_cluster_") {
		t.Errorf("single node exposes cluster series")
	}
	view := &clusterView{clustered: true, members: 3}
	h := metricsHandler(monitor.NewCollector(), view)
	body := scrape(t, h)
	for _, want := range []string{"\ndittoconn_cluster_etcd_unreachable 0\n", "\ndittoconn_cluster_members 3\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("etcd reachable: no %q", want)
		}
	}
	view.mu.Lock()
	view.since, view.members = time.Now(), 2
	view.mu.Unlock()
	body = scrape(t, h)
	for _, want := range []string{"\ndittoconn_cluster_etcd_unreachable 1\n", "\ndittoconn_cluster_members 2\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("etcd unreachable: no %q", want)
		}
	}
}
