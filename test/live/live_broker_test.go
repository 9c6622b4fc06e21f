package live

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// brokerLink is a path to a broker that a test may cut and restore.
type brokerLink interface {
	Addr() string
	Down()
	Up()
}

// announcementReader returns the next message a test consumer received, or
// nil when none came within the time.
type announcementReader func(within time.Duration) []byte

// liveCase describes a connection type for the shared live checklist.
type liveCase struct {
	typ, prefix string
	// conn is a connection of the type with id and desired status on the
	// broker at addr (host:port), logging in with login ("user:pass", or ""
	// for none).
	conn func(id, status, addr, login string) map[string]any
	// good is a broker address and login that work.
	good func(t *testing.T) (addr, login string)
	// creds is a broker that checks logins, with a right and a wrong login.
	creds func(t *testing.T) (addr, right, wrong string)
	// link is a path to a broker that the test cuts and restores.
	link func(t *testing.T) brokerLink
	// listen starts a consumer on the broker behind link for the
	// announcements of connection id.
	listen func(t *testing.T, link brokerLink, id string) announcementReader
	// sources and targets are the addresses the connection of id has, in
	// the status order.
	sources func(id string) []string
	targets []string
	// noticeDown bounds how long the client needs to notice an outage.
	noticeDown time.Duration
	// freshBroker: the broker behind link comes back empty, so consumers
	// started before the outage must be started again.
	freshBroker bool
	// forceClose makes the broker close the connections of id as when it
	// shuts down (nil: the broker cannot).
	forceClose func(t *testing.T, id string)
}

// piggyCmd sends command to the connection shard over the piggyback API and
// returns the command's status and the decoded answer.
func piggyCmd(t *testing.T, n *kit.Node, command map[string]any) (int, map[string]any) {
	t.Helper()
	st, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, command, nil))
	if st != http.StatusOK {
		t.Fatalf("piggyback %v: HTTP %d %s", command["type"], st, body)
	}
	m := blackbox.Decode(t, body)
	s, _ := m["status"].(float64)
	return int(s), m
}

// piggyStatus retrieves the connection status over the piggyback API.
func piggyStatus(t *testing.T, n *kit.Node, id string) map[string]any {
	t.Helper()
	st, m := piggyCmd(t, n, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id))
	if st != http.StatusOK {
		t.Fatalf("status of %s: %d %v", id, st, m)
	}
	return m
}

// piggyWaitLive polls the status until liveStatus and recoveryStatus match.
func piggyWaitLive(t *testing.T, n *kit.Node, id, live, recovery string, within time.Duration) map[string]any {
	t.Helper()
	var last map[string]any
	poll.Check(t, within, func() error {
		last = piggyStatus(t, n, id)
		if last["liveStatus"] == live && (recovery == "" || last["recoveryStatus"] == recovery) {
			return nil
		}
		return fmt.Errorf("liveStatus %s/%s of %s not reached; last status %v", live, recovery, id, last)
	})
	return last
}

