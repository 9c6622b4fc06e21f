package httppush

import (
	"context"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// seen is one request as the endpoint received it.
type seen struct {
	method, uri string
	header      http.Header
}

// recorder is an HTTP endpoint that hands every request it receives to a
// channel.
func recorder(t *testing.T) (*httptest.Server, <-chan seen) {
	t.Helper()
	got := make(chan seen, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- seen{method: r.Method, uri: r.RequestURI, header: r.Header.Clone()}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// connected is a connected HTTP push client of a connection to uri.
func connected(t *testing.T, opts Options, uri string) client.Client {
	t.Helper()
	return connectedWith(t, opts, uri, nil)
}

func publish(t *testing.T, cl client.Client, msg client.Message) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return cl.Publish(ctx, msg)
}

func next(t *testing.T, got <-chan seen) seen {
	t.Helper()
	select {
	case s := <-got:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the endpoint received no request")
		return seen{}
	}
}

// TestHTTPPushSpecialHeadersSetPathAndQuery: as in Ditto, the headers
// http.path and http.query (any case) replace the request's path (the
// connection URI's path included) and query, and are not sent as headers.
func TestHTTPPushSpecialHeadersSetPathAndQuery(t *testing.T) {
	srv, got := recorder(t)
	cl := connected(t, Options{}, srv.URL+"/base")
	cases := []struct {
		name    string
		address string
		headers map[string]string
		uri     string
	}{
		{"none", "PUT:/things/a?x=1", map[string]string{"h": "v"}, "/base/things/a?x=1"},
		{"path replaces the whole path", "PUT:/things/a?x=1", map[string]string{"http.path": "/other/b"}, "/other/b?x=1"},
		{"path without slash", "PUT:/things/a", map[string]string{"http.path": "c%20d"}, "/c%20d"},
		{"query replaces the query", "PUT:/things/a?x=1", map[string]string{"http.query": "y=2&z=%2F"}, "/base/things/a?y=2&z=%2F"},
		{"both, any case", "POST:/t", map[string]string{"HTTP.Path": "p", "Http.Query": "q=1"}, "/p?q=1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := publish(t, cl, client.Message{Address: tc.address, Headers: tc.headers, Payload: []byte("{}")}); err != nil {
				t.Fatalf("publish: %v", err)
			}
			s := next(t, got)
			if s.uri != tc.uri {
				t.Errorf("request URI %q, want %q", s.uri, tc.uri)
			}
			for k := range s.header {
				if k == "Http.path" || k == "Http.query" {
					t.Errorf("reserved header %s sent", k)
				}
			}
			if tc.name == "none" && s.header.Get("h") != "v" {
				t.Errorf("header h = %q, want v", s.header.Get("h"))
			}
		})
	}
}

