package httppush

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// loopbackBlocked blocks localhost, which makes every loopback address
// forbidden, as Ditto's host validation does.
func loopbackBlocked() model.ValidationConfig {
	cfg := model.DefaultValidationConfig()
	cfg.BlockedHostnames = []string{"localhost"}
	cfg.LookupIP = func(string) ([]net.IP, error) { return []net.IP{net.ParseIP("127.0.0.1")}, nil }
	return cfg
}

// TestHTTPPushDialRefusesBlockedAddress: the endpoint's dial is checked
// against the blocked hosts, so an address the connection's name resolves
// to after validation is never connected to, and nothing reaches it.
func TestHTTPPushDialRefusesBlockedAddress(t *testing.T) {
	srv, got := recorder(t)
	c := &model.Connection{ID: "push-blocked", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: srv.URL, ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}}}
	cl, err := NewFactory(Options{})(client.Env{Connection: c, Hosts: loopbackBlocked()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = cl.(client.Tester).Test(ctx)
	if err == nil || !strings.Contains(err.Error(), "the hostname resolved to a loopback address (127.0.0.1)") {
		t.Fatalf("test of a loopback endpoint with loopback blocked: %v", err)
	}
	select {
	case r := <-got:
		t.Fatalf("the blocked endpoint received %s %s", r.method, r.uri)
	default:
	}
}

// TestHTTPPushTokenEndpointBlocked: a token endpoint on a blocked host is
// refused before any request.
func TestHTTPPushTokenEndpointBlocked(t *testing.T) {
	te := "http://127.0.0.1:1/token"
	c := &model.Connection{ID: "push-token", ConnectionType: model.TypeHTTPPush, ConnectionStatus: "open",
		URI: "http://192.0.2.1:80", ClientCount: 1, Targets: []model.Target{{Address: "POST:/x"}},
		Credentials: &model.Credentials{Type: "oauth-client-credentials", TokenEndpoint: &te}}
	_, err := NewFactory(Options{})(client.Env{Connection: c, Hosts: loopbackBlocked()})
	if err == nil || !strings.Contains(err.Error(), "token endpoint: The configured host '127.0.0.1' may not be used") {
		t.Fatalf("factory with a blocked token endpoint: %v", err)
	}
}
