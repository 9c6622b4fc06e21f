package cluster

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// clusterConnections is how many connections the cluster proof creates.
func clusterConnections() int {
	return blackbox.EnvInt("DITTOCONN_CLUSTER_N", 300)
}

// hostOf is the instance that hosts a connection's grain: a closed
// connection's status has one client entry, named after the instance
// whose grain answered.
func hostOf(t *testing.T, n *clusterNode, id string) string {
	t.Helper()
	status, m := n.command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
	if status != http.StatusOK {
		t.Fatalf("status of %s via %s: %d %v", id, n.instance, status, m)
	}
	clients, _ := m["clientStatus"].([]any)
	if len(clients) != 1 {
		t.Fatalf("status of %s: want 1 client entry, got %v", id, m)
	}
	c, _ := clients[0].(map[string]any)
	host, _ := c["client"].(string)
	return host
}

// TestClusterSpreadAndFailover: connections created through three
// gateways are spread over the three nodes and retrievable through each;
// after one node is SIGKILLed every connection is manageable through the
// survivors within 10 s, and nothing acknowledged is lost.
func TestClusterSpreadAndFailover(t *testing.T) {
	c := startCluster(t, 3)
	n := clusterConnections()
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for g := 0; g < 3; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			node := c.nodes[g]
			for i := g; i < n; i += 3 {
				id := fmt.Sprintf("cluster-%03d", i)
				ids[i] = id
				status, m := node.command(t, blackbox.Cmd("connectivity.commands:createConnection",
					"connection", blackbox.MQTTConnection(id, "closed")))
				if status != http.StatusOK || m["status"] != float64(http.StatusCreated) {
					errs <- fmt.Sprintf("create %s via %s: %d %v\n%s", id, node.instance, status, m, tail(node.Logs.String(), 40))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		for _, node := range c.nodes {
			t.Logf("%s:\n%s", node.instance, tail(node.Logs.String(), 15))
		}
		t.Fatal(e)
	}

	hosts := map[string]int{}
	hostByID := map[string]string{}
	for i, id := range ids {
		for _, node := range c.nodes {
			status, m := node.command(t, blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
			if status != http.StatusOK || blackbox.Field(m, "connection", "id") != id {
				t.Fatalf("retrieve %s via %s: %d %v", id, node.instance, status, m)
			}
		}
		h := hostOf(t, c.nodes[i%3], id)
		hosts[h]++
		hostByID[id] = h
	}
	t.Logf("grains per node: %v", hosts)
	for _, node := range c.nodes {
		if hosts[node.instance] < n/10 {
			t.Errorf("node %s hosts %d of %d grains; want them spread", node.instance, hosts[node.instance], n)
		}
	}

	// Open MQTT connections, some of them on the node that will die.
	open := openOnEveryNode(t, c, 6)

	// Writers modify connections through the survivors' gateways while node
	// 3 dies; each id has one writer, so the store must end with the last
	// acknowledged name, or the one write after it whose answer was lost.
	stopWriters := make(chan struct{})
	ledger := newWriteLedger()
	var writers sync.WaitGroup
	for g := 0; g < 2; g++ {
		writers.Add(1)
		go func() {
			defer writers.Done()
			ledger.write(t, c.nodes[g], ids, g, stopWriters)
		}()
	}
	time.Sleep(500 * time.Millisecond)

	// SIGKILL node 3; every connection must answer through both survivors.
	victim := c.nodes[2].instance
	killed := time.Now()
	c.kill(2)
	// From the kill on, watch the open connections report open again from
	// a survivor.
	reopened := make(chan string, len(open))
	for id := range open {
		go func() {
			deadline := killed.Add(30 * time.Second)
			for time.Now().Before(deadline) {
				status, m := c.nodes[0].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
				if status == http.StatusOK && m["liveStatus"] == "open" && clientHost(m) != victim {
					reopened <- fmt.Sprintf("%s (was on %s) open on %s %v after the kill", id, open[id], clientHost(m),
						time.Since(killed).Round(time.Millisecond))
					return
				}
				time.Sleep(100 * time.Millisecond)
			}
			reopened <- "FAIL " + id + " not open again 30 s after the kill"
		}()
	}
	// Commands sent at the kill to grains of the victim, with Ditto's
	// default 10 s timeout, are answered once the survivors have seen it
	// leave, not held on its dead address until the timeout.
	var atKill sync.WaitGroup
	atKillErrs := make(chan string, 4)
	sent := 0
	for _, id := range ids {
		if hostByID[id] != victim || sent == 4 {
			continue
		}
		node := c.nodes[sent%2]
		sent++
		atKill.Add(1)
		go func() {
			defer atKill.Done()
			status, m := node.commandWithin(t, "10s", blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
			if status != http.StatusOK || blackbox.Field(m, "connection", "id") != id {
				atKillErrs <- fmt.Sprintf("%s via %s, sent at the kill: %d %v", id, node.instance, status, m)
			}
		}()
	}
	// The writers stop a second after the kill: they are there to have
	// writes in flight when it happens, and on the embedded FerretDB (which
	// scans) their load would slow the survivors' recovery reads.
	time.Sleep(time.Second)
	close(stopWriters)
	writers.Wait()
	// Checked by 16 workers at once: the survivors re-activate the moved
	// grains in parallel, each from the store.
	var (
		slowest  time.Duration
		slowMu   sync.Mutex
		failures = make(chan string, 2*n)
		work     = make(chan string)
		checkers sync.WaitGroup
	)
	for w := 0; w < 16; w++ {
		checkers.Add(1)
		go func() {
			defer checkers.Done()
			for id := range work {
				for _, node := range c.live() {
					deadline := killed.Add(10 * time.Second)
					for {
						status, m := node.commandWithin(t, "2s", blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
						if status == http.StatusOK && blackbox.Field(m, "connection", "id") == id {
							break
						}
						if time.Now().After(deadline) {
							failures <- fmt.Sprintf("%s (was on %s) not retrievable via %s 10 s after the kill: %d %v",
								id, hostByID[id], node.instance, status, m)
							break
						}
						time.Sleep(50 * time.Millisecond)
					}
					slowMu.Lock()
					if d := time.Since(killed); d > slowest && hostByID[id] == victim {
						slowest = d
					}
					slowMu.Unlock()
				}
			}
		}()
	}
	for _, id := range ids {
		work <- id
	}
	close(work)
	checkers.Wait()
	close(failures)
	for f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("all %d connections manageable through the survivors; last of the killed node's answered %v after the kill", n, slowest.Round(time.Millisecond))
	ledger.verify(t, c.nodes[0])
	atKill.Wait()
	close(atKillErrs)
	for e := range atKillErrs {
		t.Error(e)
	}

	// The open connections reconnect on the survivors without a command.
	for range open {
		r := <-reopened
		if strings.HasPrefix(r, "FAIL ") {
			t.Error(strings.TrimPrefix(r, "FAIL "))
			continue
		}
		t.Log(r)
	}
}

// clientHost is the instance of a status's first client entry.
func clientHost(status map[string]any) string {
	clients, _ := status["clientStatus"].([]any)
	if len(clients) == 0 {
		return ""
	}
	c, _ := clients[0].(map[string]any)
	h, _ := c["client"].(string)
	return h
}

// openOnEveryNode creates open MQTT connections (against the local
// Mosquitto), at least min and more until every node hosts one, and
// returns id → hosting instance once all report liveStatus open.
func openOnEveryNode(t *testing.T, c *testCluster, min int) map[string]string {
	t.Helper()
	blackbox.NeedBroker(t, "mosquitto", "127.0.0.1:1883")
	out := map[string]string{}
	perNode := map[string]int{}
	for i := 0; i < 40 && (i < min || len(perNode) < len(c.nodes)); i++ {
		id := fmt.Sprintf("cluster-open-%d", i)
		status, m := c.nodes[i%3].command(t, blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(id, "open")))
		if status != http.StatusOK || m["status"] != float64(http.StatusCreated) {
			t.Fatalf("create open %s: %d %v", id, status, m)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			if status == http.StatusOK && m["liveStatus"] == "open" {
				out[id] = clientHost(m)
				perNode[out[id]]++
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not open: %v", id, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("open connections per node: %v", perNode)
	return out
}

// writeLedger records, per connection, the last name a modify was
// acknowledged with and the names of the writes after it whose outcome is
// unknown (a timed-out write may still have been stored, e.g. by a node
// killed before it answered, while the writes after it failed).
type writeLedger struct {
	mu      sync.Mutex
	acked   map[string]string
	pending map[string][]string
	count   int
	pace    time.Duration // pause before each write (a long load on the shared test database); 0: none
}

func newWriteLedger() *writeLedger {
	return &writeLedger{acked: map[string]string{}, pending: map[string][]string{}}
}

// write modifies ids[i] for i ≡ g (mod 2) in turn until stop.
func (l *writeLedger) write(t *testing.T, node *clusterNode, ids []string, g int, stop <-chan struct{}) {
	for round := 0; ; round++ {
		for i := g; i < len(ids); i += 2 {
			select {
			case <-stop:
				return
			default:
			}
			time.Sleep(l.pace)
			id := ids[i]
			name := fmt.Sprintf("%s round %d", id, round)
			conn := blackbox.MQTTConnection(id, "closed")
			conn["name"] = name
			l.mu.Lock()
			l.pending[id] = append(l.pending[id], name)
			l.mu.Unlock()
			status, m := node.commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:modifyConnection", "connection", conn))
			l.mu.Lock()
			if status == http.StatusOK && m["status"] == float64(http.StatusNoContent) {
				l.acked[id] = name
				delete(l.pending, id)
				l.count++
			}
			l.mu.Unlock()
		}
	}
}

// verify reads every written connection: its name is the last acknowledged
// one, or one of the writes after it whose answers were lost.
func (l *writeLedger) verify(t *testing.T, node *clusterNode) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, name := range l.acked {
		status, m := node.command(t, blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
		got, _ := blackbox.Field(m, "connection", "name").(string)
		if status != http.StatusOK || (got != name && !slices.Contains(l.pending[id], got)) {
			t.Errorf("%s: stored name %q, last acknowledged %q (unanswered since: %q)", id, got, name, l.pending[id])
		}
	}
	t.Logf("%d modifications acknowledged around the kill; every one is stored", l.count)
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
