package cluster

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// etcdOutage is how long TestClusterEtcdOutage keeps etcd stopped
// (DITTOCONN_ETCD_OUTAGE, e.g. 5m, for a longer run).
func etcdOutage() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("DITTOCONN_ETCD_OUTAGE")); err == nil && d > 0 {
		return d
	}
	return 60 * time.Second
}

// stop ends the etcd process (SIGTERM) and waits for it; its data stays.
func (e *etcdServer) stop(t *testing.T) {
	t.Helper()
	_ = e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-e.done:
		e.done <- err // the cleanup of startEtcd waits on it too
	case <-time.After(15 * time.Second):
		t.Fatal("etcd did not stop")
	}
}

// start runs etcd again on the same data directory and ports, and waits
// until it is healthy.
func (e *etcdServer) start(t *testing.T) {
	t.Helper()
	<-e.done
	c := exec.Command(e.cmd.Path, e.cmd.Args[1:]...)
	logs := &poll.Buffer{}
	c.Stdout, c.Stderr = logs, logs
	if err := c.Start(); err != nil {
		t.Fatalf("restart etcd: %v", err)
	}
	e.cmd = c
	go func() { e.done <- c.Wait() }()
	// Runs before startEtcd's cleanup, which waits for the process to end.
	t.Cleanup(func() { _ = c.Process.Kill() })
	poll.Check(t, 30*time.Second, func() error {
		resp, err := http.Get("http://" + e.addr + "/health")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `"health":"true"`) {
			return fmt.Errorf("etcd health %s\n%s", body, logs.String())
		}
		return nil
	})
}

