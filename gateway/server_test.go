package gateway

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

const retrieveBody = `{"targetActorSelection":"/system/sharding/connection","headers":{"aggregate":false},` +
	`"piggybackCommand":{"type":"connectivity.commands:retrieveConnection","connectionId":"c1"}}`

func TestHealth(t *testing.T) {
	s := newTestServer(t, okReply(`{}`))
	rec := serve(t, s, request{method: http.MethodGet, path: "/health", noAuth: true})
	assertStatus(t, rec, http.StatusOK)
	assertContentType(t, rec, "application/json")
	assertBody(t, rec, `{"status":"UP"}`)
}

// fakeCluster is a ClusterHealth with fixed answers.
type fakeCluster struct {
	clustered bool
	members   int
	since     time.Time
}

func (f fakeCluster) ClusterHealth() (bool, int, time.Time) { return f.clustered, f.members, f.since }

// TestHealthCluster: a cluster member adds its view of the cluster; an
// unreachable etcd makes it DEGRADED while the node stays UP (200).
func TestHealthCluster(t *testing.T) {
	since := time.Date(2026, 12, 6, 11, 0, 0, 500, time.UTC)
	for _, tc := range []struct {
		name string
		c    fakeCluster
		want string
	}{
		{"single node", fakeCluster{members: 1}, `{"status":"UP"}`},
		{"etcd reachable", fakeCluster{clustered: true, members: 3},
			`{"cluster":{"etcd":"reachable","members":3,"status":"UP"},"status":"UP"}` + "\n"},
		{"etcd unreachable", fakeCluster{clustered: true, members: 3, since: since},
			`{"cluster":{"etcd":"unreachable","etcdUnreachableSince":"2026-12-06T11:00:00.0000005Z","members":3,"status":"DEGRADED"},"status":"UP"}` + "\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t)
			cfg.Cluster = tc.c
			rec := serve(t, New(cfg, okReply(`{}`)), request{method: http.MethodGet, path: "/health", noAuth: true})
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, tc.want)
		})
	}
}

func TestDevopsAuth(t *testing.T) {
	const challenge = `Basic realm="DITTO-DEVOPS",charset=UTF-8`
	basic := func(s string) map[string]string {
		return map[string]string{"Authorization": "Basic " + base64.StdEncoding.EncodeToString([]byte(s))}
	}
	tests := []struct {
		name    string
		req     request
		wantMsg string // empty: authenticated
	}{
		{"missing", request{noAuth: true}, msgCredsMissing},
		{"empty header", request{noAuth: true, header: map[string]string{"Authorization": ""}}, msgCredsMissing},
		{"wrong password", request{auth: [2]string{devopsUser, "nope"}}, msgCredsInvalid},
		{"wrong user", request{auth: [2]string{"admin", testPassword}}, msgCredsInvalid},
		{"password prefix", request{auth: [2]string{devopsUser, testPassword[:3]}}, msgCredsInvalid},
		{"bearer", request{noAuth: true, header: map[string]string{"Authorization": "Bearer abc"}}, msgCredsInvalid},
		{"not base64", request{noAuth: true, header: map[string]string{"Authorization": "Basic %%%"}}, msgCredsInvalid},
		{"no colon", request{noAuth: true, header: basic("devops")}, msgCredsInvalid},
		{"right", request{}, ""},
		{"raw basic header", request{noAuth: true, header: basic("devops:" + testPassword)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, okReply(`{"status":200}`))
			tt.req.path = "/devops/piggyback/connectivity"
			tt.req.body = retrieveBody
			rec := serve(t, s, tt.req)
			if tt.wantMsg == "" {
				assertStatus(t, rec, http.StatusOK)
				return
			}
			assertStatus(t, rec, http.StatusUnauthorized)
			assertContentType(t, rec, "text/plain; charset=UTF-8")
			if got := rec.Header().Get("WWW-Authenticate"); got != challenge {
				t.Fatalf("WWW-Authenticate = %q, want %q", got, challenge)
			}
			assertBody(t, rec, tt.wantMsg)
		})
	}
}

