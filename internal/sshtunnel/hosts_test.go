package sshtunnel

import (
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel/sshdtest"
)

// hostsRecorder is a client.HostPolicy that records the hosts it is asked
// for a dial check and refuses every dial when refuse is set.
type hostsRecorder struct {
	refuse bool
	mu     sync.Mutex
	hosts  []string
}

func (h *hostsRecorder) ValidateHost(string) error { return nil }

func (h *hostsRecorder) DialControl(host string) func(network, address string, c syscall.RawConn) error {
	h.mu.Lock()
	h.hosts = append(h.hosts, host)
	h.mu.Unlock()
	return func(_, address string, _ syscall.RawConn) error {
		if h.refuse {
			return errors.New("refused by the test's host policy: " + address)
		}
		return nil
	}
}

// TestIntegrationWrapChecksSSHHostAtDial: the SSH server's address is
// checked by the service's host policy when dialled (named by the SSH URI's
// host), and the protocol client, which dials the tunnel's loopback end,
// gets no policy: the broker's host was checked by the caller
// (client.Specs.Guarded), the loopback forward is not the broker.
func TestIntegrationWrapChecksSSHHostAtDial(t *testing.T) {
	s := sshdtest.Start(t)
	_, sshPort, _ := net.SplitHostPort(s.Addr)
	for _, refuse := range []bool{false, true} {
		tun := s.Tunnel("public-key")
		tun.URI = "ssh://localhost:" + sshPort
		conn := &model.Connection{ID: "c", ConnectionType: model.TypeMQTT, URI: "tcp://" + echoServer(t), SSHTunnel: tun}
		hosts := &hostsRecorder{refuse: refuse}
		var inner client.Env
		cl, err := Wrap(func(env client.Env) (client.Client, error) { inner = env; return &dialer{env: env}, nil },
			Config{DialTimeout: 5 * time.Second})(client.Env{Connection: conn, Logger: testLogger(t), Hosts: hosts})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cl.Close(ctxFor(t, 5*time.Second)) })
		if inner.Hosts != nil {
			t.Fatal("the protocol client behind the tunnel got the host policy for its loopback dial")
		}
		err = cl.Connect(ctxFor(t, 10*time.Second))
		switch {
		case refuse && (err == nil || !strings.Contains(err.Error(), "refused by the test's host policy")):
			t.Fatalf("connect with the SSH host refused: %v", err)
		case !refuse && err != nil:
			t.Fatalf("connect with the SSH host allowed: %v", err)
		}
		hosts.mu.Lock()
		if !slices.Equal(hosts.hosts, []string{"localhost"}) {
			t.Errorf("dial checks asked for %q, want the SSH server's host only", hosts.hosts)
		}
		hosts.mu.Unlock()
	}
}
