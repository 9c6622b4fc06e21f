package test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
)

// TestBinaryHTTPPushCredentials: through the binary's wiring,
// testConnection of an HTTP push connection with OAuth 2 password
// credentials asks the token endpoint for Ditto's password grant and fails
// with 401 when the endpoint refuses the password;
// CONNECTIVITY_HTTP_OAUTH2_ENFORCE_HTTPS=false lets client credentials use
// an http token endpoint; HMAC credentials whose parameters cannot sign
// fail the test instead of passing unsigned.
func TestBinaryHTTPPushCredentials(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	var mu sync.Mutex
	var grants []url.Values
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		mu.Lock()
		grants = append(grants, r.PostForm)
		mu.Unlock()
		if r.PostForm.Get("password") == "wrong" {
			http.Error(w, `{"error":"invalid_grant"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"tok","expires_in":300}`))
	}))
	defer tokens.Close()
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	defer endpoint.Close()

	bin := blackbox.BuildBinary(t)
	p := blackbox.StartBinary(t, bin, "DITTOCONN_DATA_DIR="+t.TempDir(), "INSTANCE_INDEX=bin-auth", "MONGO_DB_URI=",
		"CONNECTIVITY_HTTP_OAUTH2_ENFORCE_HTTPS=false")
	test := func(cred map[string]any) map[string]any {
		t.Helper()
		conn := map[string]any{"id": "auth-push", "connectionType": "http-push", "connectionStatus": "open",
			"uri": endpoint.URL, "sources": []any{}, "credentials": cred,
			"targets": []any{map[string]any{"address": "POST:/x", "topics": []string{"_/_/things/twin/events"},
				"authorizationContext": []string{"nginx:ditto"}}}}
		_, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
			"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(ditto.TestConnection, "connection", conn)})
		return m
	}
	password := func(pw string) map[string]any {
		return map[string]any{"type": "oauth-password", "tokenEndpoint": tokens.URL + "/token", "clientId": "ditto",
			"requestedScopes": "things", "username": "alice", "password": pw}
	}

	blackbox.WantField(t, test(password("s3cret")), 200, "status")
	mu.Lock()
	if len(grants) != 1 || grants[0].Get("grant_type") != "password" || grants[0].Get("username") != "alice" ||
		grants[0].Get("password") != "s3cret" || grants[0].Get("client_id") != "ditto" || grants[0].Get("scope") != "things" {
		t.Errorf("token requests: %v", grants)
	}
	mu.Unlock()
	m := test(password("wrong"))
	blackbox.WantField(t, m, 401, "status")
	blackbox.WantField(t, m, "connectivity:connection.unauthorized", "error")

	blackbox.WantField(t, test(map[string]any{"type": "oauth-client-credentials", "tokenEndpoint": tokens.URL + "/token",
		"clientId": "ditto", "clientSecret": "s", "requestedScopes": "things"}), 200, "status")

	m = test(map[string]any{"type": "hmac", "algorithm": "az-sasl",
		"parameters": map[string]any{"sharedKeyName": "k", "endpoint": "hub", "sharedKey": "not base64!"}})
	if desc, _ := blackbox.Field(m, "description").(string); !strings.Contains(desc, "The shared key is not in Base64 scheme.") {
		t.Errorf("testConnection with an unusable az-sasl key: %v", m)
	}
	blackbox.WantField(t, m, 504, "status")
	blackbox.WantField(t, m, "connectivity:connection.failed", "error")
	blackbox.WantField(t, test(map[string]any{"type": "hmac", "algorithm": "az-sasl",
		"parameters": map[string]any{"sharedKeyName": "k", "endpoint": "hub", "sharedKey": base64.StdEncoding.EncodeToString([]byte("key"))}}),
		200, "status")
}