// clusterHealth is a node's /health "cluster" object (nil: no answer).
func (n *clusterNode) clusterHealth() map[string]any {
	resp, err := clusterHTTP.Get("http://" + n.Addr + "/health")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var m struct {
		Status  string         `json:"status"`
		Cluster map[string]any `json:"cluster"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&m) != nil || m.Status != "UP" {
		return nil
	}
	return m.Cluster
}

// metric is the value of an unlabelled series on a node's /metrics.
func (n *clusterNode) metric(name string) string {
	resp, err := clusterHTTP.Get("http://" + n.Addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			return v
		}
	}
	return ""
}

// exited tells whether the node's process has ended (and how).
func (n *clusterNode) exited() (bool, error) {
	select {
	case err := <-n.Done:
		n.Done <- err
		return true, err
	default:
		return false, nil
	}
}

// createLedger creates connections in a stream and records which creates
// were acknowledged.
type createLedger struct {
	mu    sync.Mutex
	acked []string
}

func (l *createLedger) create(t *testing.T, node *clusterNode, prefix string, stop <-chan struct{}) {
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		time.Sleep(100 * time.Millisecond) // pacing, not waiting for anything
		id := fmt.Sprintf("%s-%d", prefix, i)
		status, m := node.commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(id, "closed")))
		if status == http.StatusOK && m["status"] == float64(http.StatusCreated) {
			l.mu.Lock()
			l.acked = append(l.acked, id)
			l.mu.Unlock()
		}
	}
}

func (l *createLedger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.acked)
}

// TestClusterEtcdOutage: etcd stopped for a minute under a stream of
// creates and modifies. No node exits; the nodes keep serving with the
// membership they last saw (commands, open connections, a twin event from
// a source on one node to a target on another, a connection's clients on
// other nodes) and report the degraded
// state (/health, the gauge); a node SIGKILLed during the outage is replaced once etcd is back
// (its open connections reopen on the others); the survivors converge
// under their old ids; every acknowledged write is stored.
func TestClusterEtcdOutage(t *testing.T) {
	c := startCluster(t, 3)
	ids := make([]string, 30)
	for i := range ids {
		ids[i] = fmt.Sprintf("outage-%02d", i)
		status, m := c.nodes[i%3].command(t, blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(ids[i], "closed")))
		if status != http.StatusOK || m["status"] != float64(http.StatusCreated) {
			t.Fatalf("create %s: %d %v", ids[i], status, m)
		}
	}
	open := openOnEveryNode(t, c, 3)
	// A source on one survivor feeding a target on the other: the data
	// plane across nodes while etcd is away.
	pair := openCrossNodePair(t, c, "outage-dp", []string{c.nodes[2].instance})
	// A connection with a client on every node: two of them satellites.
	spread := fmt.Sprintf("outage-spread-%d", time.Now().UnixNano())
	conn := blackbox.MQTTConnection(spread, "open")
	conn["connectionType"], conn["clientCount"] = "mqtt-5", 3
	conn["specificConfig"] = map[string]any{"clientId": spread}
	conn["sources"].([]any)[0].(map[string]any)["addresses"] = []string{"spread/" + spread + "/#"}
	if status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:createConnection", "connection", conn)); status != http.StatusOK || m["status"] != float64(201) {
		t.Fatalf("create %s: %d %v", spread, status, m)
	}
	clientsAre := func(node *clusterNode, live string, want ...string) func() error {
		return func() error {
			_, m := node.commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", spread))
			if got := clientEntries(m); !slices.Equal(got, want) || m["liveStatus"] != live {
				return fmt.Errorf("%s clients %v live %v, want %v live %s", spread, got, m["liveStatus"], want, live)
			}
			return nil
		}
	}
	poll.Check(t, 30*time.Second, clientsAre(c.nodes[0], "open", "node-1=open", "node-2=open", "node-3=open"))
	for _, n := range c.nodes {
		if h := n.clusterHealth(); h["status"] != "UP" || h["etcd"] != "reachable" || h["members"] != float64(3) {
			t.Fatalf("%s health before the outage: %v", n.instance, h)
		}
	}

	// The load: modifies through the two nodes that live, creates through
	// one (paced: every create adds to the ids the listing scans on the
	// shared test database).
	stop := make(chan struct{})
	mods, creates := newWriteLedger(), &createLedger{}
	mods.pace = 50 * time.Millisecond
	var load sync.WaitGroup
	for g := 0; g < 2; g++ {
		load.Add(1)
		go func() { defer load.Done(); mods.write(t, c.nodes[g], ids, g, stop) }()
	}
	load.Add(1)
	go func() { defer load.Done(); creates.create(t, c.nodes[0], "outage-new", stop) }()
	stopLoad := sync.OnceFunc(func() { close(stop); load.Wait() })
	defer stopLoad()
	modCount := func() int { mods.mu.Lock(); defer mods.mu.Unlock(); return mods.count }
	poll.Until(t, 10*time.Second, "load running", func() bool { return modCount() > 0 && creates.count() > 0 })

	outage := etcdOutage()
	c.etcd.stop(t)
	stopped := time.Now()
	t.Logf("etcd stopped for %v", outage)
	for _, n := range c.nodes {
		poll.Check(t, 10*time.Second, func() error {
			if h := n.clusterHealth(); h["status"] != "DEGRADED" || h["etcd"] != "unreachable" || h["members"] != float64(3) {
				return fmt.Errorf("%s health during the outage: %v", n.instance, h)
			}
			if v := n.metric("dittoconn_cluster_etcd_unreachable"); v != "1" {
				return fmt.Errorf("%s dittoconn_cluster_etcd_unreachable %q", n.instance, v)
			}
			return nil
		})
	}
	pair.roundTrip(t, 1)
	if err := clientsAre(c.nodes[1], "open", "node-1=open", "node-2=open", "node-3=open")(); err != nil {
		t.Fatalf("during the outage: %v", err)
	}
	for id := range open {
		status, m := c.nodes[1].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
		if status != http.StatusOK || m["liveStatus"] != "open" {
			t.Fatalf("%s during the outage: %d %v", id, status, m)
		}
	}
	// A node dies a third into the outage; its lease can only run out once
	// etcd is back.
	time.Sleep(time.Until(stopped.Add(outage / 3)))
	modsBefore, createsBefore := modCount(), creates.count()
	victim := c.nodes[2].instance
	c.kill(2)
	time.Sleep(time.Until(stopped.Add(outage)))
	pair.roundTrip(t, 2)
	modsDuring := modCount() - modsBefore
	createsDuring := creates.count() - createsBefore
	for _, n := range c.live() {
		if gone, err := n.exited(); gone {
			t.Fatalf("%s exited during the etcd outage: %v\n%s", n.instance, err, tail(n.Logs.String(), 30))
		}
	}
	if modsDuring == 0 || createsDuring == 0 {
		t.Fatalf("the survivors served %d modifies and %d creates in the outage after the kill; want both", modsDuring, createsDuring)
	}
	t.Logf("after the kill, during the outage: %d modifies and %d creates acknowledged", modsDuring, createsDuring)

	c.etcd.start(t)
	back := time.Now()
	t.Logf("etcd back after %v", back.Sub(stopped).Round(time.Millisecond))
	for _, n := range c.live() {
		poll.Check(t, 30*time.Second, func() error {
			if h := n.clusterHealth(); h["status"] != "UP" || h["etcd"] != "reachable" || h["members"] != float64(2) {
				return fmt.Errorf("%s health after the outage: %v", n.instance, h)
			}
			if v := n.metric("dittoconn_cluster_etcd_unreachable"); v != "0" {
				return fmt.Errorf("%s dittoconn_cluster_etcd_unreachable %q", n.instance, v)
			}
			return nil
		})
	}
	t.Logf("the survivors converged on 2 members %v after etcd returned", time.Since(back).Round(time.Millisecond))
	stopLoad()
	// Routing converged: every connection answers through both survivors
	// (the victim's from the store on their new nodes).
	for _, id := range ids {
		for _, n := range c.live() {
			poll.Check(t, 15*time.Second, func() error {
				status, m := n.commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
				if status != http.StatusOK || blackbox.Field(m, "connection", "id") != id {
					return fmt.Errorf("retrieve %s via %s after the outage: %d %v", id, n.instance, status, m)
				}
				return nil
			})
		}
	}

	// The victim's open connections reopen on the survivors.
	for id, host := range open {
		poll.Check(t, 30*time.Second, func() error {
			status, m := c.nodes[0].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			if status != http.StatusOK || m["liveStatus"] != "open" || clientHost(m) == victim {
				return fmt.Errorf("%s (was on %s): %d %v", id, host, status, m)
			}
			return nil
		})
	}
	t.Logf("every open connection is open on a survivor %v after etcd returned", time.Since(back).Round(time.Millisecond))
	// The client of the dead node is Ditto's misconfigured entry now.
	poll.Check(t, 30*time.Second, clientsAre(c.nodes[0], "misconfigured", "<unknown>=misconfigured", "node-1=open", "node-2=open"))

	mods.verify(t, c.nodes[0])
	creates.mu.Lock()
	for _, id := range creates.acked {
		status, m := c.nodes[1].command(t, blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
		if status != http.StatusOK || blackbox.Field(m, "connection", "id") != id {
			t.Errorf("acknowledged create %s: %d %v", id, status, m)
		}
	}
	t.Logf("%d acknowledged creates, all stored", len(creates.acked))
	creates.mu.Unlock()
	for _, n := range c.live() {
		if gone, err := n.exited(); gone {
			t.Errorf("%s exited: %v", n.instance, err)
		}
		if !strings.Contains(n.Logs.String(), "etcd answers again and the membership lease held") {
			t.Errorf("%s did not log that it kept its membership", n.instance)
		}
	}
}
