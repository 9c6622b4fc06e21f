package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client/clients"
	"github.com/dittoconn/dittoconn/internal/client/httppush"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// pushRequest is one request the push endpoint received.
type pushRequest struct {
	method, path, auth, contentType string
	body                            []byte
}

// pushServer is an HTTP endpoint of the test on a fixed loopback port that
// can be stopped and started again.
type pushServer struct {
	t    *testing.T
	Port int
	srv  *http.Server
	reqs chan pushRequest
	// token the requests must carry as "Bearer …"; "" accepts any.
	token atomic.Value
}

func startPushServer(t *testing.T) *pushServer {
	t.Helper()
	p := &pushServer{t: t, Port: blackbox.FreePort(t), reqs: make(chan pushRequest, 100)}
	p.token.Store("")
	p.Start()
	t.Cleanup(p.Stop)
	return p
}

func (p *pushServer) URI() string { return fmt.Sprintf("http://127.0.0.1:%d", p.Port) }

func (p *pushServer) Start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	poll.Until(p.t, 10*time.Second, "listen on the push port again", func() bool {
		ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p.Port))
		return err == nil
	})
	p.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		auth := r.Header.Get("Authorization")
		if tok := p.token.Load().(string); tok != "" && auth != "Bearer "+tok {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		p.reqs <- pushRequest{method: r.Method, path: r.URL.Path, auth: auth, contentType: r.Header.Get("Content-Type"), body: body}
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = p.srv.Serve(ln) }()
}

func (p *pushServer) Stop() {
	if p.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = p.srv.Shutdown(ctx)
	p.srv = nil
}

func (p *pushServer) next(t *testing.T, within time.Duration, what string) pushRequest {
	t.Helper()
	select {
	case r := <-p.reqs:
		return r
	case <-time.After(within):
		t.Fatalf("%s: no request within %v", what, within)
		return pushRequest{}
	}
}

// tokenServer is an OAuth 2 token endpoint for client credentials.
type tokenServer struct {
	URL     string
	issued  atomic.Int64
	lastTok atomic.Value
}

