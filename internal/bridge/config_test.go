package bridge

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnvDefaults(t *testing.T) {
	cfg, err := ConfigFromEnv(env(map[string]string{EnvURI: "ws://ditto-gateway:8080/ws/2"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.URI != "ws://ditto-gateway:8080/ws/2" || cfg.Auth != AuthPreAuthenticated || cfg.ReconnectMin != time.Second ||
		cfg.ReconnectMax != 120*time.Second || cfg.PingInterval != 30*time.Second || cfg.MaxInFlight != 200 ||
		cfg.CommandSessions != DefaultCommandSessions || cfg.Token != nil || cfg.TLSCA != "" {
		t.Fatalf("%+v", cfg)
	}
	cfg, err = ConfigFromEnv(env(map[string]string{EnvURI: "ws://g/ws/2", EnvReconnectMin: "500ms", EnvReconnectMax: "2",
		EnvPingInterval: "1m", EnvMaxInFlight: "5", EnvAuth: "pre-authenticated"}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ReconnectMin != 500*time.Millisecond || cfg.ReconnectMax != 2*time.Second || cfg.PingInterval != time.Minute || cfg.MaxInFlight != 5 {
		t.Fatalf("%+v", cfg)
	}
}

func TestConfigFromEnvStandalone(t *testing.T) {
	cfg, err := ConfigFromEnv(env(nil))
	if err != nil || cfg.URI != "" {
		t.Fatalf("%+v %v", cfg, err)
	}
	_, err = ConfigFromEnv(env(map[string]string{EnvPingInterval: "10s"}))
	if err == nil || err.Error() != "DITTOCONN_DITTO_PING_INTERVAL is set but DITTOCONN_DITTO_WS_URI is not: the Ditto bridge is off in standalone mode" {
		t.Fatalf("%v", err)
	}
}

func TestConfigFromEnvRefusesInvalidValues(t *testing.T) {
	const uri = "ws://g:8080/ws/2"
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{EnvURI: "http://g/ws/2"}, `DITTOCONN_DITTO_WS_URI "http://g/ws/2": want ws://host:port/ws/2 or wss://…`},
		{map[string]string{EnvURI: "ws:///ws/2"}, `DITTOCONN_DITTO_WS_URI "ws:///ws/2": want ws://host:port/ws/2 or wss://…`},
		{map[string]string{EnvURI: "ws://u:secret@g/ws/2"}, `DITTOCONN_DITTO_WS_URI "ws://***@g/ws/2": credentials in the URI are not used; use DITTOCONN_DITTO_AUTH`},
		{map[string]string{EnvURI: uri, EnvAuth: "basic"}, `DITTOCONN_DITTO_AUTH "basic": want "pre-authenticated" or "jwt"`},
		{map[string]string{EnvURI: uri, EnvAuth: "jwt", EnvClientID: "id"}, "DITTOCONN_DITTO_AUTH=jwt needs DITTOCONN_DITTO_OAUTH_TOKEN_URL, DITTOCONN_DITTO_OAUTH_CLIENT_SECRET"},
		{map[string]string{EnvURI: uri, EnvAuth: "jwt", EnvClientID: "id", EnvClientSecret: "s3cr3t", EnvTokenURL: "ftp://idp/token"},
			`DITTOCONN_DITTO_OAUTH_TOKEN_URL "ftp://idp/token": want an http(s) URL`},
		{map[string]string{EnvURI: uri, EnvClientSecret: "s3cr3t"}, `DITTOCONN_DITTO_OAUTH_CLIENT_SECRET is set but DITTOCONN_DITTO_AUTH is "pre-authenticated": the token is used only with jwt`},
		{map[string]string{EnvURI: uri, EnvTLSCA: "/etc/ca.pem"}, "DITTOCONN_DITTO_TLS_CA is set but DITTOCONN_DITTO_WS_URI is not wss://"},
		{map[string]string{EnvURI: "wss://g/ws/2", EnvTLSCA: "/nonexistent/ca.pem"}, "DITTOCONN_DITTO_TLS_CA: open /nonexistent/ca.pem: no such file or directory"},
		{map[string]string{EnvURI: uri, EnvReconnectMin: "soon"}, `DITTOCONN_DITTO_RECONNECT_MIN "soon": want a positive duration such as 1s, 500ms or 2m`},
		{map[string]string{EnvURI: uri, EnvReconnectMax: "0s"}, `DITTOCONN_DITTO_RECONNECT_MAX "0s": want a positive duration such as 1s, 500ms or 2m`},
		{map[string]string{EnvURI: uri, EnvPingInterval: "-1s"}, `DITTOCONN_DITTO_PING_INTERVAL "-1s": want a positive duration such as 1s, 500ms or 2m`},
		{map[string]string{EnvURI: uri, EnvReconnectMin: "5m", EnvReconnectMax: "1m"}, "DITTOCONN_DITTO_RECONNECT_MIN (5m0s) is above DITTOCONN_DITTO_RECONNECT_MAX (1m0s)"},
		{map[string]string{EnvURI: uri, EnvMaxInFlight: "0"}, `DITTOCONN_DITTO_MAX_IN_FLIGHT "0": want a whole number of at least 1`},
		{map[string]string{EnvURI: uri, EnvMaxInFlight: "many"}, `DITTOCONN_DITTO_MAX_IN_FLIGHT "many": want a whole number of at least 1`},
	} {
		_, err := ConfigFromEnv(env(c.env))
		if err == nil || err.Error() != c.want {
			t.Errorf("%v:\n got %v\nwant %s", c.env, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("secret in %v", err)
		}
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	_ = os.WriteFile(bad, []byte("not pem"), 0o600)
	_, err := ConfigFromEnv(env(map[string]string{EnvURI: "wss://g/ws/2", EnvTLSCA: bad}))
	if err == nil || err.Error() != "DITTOCONN_DITTO_TLS_CA: "+bad+" holds no PEM certificate" {
		t.Fatal(err)
	}
}

func TestConfigFromEnvJWTAndOAuthTokenSource(t *testing.T) {
	var calls atomic.Int32
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_ = r.ParseForm()
		if r.Method != http.MethodPost || r.Form.Get("grant_type") != "client_credentials" || r.Form.Get("client_id") != "dittoconn" ||
			r.Form.Get("client_secret") != "s3cr3t" || r.Form.Get("scope") != "openid ditto" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "tok", "token_type": "Bearer", "expires_in": 3600})
	}))
	defer idp.Close()
	cfg, err := ConfigFromEnv(env(map[string]string{EnvURI: "wss://g/ws/2", EnvAuth: "jwt", EnvTokenURL: idp.URL,
		EnvClientID: "dittoconn", EnvClientSecret: "s3cr3t", EnvScope: "openid ditto"}))
	if err != nil || cfg.Auth != AuthJWT || cfg.Token == nil {
		t.Fatalf("%+v %v", cfg, err)
	}
	tok, exp, err := cfg.Token(context.Background())
	if err != nil || tok != "tok" || time.Until(exp) < 59*time.Minute || time.Until(exp) > time.Hour {
		t.Fatalf("%q %v %v", tok, exp, err)
	}
	// reused while young
	if tok, _, err := cfg.Token(context.Background()); err != nil || tok != "tok" || calls.Load() != 1 {
		t.Fatalf("%q %v calls %d", tok, err, calls.Load())
	}
	// refused credentials: misconfigured, and no secret in the error
	src := OAuthTokenSource(OAuth{TokenURL: idp.URL, ClientID: "dittoconn", ClientSecret: "wrong"})
	_, _, err = src(context.Background())
	if err == nil || !isMisconfigured(err) || err.Error() != "token endpoint "+idp.URL+" answered 401" {
		t.Fatalf("%v", err)
	}
}

