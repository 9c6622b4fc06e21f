package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// This file is the multi-process cluster harness: one etcd from Debian's
// etcd-server, the MongoDB-wire server of TestMain, and dittoconn nodes as
// real processes on 127.0.0.1, each talking to etcd through a proxy of its
// own that a test can cut.

// etcdServer is an etcd process of the test's own.
type etcdServer struct {
	cmd  *exec.Cmd
	addr string // client address host:port
	done chan error
}

func startEtcd(t *testing.T) *etcdServer {
	t.Helper()
	bin := blackbox.NeedBinary(t, "etcd")
	dir := t.TempDir()
	client, peer := blackbox.FreePort(t), blackbox.FreePort(t)
	cu := fmt.Sprintf("http://127.0.0.1:%d", client)
	pu := fmt.Sprintf("http://127.0.0.1:%d", peer)
	c := exec.Command(bin, "--name", "test", "--data-dir", filepath.Join(dir, "data"),
		"--listen-client-urls", cu, "--advertise-client-urls", cu,
		"--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
		"--initial-cluster", "test="+pu, "--log-level", "error", "--logger", "zap")
	logs := &poll.Buffer{}
	c.Stdout, c.Stderr = logs, logs
	if err := c.Start(); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	e := &etcdServer{cmd: c, addr: fmt.Sprintf("127.0.0.1:%d", client), done: make(chan error, 1)}
	go func() { e.done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill(); <-e.done })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(cu + "/health")
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if strings.Contains(string(body), `"health":"true"`) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("etcd not healthy in 30s: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// clusterNode is one dittoconn process of a test cluster.
type clusterNode struct {
	*blackbox.Proc
	instance string
	proxy    *blackbox.TCPProxy
	env      []string
	dead     bool // the test killed it or saw it exit
}

// testCluster is N dittoconn processes sharing one etcd and one database.
type testCluster struct {
	t     *testing.T
	bin   string
	etcd  *etcdServer
	uri   string // MongoDB-wire server
	db    string
	nodes []*clusterNode
	extra []string
}

// startCluster starts n nodes one after another (each sees the ones before)
// and waits until every node sees all n.
func startCluster(t *testing.T, n int, extraEnv ...string) *testCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes")
	}
	c := &testCluster{t: t, bin: blackbox.BuildBinary(t), etcd: startEtcd(t), extra: extraEnv, uri: clusterMongoURI(t),
		db: "cluster_" + strconv.FormatInt(time.Now().UnixNano(), 36)}
	dropDatabase(t, c.uri, c.db)
	t.Cleanup(c.dumpLogsOnFailure)
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, c.startNode(fmt.Sprintf("node-%d", i+1)))
	}
	c.waitMembers(n, 30*time.Second)
	return c
}

// dumpLogsOnFailure writes every node's log to a file when the test
// failed, and says where.
func (c *testCluster) dumpLogsOnFailure() {
	if !c.t.Failed() {
		return
	}
	dir, err := os.MkdirTemp("", "dittoconn-cluster-logs-")
	if err != nil {
		return
	}
	for i, n := range c.nodes {
		state := "running"
		select {
		case err := <-n.Done:
			state = fmt.Sprintf("exited: %v", err)
			n.Done <- err
		default:
		}
		_ = os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d-%s.log", i, n.instance)),
			[]byte(n.Logs.String()+"\n== "+state+"\n"), 0o644)
	}
	c.t.Logf("node logs in %s", dir)
}

func (c *testCluster) startNode(instance string, extra ...string) *clusterNode {
	c.t.Helper()
	proxy := blackbox.StartProxy(c.t, c.etcd.addr)
	env := append([]string{
		"MONGO_DB_URI=" + c.uri,
		"MONGO_DB_DATABASE=" + c.db,
		"DITTOCONN_CLUSTER_ETCD_ENDPOINTS=" + proxy.Addr(),
		"DITTOCONN_CLUSTER_NAME=test",
		"INSTANCE_INDEX=" + instance,
		"DITTOCONN_LOG_LEVEL=info",
		"DITTOCONN_CLIENT_BACKOFF_MIN=200ms",
		"DITTOCONN_CLIENT_BACKOFF_MAX=1s",
	}, c.extra...)
	env = append(env, extra...)
	p := blackbox.StartBinary(c.t, c.bin, env...)
	return &clusterNode{Proc: p, instance: instance, proxy: proxy, env: env}
}

