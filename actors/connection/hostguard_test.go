package connection

import (
	"context"
	"net"
	"net/url"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestClientsGuardedOutsideTheTunnel: the grain's clients check the blocked
// hosts outside the SSH tunnel: a tunnelled connection to allowed hosts
// connects although loopback, where the tunnel's local end listens, is
// blocked, the protocol client gets the loopback URI without the host
// policy, and a blocked SSH host is refused before anything is built.
func TestClientsGuardedOutsideTheTunnel(t *testing.T) {
	v := model.DefaultValidationConfig()
	v.BlockedHostnames = []string{"localhost"}
	v.LookupIP = func(h string) ([]net.IP, error) {
		if strings.HasSuffix(h, ".test") {
			return []net.IP{net.ParseIP("192.0.2.7")}, nil
		}
		return []net.IP{net.ParseIP("127.0.0.1")}, nil
	}
	var got []client.Env
	cfg := Config{Settings: Settings{Validation: v}, Clients: client.NewSpecs(client.Spec{Type: model.TypeMQTT,
		New: func(env client.Env) (client.Client, error) { got = append(got, env); return nopClient{}, nil }})}
	cfg.defaults()
	f, _ := cfg.Clients.Factory(model.TypeMQTT)
	conn := func(ssh string) *model.Connection {
		return &model.Connection{ID: "c", ConnectionType: model.TypeMQTT, URI: "tcp://broker.test:1883",
			SSHTunnel: &model.SSHTunnel{Enabled: true, URI: "ssh://" + ssh + ":22",
				Credentials: model.Credentials{Type: "plain"}}}
	}
	cl, err := f(client.Env{Connection: conn("ssh.test")})
	if err != nil {
		t.Fatalf("tunnelled connection to allowed hosts: %v", err)
	}
	t.Cleanup(func() { _ = cl.Close(t.Context()) })
	if len(got) != 1 {
		t.Fatalf("protocol clients built: %d", len(got))
	}
	u, _ := url.Parse(got[0].Connection.URI)
	if u.Hostname() != "127.0.0.1" || got[0].Hosts != nil {
		t.Fatalf("the protocol client got URI %q and host policy %v, want the tunnel's end and none", got[0].Connection.URI, got[0].Hosts)
	}
	if _, err := f(client.Env{Connection: conn("127.0.0.1")}); err == nil ||
		!strings.Contains(err.Error(), "SSH tunnel: ") || !strings.Contains(err.Error(), "loopback address (127.0.0.1)") {
		t.Fatalf("blocked SSH host: %v", err)
	}
	if len(got) != 1 {
		t.Fatal("a protocol client was built for a blocked SSH host")
	}
}

// nopClient is a protocol client that does nothing.
type nopClient struct{}

func (nopClient) Connect(context.Context) error                 { return nil }
func (nopClient) Publish(context.Context, client.Message) error { return nil }
func (nopClient) Status() []client.ResourceStatus               { return nil }
func (nopClient) Close(context.Context) error                   { return nil }