func TestOAuthTokenSourceHonoursDeadline(t *testing.T) {
	block := make(chan struct{})
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer idp.Close()
	defer close(block)
	src := OAuthTokenSource(OAuth{TokenURL: idp.URL, ClientID: "id", ClientSecret: "s3cr3t"})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, _, err := src(ctx)
	if err == nil || time.Since(start) > 5*time.Second || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("%v after %v", err, time.Since(start))
	}
}

func TestTLSConfigFromCAFile(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	_ = os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	cfg, err := ConfigFromEnv(env(map[string]string{EnvURI: "wss://" + strings.TrimPrefix(srv.URL, "https://") + "/ws/2", EnvTLSCA: ca}))
	if err != nil || cfg.TLSCA != ca {
		t.Fatalf("%+v %v", cfg, err)
	}
}

func TestCommandTimeout(t *testing.T) {
	for _, c := range []struct {
		h    map[string]string
		want time.Duration
		zero bool
	}{
		{nil, 60 * time.Second, false},
		{map[string]string{"timeout": "10s"}, 10 * time.Second, false},
		{map[string]string{"timeout": "500ms"}, 500 * time.Millisecond, false},
		{map[string]string{"timeout": "1m"}, time.Minute, false},
		{map[string]string{"timeout": "42"}, 42 * time.Second, false},
		{map[string]string{"timeout": "2m"}, 60 * time.Second, false},
		{map[string]string{"timeout": "1d"}, 60 * time.Second, false},
		{map[string]string{"timeout": "99999999999999999h"}, 60 * time.Second, false},
		{map[string]string{"timeout": "0"}, 0, true},
		{map[string]string{"timeout": "0ms"}, 0, true},
		{map[string]string{"timeout": "-1s"}, 60 * time.Second, false},
		{map[string]string{"timeout": "1.5s"}, 60 * time.Second, false},
		{map[string]string{"timeout": "soon"}, 60 * time.Second, false},
	} {
		got, zero := commandTimeout(c.h)
		if got != c.want || zero != c.zero {
			t.Errorf("%v: %v %v, want %v %v", c.h, got, zero, c.want, c.zero)
		}
	}
}

