package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// aggregatedAnswers posts an envelope to path via node and returns the
// HTTP status and the answers keyed by instance.
func aggregatedAnswers(t *testing.T, node *clusterNode, path, target string, headers, command map[string]any) (int, map[string]map[string]any) {
	t.Helper()
	status, body := node.post(t, path, map[string]any{
		"targetActorSelection": target, "headers": headers, "piggybackCommand": command,
	})
	if status != http.StatusOK {
		return status, nil
	}
	var m map[string]map[string]map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("aggregated answer of %s: %v: %s", path, err, body)
	}
	return status, m["connectivity"]
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestClusterPiggybackFanOut: Ditto's fan-out matrix over three instances.
func TestClusterPiggybackFanOut(t *testing.T) {
	c := startCluster(t, 3)
	via := c.nodes[0]
	all := []string{"node-1", "node-2", "node-3"}
	ids := map[string]any{"type": "connectivity.commands:retrieveAllConnectionIds"}
	idsPath := "/user/connectivityRoot/connectionIdsRetrieval"
	agg := map[string]any{"aggregate": true, "timeout": "5s"}

	// aggregate=true on the service route: one answer per instance.
	status, answers := aggregatedAnswers(t, via, "/devops/piggyback/connectivity", idsPath, agg, ids)
	if status != http.StatusOK || !slices.Equal(keys(answers), all) {
		t.Fatalf("service route: %d %v", status, keys(answers))
	}
	for inst, a := range answers {
		if a["type"] != "connectivity.responses:retrieveAllConnectionIds" || a["status"] != float64(200) {
			t.Errorf("%s answered %v", inst, a)
		}
	}
	// The bare route reaches every member too.
	status, answers = aggregatedAnswers(t, via, "/devops/piggyback", idsPath, agg, ids)
	if status != http.StatusOK || !slices.Equal(keys(answers), all) {
		t.Fatalf("bare route: %d %v", status, keys(answers))
	}
	// An instance route reaches that instance only, through any gateway.
	status, answers = aggregatedAnswers(t, via, "/devops/piggyback/connectivity/node-3", idsPath, agg, ids)
	if status != http.StatusOK || !slices.Equal(keys(answers), []string{"node-3"}) {
		t.Fatalf("instance route: %d %v", status, keys(answers))
	}
	// A group publication on the service route: exactly one instance.
	group := map[string]any{"aggregate": true, "timeout": "2s", "is-group-topic": true}
	status, answers = aggregatedAnswers(t, via, "/devops/piggyback/connectivity", idsPath, group, ids)
	if status != http.StatusOK || len(answers) != 1 {
		t.Fatalf("group route: %d %v", status, keys(answers))
	}
	// … and nobody on an instance route: 408.
	if status, _ := aggregatedAnswers(t, via, "/devops/piggyback/connectivity/node-2", idsPath, group, ids); status != http.StatusRequestTimeout {
		t.Fatalf("group on instance route: %d, want 408", status)
	}
	// An unknown instance: nobody answers.
	short := map[string]any{"aggregate": true, "timeout": "1s"}
	if status, _ := aggregatedAnswers(t, via, "/devops/piggyback/connectivity/node-9", idsPath, short, ids); status != http.StatusRequestTimeout {
		t.Fatalf("unknown instance: %d, want 408", status)
	}

	// A create with aggregate=true runs on every instance, as in Ditto: one
	// 201, the others find it existing (409).
	create := map[string]any{"type": "connectivity.commands:createConnection",
		"connection": blackbox.MQTTConnection("fanout-1", "closed")}
	status, answers = aggregatedAnswers(t, via, "/devops/piggyback/connectivity", "/system/sharding/connection", agg, create)
	if status != http.StatusOK || len(answers) != 3 {
		t.Fatalf("aggregated create: %d %v", status, answers)
	}
	var created, conflicts int
	for _, a := range answers {
		switch a["status"] {
		case float64(201):
			created++
		case float64(409):
			if a["error"] != "connectivity:connection.conflict" {
				t.Errorf("409 with %v", a)
			}
			conflicts++
		}
	}
	if created != 1 || conflicts != 2 {
		t.Fatalf("aggregated create: %d created, %d conflicts: %v", created, conflicts, answers)
	}
	// With aggregate=false the command runs once: the answer is the 201.
	status, m := c.nodes[1].command(t, map[string]any{"type": "connectivity.commands:createConnection",
		"connection": blackbox.MQTTConnection("fanout-2", "closed")})
	if status != http.StatusOK || m["status"] != float64(201) {
		t.Fatalf("create with aggregate=false: %d %v", status, m)
	}
	// Every instance lists both.
	status, answers = aggregatedAnswers(t, c.nodes[2], "/devops/piggyback/connectivity", idsPath, agg, ids)
	if status != http.StatusOK || len(answers) != 3 {
		t.Fatalf("ids: %d %v", status, answers)
	}
	for inst, a := range answers {
		got := fmt.Sprint(a["connectionIds"])
		if got != "[fanout-1 fanout-2]" {
			t.Errorf("%s lists %s", inst, got)
		}
	}
}