func TestDevopsAuthDisabled(t *testing.T) {
	logs := &poll.Buffer{}
	cfg := testConfig(t)
	cfg.DevopsSecured = false
	cfg.Logger = zerolog.New(logs)
	s := New(cfg, okReply(`{"status":200}`))

	if n := strings.Count(logs.String(), `"level":"warn"`); n != 1 {
		t.Fatalf("want one warning at construction, got %d: %s", n, logs)
	}
	for _, tt := range []struct {
		name string
		req  request
	}{
		{"no credentials", request{noAuth: true}},
		{"wrong credentials", request{auth: [2]string{"x", "y"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.req.path = "/devops/piggyback/connectivity"
			tt.req.body = retrieveBody
			assertStatus(t, serve(t, s, tt.req), http.StatusOK)
		})
	}
}

// TestDefaultPasswordWarned: secured devops with Ditto's default password
// logs one warning at construction (the password itself never); another
// password logs none.
func TestDefaultPasswordWarned(t *testing.T) {
	for _, tt := range []struct {
		password string
		warnings int
	}{{DefaultPassword, 1}, {testPassword, 0}} {
		logs := &poll.Buffer{}
		cfg := testConfig(t)
		cfg.DevopsPassword = tt.password
		cfg.Logger = zerolog.New(logs)
		New(cfg, okReply(`{"status":200}`))
		out := logs.String()
		if n := strings.Count(out, `"level":"warn"`); n != tt.warnings {
			t.Errorf("password %q: %d warnings, want %d: %s", tt.password, n, tt.warnings, out)
		}
		if tt.warnings > 0 && (!strings.Contains(out, "DEVOPS_PASSWORD") || strings.Contains(out, tt.password)) {
			t.Errorf("the warning must name DEVOPS_PASSWORD and not the password: %s", out)
		}
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	logs := &poll.Buffer{}
	cfg := testConfig(t)
	cfg.Logger = zerolog.New(logs).Level(zerolog.TraceLevel)
	s := New(cfg, &fakeDispatcher{err: errors.New("boom")})
	for _, r := range []request{
		{path: "/devops/piggyback/connectivity", body: retrieveBody},
		{path: "/devops/piggyback/connectivity", body: retrieveBody, auth: [2]string{devopsUser, "wrong-" + testPassword}},
		{path: "/devops/piggyback/connectivity", body: "not json"},
	} {
		serve(t, s, r)
	}
	out := logs.String()
	if out == "" {
		t.Fatal("expected some logs at trace level")
	}
	creds := base64.StdEncoding.EncodeToString([]byte(devopsUser + ":" + testPassword))
	for _, secret := range []string{testPassword, creds, "Authorization", "authorization"} {
		if strings.Contains(out, secret) {
			t.Fatalf("logs contain %q: %s", secret, out)
		}
	}
}

func TestMethodsAndUnknownRoutes(t *testing.T) {
	tests := []struct {
		name       string
		req        request
		wantStatus int
		wantType   string
		wantBody   string
	}{
		{"PUT unauthenticated is 401 first", request{method: http.MethodPut, path: "/devops/piggyback", noAuth: true},
			http.StatusUnauthorized, "text/plain; charset=UTF-8", msgCredsMissing},
		{"PUT", request{method: http.MethodPut, path: "/devops/piggyback"},
			http.StatusMethodNotAllowed, "text/plain; charset=UTF-8", "HTTP method not allowed, supported methods: POST"},
		{"GET with service", request{method: http.MethodGet, path: "/devops/piggyback/connectivity"},
			http.StatusMethodNotAllowed, "text/plain; charset=UTF-8", "HTTP method not allowed, supported methods: POST"},
		{"DELETE with instance", request{method: http.MethodDelete, path: "/devops/piggyback/connectivity/1"},
			http.StatusMethodNotAllowed, "text/plain; charset=UTF-8", "HTTP method not allowed, supported methods: POST"},
		{"unknown devops path unauthenticated", request{path: "/devops/nope", noAuth: true},
			http.StatusUnauthorized, "text/plain; charset=UTF-8", msgCredsMissing},
		{"POST health", request{method: http.MethodPost, path: "/health", noAuth: true},
			http.StatusMethodNotAllowed, "text/plain; charset=UTF-8", "HTTP method not allowed, supported methods: OPTIONS, GET"},
		{"unknown path", request{method: http.MethodGet, path: "/nope", noAuth: true},
			http.StatusNotFound, "text/plain; charset=UTF-8", "The requested resource could not be found."},
		{"PATCH on a connection", request{method: http.MethodPatch, path: "/api/2/connections/x"},
			http.StatusMethodNotAllowed, "text/plain; charset=UTF-8", "HTTP method not allowed, supported methods: GET, PUT, DELETE"},
		{"connections API unauthenticated", request{method: http.MethodGet, path: "/api/2/connections", noAuth: true},
			http.StatusUnauthorized, "text/plain; charset=UTF-8", msgCredsMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := okReply(`{}`)
			rec := serve(t, newTestServer(t, d), tt.req)
			assertStatus(t, rec, tt.wantStatus)
			assertContentType(t, rec, tt.wantType)
			assertBody(t, rec, tt.wantBody)
			if tt.wantStatus == http.StatusMethodNotAllowed &&
				!strings.HasSuffix(tt.wantBody, ": "+rec.Header().Get("Allow")) {
				t.Fatalf("Allow = %q does not match %q", rec.Header().Get("Allow"), tt.wantBody)
			}
			if n := len(d.recorded()); n != 0 {
				t.Fatalf("dispatcher called %d times", n)
			}
		})
	}
}

func TestRecoverFromPanickingDispatcher(t *testing.T) {
	d := &fakeDispatcher{fn: func(context.Context, string, *pb.Command) (*pb.Reply, error) {
		panic("dispatcher bug")
	}}
	s := newTestServer(t, d)
	rec := serve(t, s, request{path: "/devops/piggyback/connectivity", body: retrieveBody})
	assertStatus(t, rec, http.StatusInternalServerError)
	assertJSONBody(t, rec, `{"status":500,"error":"internalerror",`+
		`"message":"There was a rare case of an unexpected internal error.",`+
		`"description":"Please contact the service team or your administrator."}`)

	// The server keeps serving.
	d.mu.Lock()
	d.fn = nil
	d.reply = &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 200, Payload: []byte(`{"status":200}`)}
	d.mu.Unlock()
	assertStatus(t, serve(t, s, request{path: "/devops/piggyback/connectivity", body: retrieveBody}), http.StatusOK)
}

