package gateway

import (
	"net/http"
	"testing"
)

func TestMetricsRoute(t *testing.T) {
	cfg := testConfig(t)
	cfg.Metrics = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("connection_messages 1\n"))
	})
	s := New(cfg, okReply(`{}`))
	rec := serve(t, s, request{method: http.MethodGet, path: "/metrics", noAuth: true})
	assertStatus(t, rec, http.StatusOK)
	assertBody(t, rec, "connection_messages 1\n")

	// without a handler there is no such route
	rec = serve(t, newTestServer(t, okReply(`{}`)), request{method: http.MethodGet, path: "/metrics", noAuth: true})
	if rec.Code == http.StatusOK {
		t.Fatalf("/metrics answered without a handler: %d", rec.Code)
	}
}
