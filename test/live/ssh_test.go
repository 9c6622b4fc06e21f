package live

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/sshtunnel/sshdtest"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// sshTunnelled is an MQTT connection to Mosquitto through an SSH tunnel to
// sshdAddr with password login and the host key checked against knownHosts.
func sshTunnelled(id, status, sshdAddr string, srv *sshdtest.Server, knownHosts ...string) map[string]any {
	return withTunnel(mqttLive("mqtt", id, status, "tcp://127.0.0.1:1883"), sshdAddr, srv, knownHosts...)
}

// withTunnel adds an SSH tunnel to sshdAddr (password login) to c.
func withTunnel(c map[string]any, sshdAddr string, srv *sshdtest.Server, knownHosts ...string) map[string]any {
	c["sshTunnel"] = map[string]any{
		"enabled": true,
		"uri":     "ssh://" + sshdAddr,
		"credentials": map[string]any{
			"type": "plain", "username": sshdtest.User, "password": srv.Password,
		},
		"validateHost": true,
		"knownHosts":   knownHosts,
	}
	return c
}

// wantFailed checks a connection.failed answer and its description.
func wantFailed(t *testing.T, r *pb.Reply, id, description string) {
	t.Helper()
	if r.Status != http.StatusGatewayTimeout {
		t.Fatalf("%d %s, want 504", r.Status, r.Payload)
	}
	m := blackbox.Decode(t, r.Payload)
	blackbox.WantField(t, m, ditto.CodeConnectionFailed, "error")
	blackbox.WantField(t, m, "The Connection with ID '"+id+"' failed to connect.", "message")
	blackbox.WantField(t, m, description, "description")
}

