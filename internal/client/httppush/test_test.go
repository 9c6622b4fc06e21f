package httppush

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// testOnce runs what testConnection runs for c: the factory, then Test.
func testOnce(t *testing.T, c *model.Connection) error {
	t.Helper()
	cl, err := NewFactory(Options{})(client.Env{Connection: c})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.(client.Tester).Test(ctx)
}

// TestHTTPPushTestFetchesToken: testing a connection with OAuth
// credentials fetches a token; a token endpoint refusing the credentials
// fails the test as unauthorized, and the endpoint gets no request.
func TestHTTPPushTestFetchesToken(t *testing.T) {
	var refuse atomic.Bool
	var fetched atomic.Int32
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		if refuse.Load() {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
	}))
	defer tokens.Close()
	srv, got := recorder(t)
	te, id, secret, scope := tokens.URL+"/token", "cid", "csecret", "s"
	c := &model.Connection{ID: "push-test-oauth", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: srv.URL, ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}},
		Credentials: &model.Credentials{Type: "oauth-client-credentials", TokenEndpoint: &te, ClientID: &id,
			ClientSecret: &secret, RequestedScopes: &scope}}

	if err := testOnce(t, c); err != nil {
		t.Fatalf("test with a token endpoint issuing tokens: %v", err)
	}
	if n := fetched.Load(); n != 1 {
		t.Fatalf("token endpoint contacted %d times by the test, want 1", n)
	}
	refuse.Store(true)
	err := testOnce(t, c)
	if !errors.Is(err, client.ErrUnauthorized) || !strings.Contains(err.Error(), "token endpoint refused the credentials (HTTP 401)") {
		t.Fatalf("test with a refusing token endpoint: %v, want unauthorized", err)
	}
	select {
	case r := <-got:
		t.Fatalf("the test sent %s %s to the endpoint", r.method, r.uri)
	default:
	}
}

// TestHTTPPushTestSigns: testing a connection with HMAC credentials builds
// its signer and signs (bad parameters fail the test as a configuration
// error), sending nothing to the endpoint.
func TestHTTPPushTestSigns(t *testing.T) {
	srv, got := recorder(t)
	good := map[string]any{"region": "eu-central-1", "service": "execute-api", "accessKey": "AK", "secretKey": "SK"}
	if err := testOnce(t, hmacConnection(srv.URL, "aws4-hmac-sha256", good)); err != nil {
		t.Fatalf("test with valid aws4-hmac-sha256 parameters: %v", err)
	}
	bad := map[string]any{"region": "eu-central-1", "service": "execute-api", "accessKey": "AK"}
	err := testOnce(t, hmacConnection(srv.URL, "aws4-hmac-sha256", bad))
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "lack the parameter 'secretKey'") {
		t.Fatalf("test without secretKey: %v, want a configuration error", err)
	}
	err = testOnce(t, hmacConnection(srv.URL, "az-monitor-2016-04-01", map[string]any{"workspaceId": "w", "sharedKey": "not base64!"}))
	if !errors.Is(err, client.ErrConfig) {
		t.Fatalf("test with a sharedKey not in base64: %v, want a configuration error", err)
	}
	select {
	case r := <-got:
		t.Fatalf("the test sent %s %s to the endpoint", r.method, r.uri)
	default:
	}
}
