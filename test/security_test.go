package test

import (
	"bytes"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestEveryRouteNeedsCredentials walks every route the gateway registers:
// all but health answer 401 without credentials and with wrong ones.
func TestEveryRouteNeedsCredentials(t *testing.T) {
	store := kit.Bolt().Open(t)()
	n := kit.Start(t, store, kit.Options{})
	e, ok := routesOf(t, n)
	if !ok {
		t.Skip("gateway handler is not an *echo.Echo")
	}
	checked := 0
	for _, r := range e.Routes() {
		if r.Path == "/health" || r.Method == http.MethodOptions || r.Method == echo.RouteNotFound {
			continue
		}
		path := r.Path
		for _, seg := range strings.Split(path, "/") {
			if strings.HasPrefix(seg, ":") {
				path = strings.Replace(path, seg, "x1", 1)
			}
		}
		path = strings.ReplaceAll(path, "*", "x1")
		for _, auth := range []string{"", "devops:wrong", "other:" + kit.Password} {
			t.Run(fmt.Sprintf("%s %s %q", r.Method, r.Path, auth), func(t *testing.T) {
				req, _ := http.NewRequest(r.Method, n.URL+path, bytes.NewReader([]byte("{}")))
				req.Header.Set("Content-Type", "application/json")
				if auth != "" {
					u, p, _ := strings.Cut(auth, ":")
					req.SetBasicAuth(u, p)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("status %d, want 401", resp.StatusCode)
				}
				if got := resp.Header.Get("WWW-Authenticate"); got != `Basic realm="DITTO-DEVOPS",charset=UTF-8` {
					t.Errorf("WWW-Authenticate %q", got)
				}
			})
			checked++
		}
	}
	if checked < 9 {
		t.Fatalf("only %d route checks: routes not found", checked)
	}
	st, _ := n.Do(t, http.MethodGet, "/health", nil, false)
	if st != http.StatusOK {
		t.Errorf("health without credentials: %d", st)
	}
}

// routesOf lists the node's routes.
func routesOf(t *testing.T, n *kit.Node) (*echo.Echo, bool) {
	t.Helper()
	e, ok := n.Handler().(*echo.Echo)
	return e, ok
}

// TestHostileRequests: hostile input gets a 4xx with Ditto's error JSON (or
// 413/408), never a 5xx, and the service stays up.
func TestHostileRequests(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	deep := strings.Repeat(`{"a":`, 10000) + "1" + strings.Repeat("}", 10000)
	deepArr := strings.Repeat("[", 100000) + strings.Repeat("]", 100000)
	huge := `{"targetActorSelection":"` + strings.Repeat("x", 900*1024) + `","headers":{},"piggybackCommand":{"type":"x"}}`
	env := func(command string) string {
		return `{"targetActorSelection":"/system/sharding/connection","headers":{"aggregate":false},"piggybackCommand":` + command + `}`
	}
	connWithID := func(id string) string {
		return env(`{"type":"` + ditto.CreateConnection + `","connection":{"id":"` + id + `","connectionType":"mqtt","connectionStatus":"closed","uri":"tcp://127.0.0.1:1883","sources":[{"addresses":["a/#"],"authorizationContext":["x:y"],"qos":0}]}}`)
	}
	cases := []struct {
		name, contentType, body string
		wantHTTP                int // 0: any 4xx; 200: answered, inner status checked
		wantInner               int
	}{
		{"text/plain body", "text/plain", env(`{"type":"` + ditto.RetrieveAllConnectionIDs + `"}`), 0, 0},
		{"empty body", "application/json", "", 400, 0},
		{"deeply nested object", "application/json", deep, 0, 0},
		{"deeply nested array", "application/json", deepArr, 0, 0},
		{"huge string over the limit", "application/json", huge + strings.Repeat(" ", 200*1024), 413, 0},
		{"number where a string belongs", "application/json", `{"targetActorSelection":5,"headers":{},"piggybackCommand":{}}`, 400, 0},
		{"headers not an object", "application/json", `{"targetActorSelection":"/x","headers":[],"piggybackCommand":{}}`, 400, 0},
		{"truncated", "application/json", env(`{"type":"` + ditto.RetrieveConnection), 400, 0},
		{"duplicate keys", "application/json", `{"targetActorSelection":"/a","targetActorSelection":"/system/sharding/connection","headers":{"aggregate":false},"piggybackCommand":{"type":"` + ditto.RetrieveConnection + `","connectionId":"dup","connectionId":"dup2"}}`, 200, 404},
		{"unknown fields", "application/json", `{"x":1,"targetActorSelection":"/system/sharding/connection","headers":{"aggregate":false},"piggybackCommand":{"type":"` + ditto.RetrieveConnection + `","connectionId":"unk","zzz":[1,2]}}`, 200, 404},
		{"unicode id", "application/json", connWithID("verbindung-ä"), 200, 400},
		{"id of 100 characters", "application/json", connWithID(strings.Repeat("a", 100)), 200, 201},
		{"id of 101 characters", "application/json", connWithID(strings.Repeat("a", 101)), 200, 400},
		{"connectionId a number", "application/json", env(`{"type":"` + ditto.RetrieveConnection + `","connectionId":12}`), 200, 400},
		{"connection a string", "application/json", env(`{"type":"` + ditto.CreateConnection + `","connection":"x"}`), 200, 400},
		{"NUL in id", "application/json", env(`{"type":"` + ditto.RetrieveConnection + `","connectionId":"a\u0000b"}`), 200, 400},
		{"invalid UTF-8", "application/json", env(`{"type":"` + ditto.RetrieveConnection + `","connectionId":"` + "\xff\xfe" + `"}`), 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, n.URL+"/devops/piggyback/connectivity", strings.NewReader(c.body))
			req.Header.Set("Content-Type", c.contentType)
			req.SetBasicAuth("devops", kit.Password)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var buf bytes.Buffer
			_, _ = buf.ReadFrom(resp.Body)
			if resp.StatusCode >= 500 {
				t.Fatalf("5xx: %d %s", resp.StatusCode, buf.Bytes())
			}
			switch {
			case c.wantHTTP == 0:
				if resp.StatusCode < 400 && resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			case resp.StatusCode != c.wantHTTP:
				t.Errorf("status %d, want %d: %.300s", resp.StatusCode, c.wantHTTP, buf.Bytes())
			}
			if resp.StatusCode >= 400 && resp.StatusCode != 408 {
				m := blackbox.Decode(t, buf.Bytes())
				if m["error"] == nil || m["status"] == nil {
					t.Errorf("not Ditto's error JSON: %.300s", buf.Bytes())
				}
			}
			if c.wantInner != 0 {
				m := blackbox.Decode(t, buf.Bytes())
				inner := m["status"]
				if m["type"] == ditto.DevopsErrorResponse {
					inner = blackbox.Field(m, "payload", "status")
				}
				if inner != float64(c.wantInner) {
					t.Errorf("inner status %v, want %d: %.300s", inner, c.wantInner, buf.Bytes())
				}
			}
		})
	}
	if st, _ := n.Do(t, http.MethodGet, "/health", nil, false); st != 200 {
		t.Fatalf("service down after hostile input: %d", st)
	}
}