// TestHTTPPushRequestTimeoutIsDittos: a request is bound by Ditto's
// request-timeout (60 s unless configured), which the connection's
// specificConfig idleTimeout overrides; a slower endpoint fails the publish.
func TestHTTPPushRequestTimeoutIsDittos(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	newClient := func(opts Options, sc map[string]string) *Client {
		c := &model.Connection{ID: "push-timeout", ConnectionType: model.TypeHTTPPush, URI: srv.URL, SpecificConfig: sc}
		cl, err := NewFactory(opts)(client.Env{Connection: c})
		if err != nil {
			t.Fatal(err)
		}
		return cl.(*Client)
	}
	if d := newClient(Options{}, nil).RequestTimeout(); d != 60*time.Second {
		t.Errorf("default request timeout %v, want Ditto's 60s", d)
	}
	if d := newClient(Options{RequestTimeout: 90 * time.Second}, nil).RequestTimeout(); d != 90*time.Second {
		t.Errorf("configured request timeout %v, want 1m30s", d)
	}
	if d := newClient(Options{}, map[string]string{"idleTimeout": "5s"}).RequestTimeout(); d != 5*time.Second {
		t.Errorf("idleTimeout 5s gives request timeout %v, want 5s", d)
	}

	c := &model.Connection{ID: "push-slow", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open", URI: srv.URL, ClientCount: 1}
	cl, err := NewFactory(Options{RequestTimeout: 300 * time.Millisecond})(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close(ctx) }()
	if err := cl.Publish(ctx, client.Message{Address: "POST:/fast"}); err != nil {
		t.Fatalf("fast request: %v", err)
	}
	began := time.Now()
	err = cl.Publish(ctx, client.Message{Address: "POST:/slow"}) // the caller allows 5 s
	if took := time.Since(began); err == nil || took > 3*time.Second {
		t.Fatalf("slow request: err %v after %v, want a failure after the 300ms request timeout", err, took)
	}
}

// TestHTTPPushIdleTimeoutBareNumberIsMillis: idleTimeout "300" is 300 ms,
// as Ditto's validation and publisher both read it (Typesafe's
// getDuration): the request timeout is 300 ms and a slower endpoint fails
// the publish within it, not after 300 s.
func TestHTTPPushIdleTimeoutBareNumberIsMillis(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c := &model.Connection{ID: "push-idle-millis", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: srv.URL, ClientCount: 1, SpecificConfig: map[string]string{"idleTimeout": "300"}}
	cl, err := NewFactory(Options{})(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	if d := cl.(*Client).RequestTimeout(); d != 300*time.Millisecond {
		t.Fatalf("idleTimeout \"300\" gives request timeout %v, want 300ms", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := cl.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cl.Close(ctx) }()
	began := time.Now()
	err = cl.Publish(ctx, client.Message{Address: "POST:/slow"}) // the caller allows 10 s
	if took := time.Since(began); err == nil || took > 5*time.Second {
		t.Fatalf("slow request: err %v after %v, want a failure after the 300ms idle timeout", err, took)
	}
}

// connectProxy is a forward proxy that accepts CONNECT with the basic
// credentials user:pass and tunnels every tunnel to target, whatever
// authority was asked for; it reports the authorities asked for.
func connectProxy(t *testing.T, target string) (host string, port int, asked <-chan string) {
	t.Helper()
	ch := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodConnect {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		if r.Header.Get("Proxy-Authorization") != "Basic "+base64.StdEncoding.EncodeToString([]byte("user:pass")) {
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
		ch <- r.Host
		up, err := net.Dial("tcp", target)
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		down, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			up.Close()
			return
		}
		_, _ = io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n")
		go func() { _, _ = io.Copy(up, rw); up.Close() }()
		_, _ = io.Copy(down, up)
		down.Close()
	}))
	t.Cleanup(srv.Close)
	addr := srv.Listener.Addr().(*net.TCPAddr)
	return addr.IP.String(), addr.Port, ch
}

// TestHTTPPushThroughDittosHTTPProxy: with Ditto's http-push proxy enabled,
// the probe and every request go through the proxy as a CONNECT tunnel
// with basic Proxy-Authorization; the endpoint's host name is resolved by
// the proxy only. Wrong proxy credentials fail the connect.
func TestHTTPPushThroughDittosHTTPProxy(t *testing.T) {
	srv, got := recorder(t)
	host, port, asked := connectProxy(t, srv.Listener.Addr().String())
	const uri = "http://push-endpoint.invalid:8080/base" // resolvable by nobody but the proxy
	cl := connected(t, Options{Proxy: Proxy{Enabled: true, Host: host, Port: port, Username: "user", Password: "pass"}}, uri)
	if a := <-asked; a != "push-endpoint.invalid:8080" {
		t.Fatalf("probe asked the proxy for %q", a)
	}
	if err := publish(t, cl, client.Message{Address: "POST:/things", Headers: map[string]string{"h": "v"}, Payload: []byte("{}")}); err != nil {
		t.Fatalf("publish: %v", err)
	}
	s := next(t, got)
	if s.uri != "/base/things" || s.header.Get("h") != "v" || s.header.Get("Proxy-Authorization") != "" {
		t.Fatalf("endpoint saw %s with headers %v", s.uri, s.header)
	}
	select {
	case a := <-asked:
		if a != "push-endpoint.invalid:8080" {
			t.Fatalf("request asked the proxy for %q", a)
		}
	default:
		t.Fatal("the request did not go through the proxy")
	}

	c := &model.Connection{ID: "push-bad-proxy", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open", URI: uri, ClientCount: 1}
	bad, err := NewFactory(Options{Proxy: Proxy{Enabled: true, Host: host, Port: port, Username: "user", Password: "wrong"}})(client.Env{Connection: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bad.Connect(ctx); err == nil || !strings.Contains(err.Error(), "407") {
		_ = bad.Close(ctx)
		t.Fatalf("connect with wrong proxy credentials: %v, want the proxy's 407", err)
	}
	if err := (Proxy{Enabled: true, Port: 3128}).Validate(); err == nil {
		t.Error("an enabled proxy without host is accepted")
	}
}
