package httppush

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// unsignedJWT is a JSON web token (no signature needed by its consumer)
// that expires at exp.
func unsignedJWT(exp time.Time, n int) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"none"}`)) + "." + enc([]byte(fmt.Sprintf(`{"exp":%d,"n":%d}`, exp.Unix(), n))) + ".x"
}

// TestHTTPPushOAuthPasswordFlow: with credentials of type oauth-password
// the token endpoint gets Ditto's password grant (grant_type, client id
// and secret, scope, audience, username, password as a form); requests
// carry the token as bearer; the token is reused until max-clock-skew
// before its expiry (the JWT's exp claim), then fetched again.
func TestHTTPPushOAuthPasswordFlow(t *testing.T) {
	var mu sync.Mutex
	var forms []url.Values
	var issued []string
	tokens := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" ||
			r.Header.Get("Accept") != "application/json" {
			http.Error(w, "bad token request", http.StatusBadRequest)
			return
		}
		_ = r.ParseForm()
		mu.Lock()
		forms = append(forms, r.PostForm)
		// the first token lives 5-6 s (exp has whole seconds): with a 3 s
		// skew it is fetched again after 2.5-3 s, leaving the first
		// requests ample time under load
		tok := unsignedJWT(time.Now().Add(6*time.Second), len(issued))
		if len(issued) > 0 {
			tok = unsignedJWT(time.Now().Add(time.Hour), len(issued))
		}
		issued = append(issued, tok)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer"})
	}))
	defer tokens.Close()
	srv, got := recorder(t)

	s := func(v string) *string { return &v }
	c := &model.Connection{ID: "push-password", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: srv.URL, ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}},
		Credentials: &model.Credentials{Type: "oauth-password", TokenEndpoint: s(tokens.URL + "/token"),
			ClientID: s("ditto"), ClientSecret: s("s3cret"), RequestedScopes: s("read write"), Audience: s("things"),
			Username: s("alice"), Password: s("pa ss&w=rd")}}
	cl, err := NewFactory(Options{TokenSkew: 3 * time.Second})(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer func() { _ = cl.Close(context.Background()) }()

	want := url.Values{"grant_type": {"password"}, "client_id": {"ditto"}, "client_secret": {"s3cret"},
		"scope": {"read write"}, "audience": {"things"}, "username": {"alice"}, "password": {"pa ss&w=rd"}}
	mu.Lock()
	if len(forms) != 1 || fmt.Sprint(forms[0]) != fmt.Sprint(want) {
		t.Fatalf("token requests %v, want one with %v", forms, want)
	}
	first := issued[0]
	mu.Unlock()

	for i := 0; i < 2; i++ {
		if err := publish(t, cl, client.Message{Address: "POST:/x", Payload: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		if h := next(t, got).header.Get("Authorization"); h != "Bearer "+first {
			t.Fatalf("request %d: Authorization %q, want the first token", i, h)
		}
	}
	mu.Lock()
	if len(forms) != 1 {
		t.Fatalf("%d token requests for a token still valid, want 1", len(forms))
	}
	mu.Unlock()
	poll.Check(t, 10*time.Second, func() error {
		if err := publish(t, cl, client.Message{Address: "POST:/x", Payload: []byte("{}")}); err != nil {
			return err
		}
		if h := next(t, got).header.Get("Authorization"); h == "Bearer "+first {
			return fmt.Errorf("still the first token")
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(forms) != 2 {
		t.Fatalf("%d token requests, want 2 (one refresh before expiry)", len(forms))
	}
}

// TestHTTPPushOAuthPasswordWithoutSecret: the password grant leaves the
// client secret out when the connection has none, as Ditto does.
func TestHTTPPushOAuthPasswordWithoutSecret(t *testing.T) {
	s := func(v string) *string { return &v }
	ts, err := newTokenSource(&model.Credentials{Type: "oauth-password", TokenEndpoint: s("https://idp.test/token"),
		ClientID: s("ditto"), RequestedScopes: s("a"), Username: s("u"), Password: s("p")}, client.Env{}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ts.form["client_secret"]; ok {
		t.Fatalf("client_secret sent without one: %v", ts.form)
	}
	if _, ok := ts.form["audience"]; ok {
		t.Fatalf("audience sent without one: %v", ts.form)
	}
}