// restart starts node i again (a new process, so a new member id).
func (c *testCluster) restart(i int) {
	c.t.Helper()
	old := c.nodes[i]
	p := blackbox.StartBinary(c.t, c.bin, old.env...)
	c.nodes[i] = &clusterNode{Proc: p, instance: old.instance, proxy: old.proxy, env: old.env}
}

// restartAll stops every live node (SIGTERM, exit 0) and starts all again
// with extra environment on top of the cluster's.
func (c *testCluster) restartAll(extra ...string) {
	c.t.Helper()
	for _, n := range c.live() {
		n.Stop(c.t)
		n.dead = true
	}
	c.extra = append(append([]string(nil), c.extra...), extra...) // for nodes started later
	for i, old := range c.nodes {
		env := append(append([]string(nil), old.env...), extra...)
		c.nodes[i] = &clusterNode{Proc: blackbox.StartBinary(c.t, c.bin, env...), instance: old.instance, proxy: old.proxy, env: env}
	}
	c.waitMembers(len(c.nodes), 30*time.Second)
}

// kill SIGKILLs node i and waits for the process to be gone.
func (c *testCluster) kill(i int) {
	c.t.Helper()
	n := c.nodes[i]
	_ = n.Cmd.Process.Signal(syscall.SIGKILL)
	select {
	case <-n.Done:
		n.dead = true
	case <-time.After(10 * time.Second):
		c.t.Fatalf("node %s did not die", n.instance)
	}
}

// waitMembers waits until every live node's gateway answers from n
// instances (an aggregated retrieveConnectionIds under each instance key).
func (c *testCluster) waitMembers(n int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for _, node := range c.live() {
		c.waitSees(node, n, time.Until(deadline))
	}
}

// waitSees waits until node's gateway answers from n instances.
func (c *testCluster) waitSees(node *clusterNode, n int, within time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := len(node.instances(c.t))
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s sees %d instances, want %d\n%s", node.instance, got, n, node.Logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// live are the nodes whose process runs.
func (c *testCluster) live() []*clusterNode {
	var out []*clusterNode
	for _, n := range c.nodes {
		if !n.dead {
			out = append(out, n)
		}
	}
	return out
}

// instances asks the node's gateway for an aggregated answer from every
// connectivity instance and returns their keys.
func (n *clusterNode) instances(t *testing.T) []string {
	t.Helper()
	status, body := n.post(t, "/devops/piggyback/connectivity", map[string]any{
		"targetActorSelection": "/user/connectivityRoot/connectionIdsRetrieval",
		"headers":              map[string]any{"aggregate": true, "timeout": "3s"},
		"piggybackCommand":     map[string]any{"type": "connectivity.commands:retrieveAllConnectionIds"},
	})
	if status != http.StatusOK {
		return nil
	}
	var m map[string]map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	var out []string
	for k := range m["connectivity"] {
		out = append(out, k)
	}
	return out
}

// post sends a devops request and returns status and body; a transport
// error is status 0.
func (n *clusterNode) post(t *testing.T, path string, body any) (int, []byte) {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+n.Addr+path, bytes.NewReader(raw))
	req.SetBasicAuth("devops", "foobar")
	req.Header.Set("Content-Type", "application/json")
	resp, err := clusterHTTP.Do(req)
	if err != nil {
		t.Logf("%s %s: %v", n.instance, path, err)
		return 0, nil
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// command sends one connectivity command to the connection shard with
// aggregate=false and returns the status and the response JSON.
func (n *clusterNode) command(t *testing.T, command map[string]any) (int, map[string]any) {
	t.Helper()
	return n.commandWithin(t, "10s", command)
}

// commandWithin is command with the given piggyback timeout.
func (n *clusterNode) commandWithin(t *testing.T, timeout string, command map[string]any) (int, map[string]any) {
	t.Helper()
	status, body := n.post(t, "/devops/piggyback/connectivity", map[string]any{
		"targetActorSelection": "/system/sharding/connection",
		"headers":              map[string]any{"aggregate": false, "timeout": timeout},
		"piggybackCommand":     command,
	})
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return status, m
}

var clusterHTTP = &http.Client{Timeout: 20 * time.Second}

// waitExit waits for node i's process to exit and returns its exit code.
func (c *testCluster) waitExit(i int, within time.Duration) int {
	c.t.Helper()
	n := c.nodes[i]
	select {
	case err := <-n.Done:
		n.dead = true
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		if err == nil {
			return 0
		}
		c.t.Fatalf("wait %s: %v", n.instance, err)
	case <-time.After(within):
		c.t.Fatalf("%s did not exit within %v\n%s", n.instance, within, n.Logs.String())
	}
	return -1
}