// expectAnnouncement reads messages until the announcement kind of id
// comes (an earlier "opened" may precede a "closed") and checks its shape.
func expectAnnouncement(t *testing.T, next announcementReader, id, kind string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	var seen []string
	for {
		left := time.Until(deadline)
		if left <= 0 {
			t.Fatalf("no %s announcement of %s within %v; got %q", kind, id, within, seen)
		}
		p := next(left)
		if p == nil {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(p, &m); err != nil {
			t.Fatalf("announcement is not JSON: %s", p)
		}
		if m["topic"] == "_/"+id+"/connections/announcements/"+kind {
			announcement(t, p, id, kind)
			return
		}
		seen = append(seen, string(p))
	}
}

func entriesJSON(typ string, addrs []string, status, details string) string {
	var parts []string
	for _, a := range addrs {
		parts = append(parts, fmt.Sprintf(`{"type":%q,"client":%q,"address":%q,"status":%q,"statusDetails":%q}`,
			typ, kit.Instance, a, status, details))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// openTargetsJSON are the entries of the open targets addrs: "unknown" for
// an address with placeholders, whose producer Ditto starts on demand.
func openTargetsJSON(addrs []string) string {
	var parts []string
	for _, a := range addrs {
		status, details := "open", "Producer started."
		if strings.Contains(a, "{{") {
			status, details = "unknown", "Producers for targets with placeholders are started on-demand."
		}
		parts = append(parts, fmt.Sprintf(`{"type":"target","client":%q,"address":%q,"status":%q,"statusDetails":%q}`,
			kit.Instance, a, status, details))
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// testLiveBroker runs the issue-4 checklist for one connection type on a
// node of its own, through the piggyback API.
func testLiveBroker(t *testing.T, lc liveCase) {
	store := kit.Bolt().Open(t)
	n := kit.Start(t, store(), kit.Options{Verbose: testing.Verbose()})
	p := lc.prefix

	t.Run("test success", func(t *testing.T) {
		addr, login := lc.good(t)
		st, m := piggyCmd(t, n, blackbox.Cmd(ditto.TestConnection, "connection", lc.conn(p+"-test-ok", "closed", addr, login)))
		if st != http.StatusOK {
			t.Fatalf("test: %d %v", st, m)
		}
		blackbox.WantField(t, m, "Success(successfully connected + initialized mapper)", "testResult")
	})

	t.Run("test wrong credentials", func(t *testing.T) {
		addr, right, wrong := lc.creds(t)
		st, m := piggyCmd(t, n, blackbox.Cmd(ditto.TestConnection, "connection", lc.conn(p+"-test-cred", "closed", addr, wrong)))
		if st != http.StatusUnauthorized {
			t.Fatalf("test with a wrong login: %d %v", st, m)
		}
		blackbox.WantField(t, m, ditto.CodeConnectionUnauthorized, "error")
		if pw := wrong[strings.IndexByte(wrong, ':')+1:]; strings.Contains(fmt.Sprint(m), pw) {
			t.Errorf("the answer shows the password: %v", m)
		}
		st, m = piggyCmd(t, n, blackbox.Cmd(ditto.TestConnection, "connection", lc.conn(p+"-test-cred", "closed", addr, right)))
		if st != http.StatusOK {
			t.Fatalf("test with the right login: %d %v", st, m)
		}
	})

	t.Run("test unreachable", func(t *testing.T) {
		_, login := lc.good(t)
		st, m := piggyCmd(t, n, blackbox.Cmd(ditto.TestConnection, "connection",
			lc.conn(p+"-test-unreach", "closed", "127.0.0.1:"+strconv.Itoa(blackbox.FreePort(t)), login)))
		if st != http.StatusGatewayTimeout {
			t.Fatalf("test unreachable: %d %v", st, m)
		}
		blackbox.WantField(t, m, ditto.CodeConnectionFailed, "error")
	})

	link := lc.link(t)
	_, login := lc.good(t)

	t.Run("open, broker down and back, close", func(t *testing.T) {
		id := p + "-live-1"
		ann := lc.listen(t, link, id)
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.CreateConnection, "connection", lc.conn(id, "closed", link.Addr(), login))); st != http.StatusCreated {
			t.Fatalf("create: %d %v", st, m)
		}
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); st != http.StatusOK {
			t.Fatalf("open: %d %v", st, m)
		}
		expectAnnouncement(t, ann, id, "opened", 10*time.Second)

		m := piggyStatus(t, n, id)
		blackbox.WantField(t, m, "open", "connectionStatus")
		blackbox.WantField(t, m, "open", "liveStatus")
		blackbox.WantField(t, m, "succeeded", "recoveryStatus")
		if s, _ := m["connectedSince"].(string); !strings.HasSuffix(s, "Z") {
			t.Errorf("connectedSince = %v", m["connectedSince"])
		}
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"open","recoveryStatus":"succeeded","statusDetails":"CONNECTED"}]`)
		wantEntries(t, m, "sourceStatus", entriesJSON("source", lc.sources(id), "open", "Consumer started."))
		wantEntries(t, m, "targetStatus", openTargetsJSON(lc.targets))

		link.Down()
		m = piggyWaitLive(t, n, id, "failed", "ongoing", lc.noticeDown)
		blackbox.WantField(t, m, "open", "connectionStatus")
		if m["connectedSince"] != nil {
			t.Errorf("connectedSince while failed: %v", m["connectedSince"])
		}

		link.Up()
		piggyWaitLive(t, n, id, "open", "succeeded", 20*time.Second)
		if lc.freshBroker {
			ann = lc.listen(t, link, id)
		}
		// every connect announces opened, the reconnect too
		expectAnnouncement(t, ann, id, "opened", 10*time.Second)

		_, logs := piggyCmd(t, n, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id))
		raw, _ := json.Marshal(logs)
		for _, want := range []string{"Connection successful", "Connection failed due to: ", "Trying to reconnect"} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("connection logs lack %q: %s", want, raw)
			}
		}

		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.CloseConnection, "connectionId", id)); st != http.StatusOK {
			t.Fatalf("close: %d %v", st, m)
		}
		expectAnnouncement(t, ann, id, "closed", 10*time.Second)
		m = piggyStatus(t, n, id)
		blackbox.WantField(t, m, "closed", "connectionStatus")
		blackbox.WantField(t, m, "closed", "liveStatus")
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"closed","recoveryStatus":"unknown","statusDetails":"[DISCONNECTED] connection is closed"}]`)
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); st != http.StatusNoContent {
			t.Fatalf("delete: %d %v", st, m)
		}
	})

	t.Run("the broker closes the connection", func(t *testing.T) {
		if lc.forceClose == nil {
			t.Skip("the broker cannot close a client's connection")
		}
		// the broker closes by connection name: one of this run only
		id := fmt.Sprintf("%s-forced-%d", p, runID)
		addr, login := lc.good(t)
		ann := lc.listen(t, link, id)
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.CreateConnection, "connection", lc.conn(id, "open", addr, login))); st != http.StatusCreated {
			t.Fatalf("create: %d %v", st, m)
		}
		expectAnnouncement(t, ann, id, "opened", 10*time.Second)
		first := piggyWaitLive(t, n, id, "open", "succeeded", 10*time.Second)["connectedSince"]
		lc.forceClose(t, id)
		// reconnected by itself: a new opened announcement, open again since later
		expectAnnouncement(t, ann, id, "opened", 15*time.Second)
		m := piggyWaitLive(t, n, id, "open", "succeeded", 10*time.Second)
		if m["connectedSince"] == first {
			t.Errorf("connectedSince %v did not move after the reconnect", first)
		}
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); st != http.StatusNoContent {
			t.Fatalf("delete: %d %v", st, m)
		}
		expectAnnouncement(t, ann, id, "closed", 10*time.Second)
	})

	t.Run("open of an unreachable broker fails and keeps retrying", func(t *testing.T) {
		id := p + "-retry-1"
		link.Down()
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.CreateConnection, "connection", lc.conn(id, "closed", link.Addr(), login))); st != http.StatusCreated {
			t.Fatalf("create: %d %v", st, m)
		}
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); st != http.StatusGatewayTimeout {
			t.Fatalf("open of an unreachable broker: %d %v", st, m)
		} else {
			blackbox.WantField(t, m, ditto.CodeConnectionFailed, "error")
		}
		m := piggyWaitLive(t, n, id, "failed", "ongoing", 5*time.Second)
		blackbox.WantField(t, m, "open", "connectionStatus")
		link.Up()
		piggyWaitLive(t, n, id, "open", "succeeded", 20*time.Second)
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); st != http.StatusNoContent {
			t.Fatalf("delete: %d %v", st, m)
		}
	})

	t.Run("restart reopens a stored open connection", func(t *testing.T) {
		id := p + "-reopen-1"
		ann := lc.listen(t, link, id)
		if st, m := piggyCmd(t, n, blackbox.Cmd(ditto.CreateConnection, "connection", lc.conn(id, "open", link.Addr(), login))); st != http.StatusCreated {
			t.Fatalf("create: %d %v", st, m)
		}
		piggyWaitLive(t, n, id, "open", "succeeded", 15*time.Second)
		expectAnnouncement(t, ann, id, "opened", 10*time.Second)
		n.Stop()
		expectAnnouncement(t, ann, id, "closed", 10*time.Second)

		n2 := kit.Start(t, store(), kit.Options{Verbose: testing.Verbose()})
		expectAnnouncement(t, ann, id, "opened", 15*time.Second)
		m := piggyWaitLive(t, n2, id, "open", "succeeded", 15*time.Second)
		wantEntries(t, m, "sourceStatus", entriesJSON("source", lc.sources(id), "open", "Consumer started."))
		wantEntries(t, m, "targetStatus", openTargetsJSON(lc.targets))
		if st, m := piggyCmd(t, n2, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); st != http.StatusNoContent {
			t.Fatalf("delete: %d %v", st, m)
		}
	})
}
