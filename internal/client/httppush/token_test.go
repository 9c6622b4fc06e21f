package httppush

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestTokenCachedAndRefreshed: a token is reused until it expires (less the
// skew), then fetched again; fresh forces a fetch.
func TestTokenCachedAndRefreshed(t *testing.T) {
	var issued atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.PostForm.Get("client_secret") != "s" || r.PostForm.Get("scope") != "a b" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": fmt.Sprintf("t%d", issued.Add(1)), "expires_in": 2})
	}))
	defer srv.Close()
	str := func(s string) *string { return &s }
	ts, err := newTokenSource(&model.Credentials{Type: "oauth-client-credentials", TokenEndpoint: str(srv.URL),
		ClientID: str("c"), ClientSecret: str("s"), RequestedScopes: str("a b")}, client.Env{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	get := func(fresh bool) string {
		t.Helper()
		tok, err := ts.token(ctx, fresh)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		return tok
	}
	if a, b := get(false), get(false); a != "t1" || b != "t1" {
		t.Fatalf("tokens %s %s, want t1 twice (cached)", a, b)
	}
	if c := get(true); c != "t2" {
		t.Fatalf("fresh token %s, want t2", c)
	}
	// lifetime 2 s, skew capped at half of it: expired after 1 s
	deadline := time.Now().Add(5 * time.Second)
	for get(false) == "t2" {
		if time.Now().After(deadline) {
			t.Fatal("token never refreshed after expiry")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
