package gateway

import (
	"net/http"
	"testing"
)

func corsServer(t *testing.T, origins ...string) (*Server, *fakeDispatcher) {
	t.Helper()
	cfg := testConfig(t)
	cfg.CORSAllowedOrigins = origins
	d := okReply(`{"type":"connectivity.responses:retrieveAllConnectionIds","status":200,"connectionIds":[]}`)
	return New(cfg, d), d
}

func TestCORS(t *testing.T) {
	const ui = "http://ui.example:8080"
	preflight := func(origin string) request {
		return request{method: http.MethodOptions, path: "/api/2/connections", noAuth: true, header: map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "PUT",
			"Access-Control-Request-Headers": "authorization,content-type,if-none-match",
		}}
	}
	tests := []struct {
		name       string
		origins    []string
		req        request
		wantStatus int
		wantOrigin string
		// wantHeaders are further response headers and their values.
		wantHeaders map[string]string
	}{
		{"off by default: preflight not answered", nil, preflight(ui), http.StatusUnauthorized, "", nil},
		{"off by default: no CORS headers", nil,
			request{method: http.MethodGet, path: "/health", noAuth: true, header: map[string]string{"Origin": ui}},
			http.StatusOK, "", nil},
		{"preflight from allowed origin, before auth", []string{ui}, preflight(ui), http.StatusNoContent, ui,
			map[string]string{
				"Access-Control-Allow-Methods":     corsAllowMethods,
				"Access-Control-Allow-Headers":     "authorization,content-type,if-none-match",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Max-Age":           corsMaxAge,
			}},
		{"origin matched without case or trailing slash", []string{"HTTP://UI.example:8080/"}, preflight(ui), http.StatusNoContent, ui, nil},
		{"wildcard answers * without credentials", []string{"*"}, preflight("https://other.example"), http.StatusNoContent, "*",
			map[string]string{"Access-Control-Allow-Credentials": ""}},
		{"wildcard: an actual request gets * without credentials", []string{"*"},
			request{method: http.MethodGet, path: "/api/2/connections", header: map[string]string{"Origin": "https://other.example"}},
			http.StatusOK, "*", map[string]string{"Access-Control-Allow-Credentials": ""}},
		{"wildcard and a named origin: the named one gets credentials", []string{"*", ui}, preflight(ui), http.StatusNoContent, ui,
			map[string]string{"Access-Control-Allow-Credentials": "true"}},
		{"null origin refused even with the wildcard", []string{"*"}, preflight("null"), http.StatusForbidden, "", nil},
		{"null origin refused even when listed", []string{"null"},
			request{method: http.MethodGet, path: "/api/2/connections", header: map[string]string{"Origin": "null"}},
			http.StatusOK, "", map[string]string{"Access-Control-Allow-Credentials": ""}},
		{"preflight from other origin refused", []string{ui}, preflight("http://evil.example"), http.StatusForbidden, "", nil},
		{"preflight with odd header list gets the default list", []string{ui},
			request{method: http.MethodOptions, path: "/api/2/connections", noAuth: true, header: map[string]string{
				"Origin": ui, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x\r\ny: z",
			}},
			http.StatusNoContent, ui, map[string]string{"Access-Control-Allow-Headers": corsAllowHeaders}},
		{"actual request from allowed origin", []string{ui},
			request{method: http.MethodGet, path: "/api/2/connections", header: map[string]string{"Origin": ui}},
			http.StatusOK, ui, map[string]string{"Access-Control-Expose-Headers": corsExposeHeaders}},
		{"actual request still needs credentials", []string{ui},
			request{method: http.MethodGet, path: "/api/2/connections", noAuth: true, header: map[string]string{"Origin": ui}},
			http.StatusUnauthorized, ui, nil},
		{"actual request from other origin has no CORS headers", []string{ui},
			request{method: http.MethodGet, path: "/api/2/connections", header: map[string]string{"Origin": "http://evil.example"}},
			http.StatusOK, "", nil},
		{"piggyback preflight", []string{ui},
			request{method: http.MethodOptions, path: "/devops/piggyback/connectivity", noAuth: true, header: map[string]string{
				"Origin": ui, "Access-Control-Request-Method": "POST",
			}},
			http.StatusNoContent, ui, map[string]string{"Access-Control-Allow-Headers": corsAllowHeaders}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := corsServer(t, tt.origins...)
			rec := serve(t, s, tt.req)
			assertStatus(t, rec, tt.wantStatus)
			if got := rec.Header().Get("Access-Control-Allow-Origin"); got != tt.wantOrigin {
				t.Errorf("Access-Control-Allow-Origin = %q, want %q", got, tt.wantOrigin)
			}
			for k, v := range tt.wantHeaders {
				if got := rec.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

// TestPiggybackSingletonAlias: Ditto 2's path of the id listing reaches the
// id listing actor.
func TestPiggybackSingletonAlias(t *testing.T) {
	s, d := corsServer(t)
	rec := serve(t, s, request{path: "/devops/piggyback/connectivity", body: envelopeBody(
		"/user/connectivityRoot/connectionIdsRetrieval/singleton", `{"aggregate":false}`,
		`{"type":"connectivity.commands:retrieveAllConnectionIds"}`)})
	assertStatus(t, rec, http.StatusOK)
	if got := d.onlyCall(t).target; got != "/user/connectivityRoot/connectionIdsRetrieval" {
		t.Fatalf("dispatched to %q", got)
	}
}