func TestExpectsAnswer(t *testing.T) {
	twin := "org.acme/d/things/twin/commands/modify"
	for _, c := range []struct {
		topic  string
		status int
		h      map[string]string
		want   bool
	}{
		{twin, 0, nil, true},
		{twin, 0, map[string]string{"response-required": "false"}, false},
		{twin, 0, map[string]string{"response-required": "false", "requested-acks": `["twin-persisted"]`}, true}, // Ditto's error
		{twin, 0, map[string]string{"requested-acks": "[]"}, false},
		{twin, 0, map[string]string{"timeout": "0"}, false},
		{twin, 0, map[string]string{"timeout": "0", "response-required": "true"}, true}, // Ditto's error
		{twin, 0, map[string]string{"timeout": "0", "requested-acks": `["x"]`}, true},
		{twin, 204, nil, false},
		{"org.acme/d/things/live/messages/hello", 0, nil, true},
		{"org.acme/d/things/live/messages/hello", 200, nil, false},
		{"org.acme/d/things/twin/acks/conn:x", 200, nil, false},
		{"org.acme/d/things/live/events/modified", 0, nil, false},
		{"org.acme/d/things/live/events/modified", 0, map[string]string{"requested-acks": `["conn:x"]`}, true},
	} {
		m := &protocol.Message{Topic: c.topic, Status: c.status, Headers: c.h, Path: "/"}
		tp, _ := protocol.ParseTopic(c.topic)
		if got := expectsAnswer(m, tp); got != c.want {
			t.Errorf("%s %d %v: %v", c.topic, c.status, c.h, got)
		}
	}
}

func TestBackoff(t *testing.T) {
	lo, hi := time.Second, 120*time.Second
	for n, full := range []time.Duration{1, 2, 4, 8, 16, 32, 64, 120, 120} {
		full *= time.Second
		if n > 6 {
			full = hi
		}
		if got := backoff(lo, hi, n, func() float64 { return 0.999999 }); got > full || got < full-full/1000 {
			t.Errorf("attempt %d top: %v, want about %v", n, got, full)
		}
		if got := backoff(lo, hi, n, func() float64 { return 0 }); got != max(full/2, lo) {
			t.Errorf("attempt %d bottom: %v, want %v", n, got, max(full/2, lo))
		}
	}
	if got := backoff(lo, hi, 1000, func() float64 { return 0 }); got != hi/2 {
		t.Errorf("huge attempt: %v", got)
	}
}

func TestBackoffResetsAfterAHealthyMinute(t *testing.T) {
	if afterSocket(5, 59*time.Second) != 5 || afterSocket(5, time.Minute) != 0 {
		t.Fatal("reset")
	}
}

func TestStartMessageRefusesUnknownStream(t *testing.T) {
	if _, err := startMessage(Subscription{Stream: "_/_/connections/announcements"}); err == nil {
		t.Fatal("accepted")
	}
	m, err := startMessage(Subscription{Stream: "_/_/things/twin/events"})
	if err != nil || m != "START-SEND-EVENTS" {
		t.Fatalf("%q %v", m, err)
	}
}

func TestRestoreCorrelationID(t *testing.T) {
	m := &protocol.Message{Topic: "a/b/things/twin/acks", Headers: map[string]string{"correlation-id": `x"y_dittoconn-1`},
		Value: []byte(`{"l":{"headers":{"correlation-id":"x\"y_dittoconn-1"},"payload":"x\"y_dittoconn-12"}}`)}
	got := restoreCorrelationID(m, `x"y_dittoconn-1`, `x"y`)
	if got.Headers["correlation-id"] != `x"y` || string(got.Value) != `{"l":{"headers":{"correlation-id":"x\"y"},"payload":"x\"y_dittoconn-12"}}` {
		t.Fatalf("%s", protocol.Encode(got))
	}
	if m.Headers["correlation-id"] != `x"y_dittoconn-1` {
		t.Fatal("input changed")
	}
}
