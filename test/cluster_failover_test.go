package test

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// clusterConnections is how many connections the cluster proof creates.
func clusterConnections() int {
	if v, err := strconv.Atoi(os.Getenv("DITTOCONN_CLUSTER_N")); err == nil && v > 0 {
		return v
	}
	return 300
}

// hostOf is the instance that hosts a connection's grain: a closed
// connection's status has one client entry, named after the instance
// whose grain answered.
func hostOf(t *testing.T, n *clusterNode, id string) string {
	t.Helper()
	status, m := n.command(t, cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
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
				status, m := node.command(t, cmd("connectivity.commands:createConnection",
					"connection", mqttConnection(id, "closed")))
				if status != http.StatusOK || m["status"] != float64(http.StatusCreated) {
					errs <- fmt.Sprintf("create %s via %s: %d %v", id, node.instance, status, m)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}

	hosts := map[string]int{}
	hostByID := map[string]string{}
	for i, id := range ids {
		for _, node := range c.nodes {
			status, m := node.command(t, cmd("connectivity.commands:retrieveConnection", "connectionId", id))
			if status != http.StatusOK || field(m, "connection", "id") != id {
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

	// SIGKILL node 3; every connection must answer through both survivors.
	victim := c.nodes[2].instance
	killed := time.Now()
	c.kill(2)
	var slowest time.Duration
	for _, id := range ids {
		for _, node := range c.live() {
			deadline := killed.Add(10 * time.Second)
			for {
				status, m := node.commandWithin(t, "2s", cmd("connectivity.commands:retrieveConnection", "connectionId", id))
				if status == http.StatusOK && field(m, "connection", "id") == id {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s (was on %s) not retrievable via %s 10 s after the kill: %d %v",
						id, hostByID[id], node.instance, status, m)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if d := time.Since(killed); d > slowest && hostByID[id] == victim {
				slowest = d
			}
		}
	}
	t.Logf("all %d connections manageable through the survivors; last of the killed node's answered %v after the kill", n, slowest.Round(time.Millisecond))
}
