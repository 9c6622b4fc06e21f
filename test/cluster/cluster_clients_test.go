package cluster

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// clientEntries lists a status's client entries as instance → status.
func clientEntries(m map[string]any) []string {
	var out []string
	list, _ := m["clientStatus"].([]any)
	for _, e := range list {
		c, _ := e.(map[string]any)
		out = append(out, fmt.Sprintf("%v=%v", c["client"], c["status"]))
	}
	slices.Sort(out)
	return out
}

// TestIntegrationClusterClientCount: clientCount 3 spreads the clients of
// one connection over the members, one per member; with fewer members the
// rest are Ditto's misconfigured entries, and a member that joins takes
// one.
func TestIntegrationClusterClientCount(t *testing.T) {
	blackbox.NeedBroker(t, "mosquitto", "127.0.0.1:1883")
	c := startCluster(t, 2)
	id := fmt.Sprintf("spread-%d", time.Now().UnixNano())
	conn := blackbox.MQTTConnection(id, "open")
	conn["connectionType"] = "mqtt-5"
	conn["clientCount"] = 3
	conn["specificConfig"] = map[string]any{"clientId": id}
	source := "spread/" + id + "/#"
	conn["sources"].([]any)[0].(map[string]any)["addresses"] = []string{source}
	status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:createConnection", "connection", conn))
	if status != http.StatusOK || m["status"] != float64(201) {
		t.Fatalf("create: %d %v", status, m)
	}
	waitClients := func(want []string, live string, within time.Duration) map[string]any {
		t.Helper()
		var last map[string]any
		deadline := time.Now().Add(within)
		for {
			_, last = c.nodes[0].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			if slices.Equal(clientEntries(last), want) && last["liveStatus"] == live {
				return last
			}
			if time.Now().After(deadline) {
				t.Fatalf("clients %v live %v, want %v live %s: %v", clientEntries(last), last["liveStatus"], want, live, last)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	m = waitClients([]string{"<unknown>=misconfigured", "node-1=open", "node-2=open"}, "misconfigured", 20*time.Second)
	for _, e := range m["clientStatus"].([]any) {
		c := e.(map[string]any)
		if c["client"] == "<unknown>" && c["statusDetails"] != "The configured client count of <3> could not be delivered by the cluster, the client is therefore not available." {
			t.Errorf("misconfigured entry %v", c)
		}
	}
	if srcs := m["sourceStatus"].([]any); len(srcs) != 3 {
		t.Errorf("source entries: %v", srcs)
	}

	// A third member joins: it takes the third client.
	c.nodes = append(c.nodes, c.startNode("node-3"))
	c.waitMembers(3, 30*time.Second)
	waitClients([]string{"node-1=open", "node-2=open", "node-3=open"}, "open", 30*time.Second)

	// Each client subscribes (no shared subscription in the address), so
	// one device message is consumed three times: the metrics merge the
	// satellites' counters with the hosting member's.
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, dev, "spread/"+id+"/dev-1", blackbox.TwinEvent("org.acme:dev-1", 1))
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, m = c.nodes[2].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionMetrics", "connectionId", id))
		v, _ := blackbox.Field(m, "sourceMetrics", "addressMetrics", source, "consumed", "success", "PT1M").(float64)
		if v == 3 {
			break
		}
		if time.Now().After(deadline) || v > 3 {
			t.Fatalf("consumed %v, want 3 (one per client): %v", v, m["sourceMetrics"])
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Closing stops every client, on every member.
	status, m = c.nodes[1].command(t, blackbox.Cmd("connectivity.commands:closeConnection", "connectionId", id))
	if status != http.StatusOK || m["status"] != float64(200) {
		t.Fatalf("close: %d %v", status, m)
	}
	_, m = c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
	if m["liveStatus"] != "closed" || len(m["clientStatus"].([]any)) != 1 {
		t.Fatalf("status after close: %v", m)
	}
	// Two members hosted a satellite client (the grain's member hosts
	// client 0); both stop theirs.
	deadline = time.Now().Add(10 * time.Second)
	for {
		started, stopped := 0, 0
		for _, n := range c.nodes {
			logs := n.Logs.String()
			started += strings.Count(logs, `"message":"satellite client started"`)
			stopped += strings.Count(logs, `"message":"satellite client stopped"`)
		}
		if started >= 2 && stopped == started {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("satellites started %d, stopped %d after close", started, stopped)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