// TestClusterEtcdPartition: a node cut off etcd alone, with the default
// give-up time (5 min), exits (status 3) once the others, who dropped it
// after its lease, stop gossiping with it (it is then a minority of the
// members it last saw) instead of lingering as a zombie that serves the
// connections they took over; started again it rejoins and hosts grains.
func TestClusterEtcdPartition(t *testing.T) {
	c := startCluster(t, 3)
	open := openOnEveryNode(t, c, 3)
	cut := time.Now()
	c.nodes[2].proxy.Down()
	code := c.waitExit(2, 45*time.Second)
	if code != 3 || !strings.Contains(c.nodes[2].Logs.String(), "a minority gives up") {
		t.Fatalf("exit status %d, want 3 as a minority\n%s", code, c.nodes[2].Logs.String())
	}
	t.Logf("node-3 exited %v after losing etcd", time.Since(cut).Round(time.Millisecond))
	c.waitMembers(2, 15*time.Second)

	c.nodes[2].proxy.Up()
	c.restart(2)
	c.waitMembers(3, 30*time.Second)
	hosted := 0
	for i := 0; i < 30; i++ {
		id := fmt.Sprintf("partition-%d", i)
		status, m := c.nodes[i%3].command(t, blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(id, "closed")))
		if status != http.StatusOK || m["status"] != float64(201) {
			t.Fatalf("create %s: %d %v", id, status, m)
		}
		if hostOf(t, c.nodes[0], id) == "node-3" {
			hosted++
		}
	}
	if hosted == 0 {
		t.Fatal("the restarted node-3 hosts none of 30 new connections")
	}
	t.Logf("the restarted node-3 hosts %d of 30 new connections", hosted)

	// The open connections moved twice (node-3 left, then its successor
	// joined and took back its share): all report open again.
	for id := range open {
		deadline := time.Now().Add(30 * time.Second)
		for {
			status, m := c.nodes[0].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			if status == http.StatusOK && m["liveStatus"] == "open" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not open after the member left and rejoined: %v", id, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// TestIntegrationClusterDataPlane: a twin event consumed by a source
// connection on one node reaches a target connection hosted on another.
func TestIntegrationClusterDataPlane(t *testing.T) {
	blackbox.NeedBroker(t, "mosquitto", "127.0.0.1:1883")
	c := startCluster(t, 2)
	p := openCrossNodePair(t, c, "xnode", nil)
	p.roundTrip(t, 7)
}

// crossNodePair is an open MQTT source connection on one node and an open
// MQTT target connection on another: a twin event published to the
// source's topic crosses nodes to reach the target's.
type crossNodePair struct {
	srcID, tgtID, srcHost, tgtHost string
	in, out                        string // topic prefixes
}

// openCrossNodePair creates the pair on two nodes other than those in
// avoid and waits until both are open.
func openCrossNodePair(t *testing.T, c *testCluster, prefix string, avoid []string) crossNodePair {
	t.Helper()
	run := fmt.Sprint(time.Now().UnixNano())
	p := crossNodePair{in: "xn/" + run + "/in/", out: "xn/" + run + "/out/"}
	for i := 0; i < 60 && p.tgtID == ""; i++ {
		id := fmt.Sprintf("%s-%d", prefix, i)
		status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:createConnection",
			"connection", blackbox.MQTTConnection(id, "closed")))
		if status != http.StatusOK || m["status"] != float64(201) {
			t.Fatalf("create %s: %d %v", id, status, m)
		}
		h := hostOf(t, c.nodes[0], id)
		switch {
		case slices.Contains(avoid, h):
		case p.srcID == "":
			p.srcID, p.srcHost = id, h
		case h != p.srcHost:
			p.tgtID, p.tgtHost = id, h
		}
	}
	if p.tgtID == "" {
		t.Fatal("no two connections on different nodes")
	}
	source := map[string]any{
		"id": p.srcID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": p.srcID + run},
		"sources": []any{map[string]any{"addresses": []string{p.in + "#"},
			"authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	}
	target := map[string]any{
		"id": p.tgtID, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": p.tgtID + run},
		"targets": []any{map[string]any{"address": p.out + "{{ thing:id }}",
			"topics": []string{"_/_/things/twin/events"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	}
	for _, conn := range []map[string]any{source, target} {
		status, m := c.nodes[1].command(t, blackbox.Cmd("connectivity.commands:modifyConnection", "connection", conn))
		if status != http.StatusOK || m["status"] != float64(204) {
			t.Fatalf("modify %v: %d %v", conn["id"], status, m)
		}
	}
	for _, id := range []string{p.srcID, p.tgtID} {
		deadline := time.Now().Add(20 * time.Second)
		for {
			_, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
			if m["liveStatus"] == "open" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not open: %v", id, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return p
}

// roundTrip publishes a twin event with value to the source's topic and
// expects it mapped on the target's.
func (p crossNodePair) roundTrip(t *testing.T, value int) {
	t.Helper()
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", p.out+"#")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	blackbox.PublishMQTT(t, dev, p.in+"dev-1", blackbox.TwinEvent("org.acme:dev-1", value))
	m := out.Next(t, 10*time.Second, "twin event routed across nodes")
	if m.Topic() != p.out+"org.acme:dev-1" {
		t.Errorf("published to %q", m.Topic())
	}
	got := blackbox.Decode(t, m.Payload())
	blackbox.WantField(t, got, "org.acme/dev-1/things/twin/events/modified", "topic")
	blackbox.WantField(t, got, float64(value), "value")
}

// TestClusterEtcdPartitionHealed: cut off etcd past its lease but healed
// before the etcd watchdog fires, a node finds itself dropped from the
// topology (protoactor-go #1133: its id stays blocked) and exits 3.
func TestClusterEtcdPartitionHealed(t *testing.T) {
	c := startCluster(t, 2, "DITTOCONN_CLUSTER_ETCD_LOST_AFTER=60s")
	c.nodes[1].proxy.Down()
	c.waitSees(c.nodes[0], 1, 15*time.Second) // node-1 has dropped node-2 (lease expired)
	healed := time.Now()
	c.nodes[1].proxy.Up()
	code := c.waitExit(1, 30*time.Second)
	if code != 3 {
		t.Fatalf("exit status %d, want 3\n%s", code, c.nodes[1].Logs.String())
	}
	t.Logf("node-2 exited %v after the partition healed", time.Since(healed).Round(time.Millisecond))
}

// TestClusterStartRefusals: a node whose etcd does not answer, or whose
// cluster address others could not dial, exits at once with a clear
// message instead of hanging (protoactor's etcd provider would block
// forever) or joining unreachable.
func TestClusterStartRefusals(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	bin := blackbox.BuildBinary(t)
	uri := clusterMongoURI(t)
	closed := fmt.Sprintf("127.0.0.1:%d", blackbox.FreePort(t))
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"etcd down", []string{"DITTOCONN_CLUSTER_ETCD_ENDPOINTS=" + closed}, "etcd at [" + closed + "] does not answer"},
		{"unroutable bind", []string{"DITTOCONN_CLUSTER_ETCD_ENDPOINTS=" + closed, "DITTOCONN_CLUSTER_BIND=0.0.0.0:0"},
			"is not routable: set the advertised address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			c := exec.CommandContext(ctx, bin, "serve", "--http-addr", "127.0.0.1:0")
			c.Env = append(os.Environ(), append([]string{"MONGO_DB_URI=" + uri, "MONGO_DB_DATABASE=refusals"}, tt.env...)...)
			start := time.Now()
			out, err := c.CombinedOutput()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tt.want) {
				t.Fatalf("exit %v after %v, want status 1 with %q:\n%s", err, time.Since(start), tt.want, out)
			}
		})
	}
}