// wantClient checks the one client entry of a status.
func wantClient(t *testing.T, m map[string]any, status, details string) {
	t.Helper()
	wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"`+status+`","recoveryStatus":"ongoing","statusDetails":"`+details+`"}]`)
}

// TestIntegrationSSHTunnel: connections through an SSH tunnel to a real
// sshd reach Mosquitto through it, and a tunnel that cannot be made fails
// the connection with Ditto's texts and its own sshTunnelStatus entry.
// Run it with -run (it starts sshd and needs Mosquitto).
func TestIntegrationSSHTunnel(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	srv := sshdtest.Start(t)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})

	t.Run("test through the tunnel", func(t *testing.T) {
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", sshTunnelled("ssh-test-ok", "closed", srv.Addr, srv, srv.MD5)))
		if r.Status != http.StatusOK {
			t.Fatalf("test: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, blackbox.Decode(t, r.Payload), "Success(successfully connected + initialized mapper)", "testResult")
		// sshd opened the forwarded channel to the broker
		if !strings.Contains(srv.Log(), "target 127.0.0.1 port 1883") {
			t.Fatalf("sshd forwarded nothing to the broker:\n%s", srv.Log())
		}
	})

	t.Run("open through the tunnel, end to end", func(t *testing.T) {
		id := "ssh-live-1"
		sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "announce/"+id)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", sshTunnelled(id, "closed", srv.Addr, srv, srv.SHA256))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		// published through the tunnel
		announcement(t, sub.Next(t, 10*time.Second, "opened announcement").Payload(), id, "opened")
		m := status(t, n, id)
		blackbox.WantField(t, m, "open", "liveStatus")
		wantEntries(t, m, "sshTunnelStatus", `[{"type":"ssh","client":"kit-1","status":"open","statusDetails":"ssh tunnel established."}]`)
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"open","recoveryStatus":"succeeded","statusDetails":"CONNECTED"}]`)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("close: %d %s", r.Status, r.Payload)
		}
		announcement(t, sub.Next(t, 10*time.Second, "closed announcement").Payload(), id, "closed")
	})

	t.Run("wrong host key refused", func(t *testing.T) {
		const wrongKey = "SHA256:MEULjymCqsBH6TkmQzKmA+G2qd+AJwarKwr84vUsQ+Y"
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", sshTunnelled("ssh-test-hostkey", "closed", srv.Addr, srv, wrongKey)))
		wantFailed(t, r, "ssh-test-hostkey", "Cause: Server key did not validate")

		id := "ssh-hostkey-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", sshTunnelled(id, "closed", srv.Addr, srv, wrongKey))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		wantFailed(t, n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)), id, "Cause: Server key did not validate")
		m := waitLive(t, n, id, "failed", "ongoing", 10*time.Second)
		wantEntries(t, m, "sshTunnelStatus", `[{"type":"ssh","client":"kit-1","status":"failed","statusDetails":"SSH tunnel failed - cause <SshException>: Server key did not validate."}]`)
		wantClient(t, m, "misconfigured", "Failed to authenticate at SSH server - cause <SshException>: Server key did not validate.")
	})

	t.Run("unreachable ssh server", func(t *testing.T) {
		down := "127.0.0.1:" + strconv.Itoa(blackbox.FreePort(t))
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", sshTunnelled("ssh-test-down", "closed", down, srv, srv.SHA256)))
		wantFailed(t, r, "ssh-test-down", "Cause: Connection refused")

		id := "ssh-down-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", sshTunnelled(id, "closed", down, srv, srv.SHA256))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		wantFailed(t, n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)), id, "Cause: Connection refused")
		// Ditto counts a refused connection as the user's doing: the client
		// and the tunnel are misconfigured (the live status is failed: the
		// sources and targets of a client that is not connected are filled
		// in as failed, see docs/COMPATIBILITY.md)
		m := waitLive(t, n, id, "failed", "ongoing", 10*time.Second)
		wantClient(t, m, "misconfigured", "Failed to connect to ssh server - cause <ConnectException>: Connection refused.")
		wantEntries(t, m, "sshTunnelStatus", `[{"type":"ssh","client":"kit-1","status":"misconfigured","statusDetails":"SSH tunnel failed - cause <ConnectException>: Connection refused."}]`)
	})

	t.Run("http push through the tunnel", func(t *testing.T) {
		p := startPushServer(t)
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection",
			withTunnel(httpPushConnection("ssh-push-test", "closed", p.URI(), nil), srv.Addr, srv, srv.SHA256)))
		if r.Status != http.StatusOK {
			t.Fatalf("test: %d %s", r.Status, r.Payload)
		}
		if !strings.Contains(srv.Log(), "target 127.0.0.1 port "+strconv.Itoa(p.Port)) {
			t.Fatalf("sshd forwarded nothing to the endpoint:\n%s", srv.Log())
		}
		// the local end of the tunnel accepts at once: the test must still
		// see that the endpoint behind it is down
		down := "http://127.0.0.1:" + strconv.Itoa(blackbox.FreePort(t))
		r = n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection",
			withTunnel(httpPushConnection("ssh-push-down", "closed", down, nil), srv.Addr, srv, srv.SHA256)))
		wantFailed(t, r, "ssh-push-down", "Cause: Connection refused")

		id := "ssh-push-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection",
			withTunnel(httpPushConnection(id, "closed", p.URI(), nil), srv.Addr, srv, srv.SHA256))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		if req := p.next(t, 10*time.Second, "opened announcement"); req.method != http.MethodPost || req.path != "/announce/"+id {
			t.Fatalf("announcement request %s %s", req.method, req.path)
		}
		wantEntries(t, status(t, n, id), "sshTunnelStatus", `[{"type":"ssh","client":"kit-1","status":"open","statusDetails":"ssh tunnel established."}]`)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("close: %d %s", r.Status, r.Payload)
		}
	})

	t.Run("tunnel lost and made again", func(t *testing.T) {
		front := clienttest.NewProxy(t, srv.Addr)
		id := "ssh-lost-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", sshTunnelled(id, "closed", front.Address(), srv, srv.SHA256))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		front.Cut()
		poll.Until(t, 15*time.Second, "the lost tunnel in the status", func() bool {
			m := status(t, n, id)
			return m["liveStatus"] != "open"
		})
		front.Back()
		m := waitLive(t, n, id, "open", "succeeded", 20*time.Second)
		wantEntries(t, m, "sshTunnelStatus", `[{"type":"ssh","client":"kit-1","status":"open","statusDetails":"ssh tunnel established."}]`)
		logs := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id))
		if !strings.Contains(string(logs.Payload), "Session closed by remote.") {
			t.Errorf("connection logs lack the lost tunnel: %s", logs.Payload)
		}
	})
}