func startTokenServer(t *testing.T, clientID, secret string, expiresIn int) *tokenServer {
	t.Helper()
	ts := &tokenServer{}
	ts.lastTok.Store("")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Method != http.MethodPost || r.PostForm.Get("grant_type") != "client_credentials" ||
			r.PostForm.Get("client_id") != clientID || r.PostForm.Get("client_secret") != secret {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"invalid_client"}`))
			return
		}
		tok := fmt.Sprintf("token-%d", ts.issued.Add(1))
		ts.lastTok.Store(tok)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": expiresIn})
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	ts.URL = "http://" + ln.Addr().String() + "/oauth/token"
	return ts
}

func httpPushConnection(id, status, uri string, creds map[string]any) map[string]any {
	c := map[string]any{
		"id":               id,
		"connectionType":   "http-push",
		"connectionStatus": status,
		"uri":              uri,
		"specificConfig":   map[string]any{"parallelism": "2"},
		"targets": []any{map[string]any{
			"address":              "POST:/announce/{{ connection:id }}",
			"topics":               []string{"_/_/connections/announcements"},
			"authorizationContext": []string{"nginx:ditto"},
		}},
	}
	if creds != nil {
		c["credentials"] = creds
	}
	return c
}

func oauthCreds(endpoint, secret string) map[string]any {
	return map[string]any{"type": "oauth-client-credentials", "tokenEndpoint": endpoint,
		"clientId": "dittoconn", "clientSecret": secret, "requestedScopes": "push"}
}

func TestIntegrationHTTPPush(t *testing.T) {
	reg := clients.Default()
	reg[model.TypeHTTPPush] = httppush.NewFactory(httppush.Options{ProbeInterval: 100 * time.Millisecond})
	validation := model.DefaultValidationConfig()
	validation.OAuth2EnforceHTTPS = false // the test's token endpoint speaks plain HTTP
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Clients: reg, Validation: &validation, Verbose: testing.Verbose()})
	tokens := startTokenServer(t, "dittoconn", "s3cret", 3600)

	t.Run("test success", func(t *testing.T) {
		p := startPushServer(t)
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", httpPushConnection("push-test-ok", "closed", p.URI(), oauthCreds(tokens.URL, "s3cret"))))
		if r.Status != http.StatusOK {
			t.Fatalf("test: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, blackbox.Decode(t, r.Payload), "Success(successfully connected + initialized mapper)", "testResult")
	})

	t.Run("test wrong credentials", func(t *testing.T) {
		p := startPushServer(t)
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", httpPushConnection("push-test-cred", "closed", p.URI(), oauthCreds(tokens.URL, "wrong-secret"))))
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("test with a wrong client secret: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, blackbox.Decode(t, r.Payload), ditto.CodeConnectionUnauthorized, "error")
		if strings.Contains(string(r.Payload), "wrong-secret") || strings.Contains(string(r.Payload), "s3cret") {
			t.Errorf("the answer shows a secret: %s", r.Payload)
		}
	})

	t.Run("test unreachable", func(t *testing.T) {
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", httpPushConnection("push-test-unreach", "closed", fmt.Sprintf("http://127.0.0.1:%d", blackbox.FreePort(t)), nil)))
		if r.Status != http.StatusGatewayTimeout {
			t.Fatalf("test unreachable: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, blackbox.Decode(t, r.Payload), ditto.CodeConnectionFailed, "error")
	})

	t.Run("open, endpoint down and back, close", func(t *testing.T) {
		p := startPushServer(t)
		id := "push-live-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", httpPushConnection(id, "closed", p.URI(), oauthCreds(tokens.URL, "s3cret")))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		before := tokens.issued.Load()
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id))
		if r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		req := p.next(t, 10*time.Second, "opened announcement")
		// the target's Ditto mapper writes the announcement, with its content type
		if req.method != http.MethodPost || req.path != "/announce/"+id || req.contentType != "application/vnd.eclipse.ditto+json" {
			t.Errorf("announcement request %s %s (%s)", req.method, req.path, req.contentType)
		}
		if want := "Bearer " + tokens.lastTok.Load().(string); req.auth != want {
			t.Errorf("Authorization %q, want %q", req.auth, want)
		}
		announcement(t, req.body, id, "opened")
		if got := tokens.issued.Load() - before; got != 1 {
			t.Errorf("%d tokens fetched for connect + one request, want 1 (cached)", got)
		}

		m := status(t, n, id)
		blackbox.WantField(t, m, "open", "liveStatus")
		blackbox.WantField(t, m, "succeeded", "recoveryStatus")
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"open","recoveryStatus":"succeeded","statusDetails":"CONNECTED"}]`)
		wantEntries(t, m, "targetStatus", `[{"type":"target","client":"kit-1","address":"POST:/announce/{{ connection:id }}","status":"unknown","statusDetails":"Producers for targets with placeholders are started on-demand."}]`)
		if _, has := m["sourceStatus"]; has {
			t.Errorf("sourceStatus of a connection without sources: %v", m["sourceStatus"])
		}

		p.Stop()
		waitLive(t, n, id, "failed", "ongoing", 10*time.Second)
		p.Start()
		waitLive(t, n, id, "open", "succeeded", 10*time.Second)
		announcement(t, p.next(t, 10*time.Second, "opened announcement after the outage").body, id, "opened")

		// the endpoint stops accepting the cached token: the closed
		// announcement gets a 401, the client fetches a new token once and
		// sends it again
		next := fmt.Sprintf("token-%d", tokens.issued.Load()+1)
		p.token.Store(next)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("close: %d %s", r.Status, r.Payload)
		}
		req = p.next(t, 10*time.Second, "closed announcement")
		announcement(t, req.body, id, "closed")
		if req.auth != "Bearer "+next {
			t.Errorf("closed announcement with %q, want the refreshed token %q", req.auth, next)
		}
		m = status(t, n, id)
		blackbox.WantField(t, m, "closed", "connectionStatus")
		blackbox.WantField(t, m, "closed", "liveStatus")
	})
}