// TestSecretsNeverLogged runs a scenario with secrets at debug level and
// searches every log line for them.
func TestSecretsNeverLogged(t *testing.T) {
	var logs poll.Buffer
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: true, LogOutput: &logs})
	const password = kit.Password
	secrets := []string{password, "uri-pw-Xy77", "client-secret-Qq55"}
	conn := blackbox.MQTTConnection("sec-1", "closed")
	conn["uri"] = "tcp://user:uri-pw-Xy77@127.0.0.1:1883"
	httpConn := map[string]any{
		"id": "sec-http", "connectionType": "http-push", "connectionStatus": "closed", "uri": "https://127.0.0.1:443",
		"credentials": map[string]any{"type": "oauth-client-credentials", "tokenEndpoint": "https://127.0.0.1:9/token",
			"clientId": "c", "clientSecret": "client-secret-Qq55", "requestedScopes": "s"},
		"targets": []any{map[string]any{"address": "POST:/x", "topics": []string{"_/_/things/twin/events"}, "authorizationContext": []string{"a:b"}}},
	}
	// a client key (client-cert credentials) as a fourth kind of secret:
	// one line of its PEM body stands for the key
	pki := blackbox.NewPKI(t)
	keyLines := strings.Split(strings.TrimSpace(pki.ClientKey), "\n")
	secrets = append(secrets, keyLines[1])
	tlsConn := blackbox.MQTTConnection("sec-tls", "closed")
	tlsConn["uri"] = "ssl://127.0.0.1:8883"
	tlsConn["ca"] = pki.CAPEM
	tlsConn["credentials"] = map[string]any{"type": "client-cert", "cert": pki.ClientCert, "key": pki.ClientKey}
	do := func(envelope map[string]any, auth string) {
		body := blackbox.MustJSON(t, envelope)
		req, _ := http.NewRequest(http.MethodPost, "/devops/piggyback/connectivity", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		u, p, _ := strings.Cut(auth, ":")
		req.SetBasicAuth(u, p)
		rec := newRecorder()
		n.Handler().ServeHTTP(rec, req)
	}
	good := "devops:" + password
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", conn), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", httpConn), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "sec-1"), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", tlsConn), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.TestConnection, "connection", func() map[string]any { c := maps.Clone(tlsConn); c["id"] = "sec-tls-test"; return c }()), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.OpenConnection, "connectionId", "sec-tls"), map[string]any{"timeout": "3s"}), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.TestConnection, "connection", conn), nil), good)
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", map[string]any{"id": "sec-bad", "connectionType": "mqtt",
		"connectionStatus": "closed", "uri": "tcp://user:uri-pw-Xy77@127.0.0.1"}), nil), good) // invalid: the URI is in the error
	do(kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "sec-1"), nil), "devops:wrong-"+password)
	n.Stop()
	out := logs.String()
	if len(out) == 0 {
		t.Fatal("no log lines at debug level: the test would prove nothing")
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("secret %q appears in the log", s)
		}
	}
}
func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