// TestStartShutdown serves on a real listener and checks that Shutdown stops
// accepting while an in-flight request still completes.
func TestStartShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	d := &fakeDispatcher{fn: func(ctx context.Context, _ string, _ *pb.Command) (*pb.Reply, error) {
		close(entered)
		select {
		case <-release:
			return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 200, Payload: []byte(`{"status":200}`)}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	s := newTestServer(t, d)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	served := make(chan error, 1)
	go func() { served <- s.Start(ln) }()

	type result struct {
		status int
		body   string
		err    error
	}
	got := make(chan result, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, "http://"+addr+"/devops/piggyback/connectivity",
			strings.NewReader(retrieveBody))
		req.SetBasicAuth(devopsUser, testPassword)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			got <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		got <- result{status: resp.StatusCode, body: string(b)}
	}()
	<-entered

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- s.Shutdown(ctx)
	}()
	// Shutdown closes the listener first; wait until new connections fail.
	poll.Check(t, 5*time.Second, func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return nil
		}
		c.Close()
		return errors.New("still accepting")
	})
	close(release)

	r := <-got
	if r.err != nil || r.status != http.StatusOK || r.body != `{"status":200}` {
		t.Fatalf("in-flight request: %+v", r)
	}
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Start: %v", err)
	}
}

func TestServerTimeoutsSet(t *testing.T) {
	s := newTestServer(t, okReply(`{}`))
	if s.srv.ReadHeaderTimeout <= 0 || s.srv.ReadTimeout <= 0 || s.srv.IdleTimeout <= 0 {
		t.Fatalf("read timeouts unset: %+v", s.srv)
	}
	if s.srv.WriteTimeout <= maxTimeout {
		t.Fatalf("WriteTimeout %v must exceed the longest piggyback deadline %v", s.srv.WriteTimeout, maxTimeout)
	}
}

func TestErrorJSONKeepsAngleBrackets(t *testing.T) {
	got := string(ditto.JSONFieldMissing("/headers").JSON())
	want := `{"status":400,"error":"json.field.missing","message":"JSON did not include required </headers> field!",` +
		`"description":"Check if all required JSON fields were set."}`
	if got != want {
		t.Fatalf("\n got %s\nwant %s", got, want)
	}
}
