package client

import (
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
)

// TestGuardedFactoryValidatesHostOnEveryClient: the guarded factory
// refuses a client of a blocked host as misconfigured and hands the rules
// to the clients it builds.
func TestGuardedFactoryValidatesHostOnEveryClient(t *testing.T) {
	cfg := model.DefaultValidationConfig()
	cfg.BlockedHostnames = []string{"localhost"}
	cfg.LookupIP = func(string) ([]net.IP, error) { return []net.IP{net.ParseIP("127.0.0.1")}, nil }
	var got Env
	built := 0
	specs := NewSpecs(Spec{Type: model.TypeMQTT, New: func(env Env) (Client, error) { built++; got = env; return nil, nil }}).Guarded(cfg)
	f, _ := specs.Factory(model.TypeMQTT)

	_, err := f(Env{Connection: &model.Connection{ConnectionType: model.TypeMQTT, URI: "tcp://127.0.0.1:1883"}})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "the hostname resolved to a loopback address (127.0.0.1)") {
		t.Fatalf("blocked host: %v", err)
	}
	if built != 0 {
		t.Fatal("a client of a blocked host was built")
	}
	if _, err := f(Env{Connection: &model.Connection{ConnectionType: model.TypeMQTT, URI: "tcp://hono-endpoint:1883"}}); err != nil {
		t.Fatalf("allowed host: %v", err)
	}
	if built != 1 || got.Hosts == nil || got.DialControl("broker.test") == nil {
		t.Fatalf("the client did not get the host rules: built %d, hosts %v", built, got.Hosts)
	}
}

// TestGuardedFactoryValidatesSSHTunnelHost: with an SSH tunnel the tunnel's
// host is validated at every connect as well as the broker's (whose name
// the SSH server resolves).
func TestGuardedFactoryValidatesSSHTunnelHost(t *testing.T) {
	cfg := model.DefaultValidationConfig()
	cfg.BlockedHostnames = []string{"localhost"}
	cfg.LookupIP = func(h string) ([]net.IP, error) {
		if h == "ssh.test" || h == "broker.test" {
			return []net.IP{net.ParseIP("192.0.2.7")}, nil
		}
		return []net.IP{net.ParseIP("127.0.0.1")}, nil
	}
	built := 0
	f, _ := NewSpecs(Spec{Type: model.TypeMQTT, New: func(Env) (Client, error) { built++; return nil, nil }}).Guarded(cfg).Factory(model.TypeMQTT)
	conn := func(broker, ssh string) *model.Connection {
		return &model.Connection{ConnectionType: model.TypeMQTT, URI: "tcp://" + broker + ":1883",
			SSHTunnel: &model.SSHTunnel{Enabled: true, URI: "ssh://" + ssh + ":22"}}
	}
	if _, err := f(Env{Connection: conn("broker.test", "ssh.test")}); err != nil || built != 1 {
		t.Fatalf("allowed hosts: %v (built %d)", err, built)
	}
	_, err := f(Env{Connection: conn("broker.test", "127.0.0.1")})
	if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), "SSH tunnel: ") ||
		!strings.Contains(err.Error(), "the hostname resolved to a loopback address (127.0.0.1)") {
		t.Fatalf("blocked SSH host: %v", err)
	}
	if _, err := f(Env{Connection: conn("127.0.0.1", "ssh.test")}); !errors.Is(err, ErrConfig) {
		t.Fatalf("blocked broker host behind the tunnel: %v", err)
	}
	if built != 1 {
		t.Fatal("a client of a blocked host was built")
	}
}
