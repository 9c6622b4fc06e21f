package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// TestClusterBenchmark measures the cluster against a single node in one run
// on one MongoDB-wire server (the cluster harness's: FerretDB on the
// machine's PostgreSQL, or DITTOCONN_TEST_MONGO_URI). It runs only with
// DITTOCONN_BENCH_CLUSTER=1 and asserts no timing:
//
//   - retrieveConnection throughput and latency over the piggyback API on warm
//     grains: a 3-node cluster (requests spread over the three gateways,
//     grains spread over the nodes, so about two calls in three cross nodes)
//     against a 1-node cluster and a node without cluster mode, in
//     alternating rounds;
//   - failover: after a SIGKILL of one node of the 3, the time until every
//     connection whose grain lived on it answers through each survivor, and
//     when etcd dropped the victim; repeated, restarting the victim and
//     re-warming between runs. Baseline: the same connections polled the
//     same way on a node without cluster mode that has just started (cold
//     grains, no failure to detect).
//
// Settings: DITTOCONN_BENCH_CLUSTER_N (connections, 300), …_CLIENTS (comma
// list of concurrent HTTP clients, "1,8,64"), …_DURATION (per round, 10s),
// …_ROUNDS (rounds per setting, 2), …_FAILOVERS (3).
func TestClusterBenchmark(t *testing.T) {
	if os.Getenv("DITTOCONN_BENCH_CLUSTER") == "" {
		t.Skip("set DITTOCONN_BENCH_CLUSTER=1 to measure the cluster against a single node")
	}
	n := blackbox.EnvInt("DITTOCONN_BENCH_CLUSTER_N", 300)
	var clientCounts []int
	for _, f := range strings.Split(cbEnv("DITTOCONN_BENCH_CLUSTER_CLIENTS", "1,8,64"), ",") {
		if c, err := strconv.Atoi(strings.TrimSpace(f)); err == nil && c > 0 {
			clientCounts = append(clientCounts, c)
		}
	}
	dur, err := time.ParseDuration(cbEnv("DITTOCONN_BENCH_CLUSTER_DURATION", "10s"))
	if err != nil || dur <= 0 {
		t.Fatalf("DITTOCONN_BENCH_CLUSTER_DURATION: %v", err)
	}
	rounds := blackbox.EnvInt("DITTOCONN_BENCH_CLUSTER_ROUNDS", 2)
	failovers := blackbox.EnvInt("DITTOCONN_BENCH_CLUSTER_FAILOVERS", 3)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%05d", i)
	}

	// The three setups run side by side; each round measures one while the
	// others idle (their CPU during the round is logged with it).
	three := startCluster(t, 3)
	one := startCluster(t, 1)
	singleDB := "single_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	dropDatabase(t, three.uri, singleDB)
	singleEnv := []string{"MONGO_DB_URI=" + three.uri, "MONGO_DB_DATABASE=" + singleDB,
		"INSTANCE_INDEX=single", "DITTOCONN_CLUSTER_ETCD_ENDPOINTS="}
	single := blackbox.StartBinary(t, blackbox.BuildBinary(t), singleEnv...)
	singleNode := &clusterNode{Proc: single, instance: "single"}
	setups := []*cbSetup{
		{name: "3 nodes", nodes: three.nodes, etcd: three.etcd},
		{name: "1 node (cluster mode)", nodes: one.nodes, etcd: one.etcd},
		{name: "1 node (no cluster)", nodes: []*clusterNode{singleNode}},
	}
	for _, s := range setups {
		start := time.Now()
		cbCreate(t, s.nodes, ids)
		s.warm(t, ids)
		t.Logf("%s: %d connections created and warmed in %v; grains per instance %v",
			s.name, n, time.Since(start).Round(time.Millisecond), s.perHost())
		cbAlive(t, setups)
	}

	results := map[string]map[int][]cbStats{}
	for _, s := range setups {
		results[s.name] = map[int][]cbStats{}
		// A short unmeasured run per setup: connections, caches, JIT of the
		// load generator's paths.
		s.drive(t, ids, 8, 2*time.Second)
	}
	for r := 0; r < rounds; r++ {
		for _, c := range clientCounts {
			for _, s := range setups {
				cpu0 := cbCPU(setups)
				st := s.drive(t, ids, c, dur)
				st.cpu = cbCPUSince(setups, cpu0)
				results[s.name][c] = append(results[s.name][c], st)
				t.Logf("round %d, %2d clients, %-22s %s", r+1, c, s.name+":", st)
				cbAlive(t, setups)
				if st.errors > 0 {
					t.Errorf("%s: %d of %d requests failed", s.name, st.errors, st.requests)
				}
			}
		}
	}
	t.Logf("retrieveConnection, %d warm connections, %v rounds (req/s; 3 nodes / 1 node in the same round):", n, dur)
	for _, c := range clientCounts {
		for r := 0; r < rounds; r++ {
			a := results[setups[0].name][c][r]
			b := results[setups[1].name][c][r]
			d := results[setups[2].name][c][r]
			t.Logf("| %d | %d | %.0f, p50 %s, p99 %s (%.0f %% cross) | %.0f, p50 %s, p99 %s | %.0f, p50 %s, p99 %s | %.2f | %.2f |",
				c, r+1, a.rps(), cbMS(a.p50), cbMS(a.p99), 100*a.crossShare(),
				b.rps(), cbMS(b.p50), cbMS(b.p99), d.rps(), cbMS(d.p50), cbMS(d.p99),
				a.rps()/b.rps(), a.rps()/d.rps())
		}
	}

	// Failover. The 1-node cluster is no longer needed; the plain node
	// gives the baseline: the same connections activated cold on a fresh
	// node, polled the same way (what recovery from the store costs
	// without any failure detection).
	one.kill(0)
	single.Stop(t)
	for run := 0; run < failovers; run++ {
		victim := (2 + run) % 3
		cbAlive(t, setups[:1])
		if run > 0 {
			three.waitMembers(3, 60*time.Second)
			setups[0].warm(t, ids)
		}
		moved, leaseGone, rec := cbFailover(t, three, ids, victim)
		t.Logf("failover %d: killed %s; etcd dropped it after %v; %s", run+1, three.nodes[victim].instance,
			leaseGone.Round(time.Millisecond), rec)
		three.restart(victim)

		fresh := blackbox.StartBinary(t, blackbox.BuildBinary(t), singleEnv...)
		base := cbPoll(t, []*clusterNode{{Proc: fresh, instance: "single"}}, moved, time.Now())
		t.Logf("baseline %d: the same connections on a fresh node (no cluster): %s", run+1, base)
		fresh.Stop(t)
	}
}

// cbSetup is one measured setup: its nodes (gateways) and where each
// connection's grain lives.
type cbSetup struct {
	name  string
	nodes []*clusterNode
	etcd  *etcdServer
	host  map[string]string // connection id → instance hosting its grain
}

// warm retrieves every connection through every gateway (activating the
// grains and filling every node's grain address cache) and records the
// grain hosts.
func (s *cbSetup) warm(t *testing.T, ids []string) {
	t.Helper()
	var jobs []func() error
	for _, node := range s.nodes {
		for _, id := range ids {
			jobs = append(jobs, func() error {
				var status int
				var m map[string]any
				for attempt := 0; attempt < 3; attempt++ {
					status, m = node.commandWithin(t, "15s", blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
					if status == http.StatusOK && blackbox.Field(m, "connection", "id") == id {
						return nil
					}
				}
				return fmt.Errorf("warm %s via %s: %d %v", id, node.instance, status, m)
			})
		}
	}
	cbParallel(t, 16, jobs)
	host := make(map[string]string, len(ids))
	var mu sync.Mutex
	jobs = jobs[:0]
	for i, id := range ids {
		node := s.nodes[i%len(s.nodes)]
		jobs = append(jobs, func() error {
			h, err := cbHostOf(t, node, id)
			mu.Lock()
			host[id] = h
			mu.Unlock()
			return err
		})
	}
	cbParallel(t, 16, jobs)
	s.host = host
}

func (s *cbSetup) perHost() map[string]int {
	out := map[string]int{}
	for _, h := range s.host {
		out[h]++
	}
	return out
}

// pids are the processes of the setup (nodes and etcd).
func (s *cbSetup) pids() []int {
	var out []int
	for _, n := range s.nodes {
		if !n.dead {
			out = append(out, n.Cmd.Process.Pid)
		}
	}
	if s.etcd != nil {
		out = append(out, s.etcd.cmd.Process.Pid)
	}
	return out
}

// drive runs clients concurrent keep-alive HTTP clients for d, each sending
// the piggyback retrieveConnection envelope (aggregate false) for the ids in
// turn. Request k (counted per client as client + i·clients) asks for
// ids[k mod N] through gateway (k + k/N) mod G, so every id is asked through
// every gateway and every client uses every gateway.
func (s *cbSetup) drive(t *testing.T, ids []string, clients int, d time.Duration) cbStats {
	t.Helper()
	bodies := make([][]byte, len(ids))
	for i, id := range ids {
		bodies[i], _ = json.Marshal(map[string]any{
			"targetActorSelection": "/system/sharding/connection",
			"headers":              map[string]any{"aggregate": false},
			"piggybackCommand":     map[string]any{"type": "connectivity.commands:retrieveConnection", "connectionId": id},
		})
	}
	urls := make([]string, len(s.nodes))
	for g, node := range s.nodes {
		urls[g] = "http://" + node.Addr + "/devops/piggyback/connectivity"
	}
	tr := &http.Transport{MaxIdleConns: clients * len(urls), MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	want := []byte(`"status":200`)
	var errs, cross atomic.Int64
	var firstErr atomic.Value
	lat := make([][]time.Duration, clients)
	var wg sync.WaitGroup
	start := time.Now()
	stop := start.Add(d)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for i := 0; time.Now().Before(stop); i++ {
				k := c + i*clients
				id, g := k%len(ids), (k+k/len(ids))%len(urls)
				if s.host[ids[id]] != s.nodes[g].instance {
					cross.Add(1)
				}
				req, _ := http.NewRequest(http.MethodPost, urls[g], bytes.NewReader(bodies[id]))
				req.SetBasicAuth("devops", "foobar")
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				ok := false
				if err == nil {
					buf.Reset()
					_, _ = buf.ReadFrom(resp.Body)
					resp.Body.Close()
					ok = resp.StatusCode == http.StatusOK && bytes.Contains(buf.Bytes(), want)
					if !ok {
						err = fmt.Errorf("%d %s", resp.StatusCode, buf.Bytes())
					}
				}
				lat[c] = append(lat[c], time.Since(t0))
				if !ok {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s via %s: %v", ids[id], s.nodes[g].instance, err))
				}
			}
		}()
	}
	wg.Wait()
	st := cbStats{elapsed: time.Since(start), errors: errs.Load(), cross: cross.Load()}
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	st.requests = int64(len(all))
	if len(all) > 0 {
		st.p50, st.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	if e := firstErr.Load(); e != nil {
		t.Logf("%s: first failed request: %v", s.name, e)
	}
	return st
}

// cbStats is one timed round.
type cbStats struct {
	requests, errors, cross int64
	elapsed                 time.Duration
	p50, p99                time.Duration
	cpu                     cbCPUUse
}

func (s cbStats) rps() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s cbStats) crossShare() float64 {
	if s.requests == 0 {
		return 0
	}
	return float64(s.cross) / float64(s.requests)
}

func (s cbStats) String() string {
	return fmt.Sprintf("%8.0f req/s  p50 %s  p99 %s  %3.0f %% to another node  (%d requests, %d errors)  %s",
		s.rps(), cbMS(s.p50), cbMS(s.p99), 100*s.crossShare(), s.requests, s.errors, s.cpu)
}

func cbMS(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// cbCPUUse is the CPU time used during a round: the test process (load
// generator, FerretDB, etcd proxies) and each setup's processes.
type cbCPUUse struct {
	self  time.Duration
	setup []time.Duration
	wall  time.Duration
}

func (u cbCPUUse) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "CPU s/s: test process %.2f", u.self.Seconds()/u.wall.Seconds())
	for i, d := range u.setup {
		fmt.Fprintf(&b, ", setup %d %.2f", i+1, d.Seconds()/u.wall.Seconds())
	}
	return b.String()
}

type cbCPUSample struct {
	at    time.Time
	self  time.Duration
	setup []time.Duration
}

func cbCPU(setups []*cbSetup) cbCPUSample {
	s := cbCPUSample{at: time.Now(), self: cbProcCPU(os.Getpid())}
	for _, st := range setups {
		var sum time.Duration
		for _, pid := range st.pids() {
			sum += cbProcCPU(pid)
		}
		s.setup = append(s.setup, sum)
	}
	return s
}

func cbCPUSince(setups []*cbSetup, before cbCPUSample) cbCPUUse {
	now := cbCPU(setups)
	u := cbCPUUse{self: now.self - before.self, wall: now.at.Sub(before.at)}
	for i := range now.setup {
		u.setup = append(u.setup, now.setup[i]-before.setup[i])
	}
	return u
}

// cbProcCPU is a process's user+system CPU time from /proc (0 if unknown).
func cbProcCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(raw[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// cbCreate creates the connections (closed) through the nodes' gateways in
// turn, 4 at a time. On a busy machine a create through FerretDB can outlast
// the harness's HTTP timeout; it is then tried again, and a conflict means
// the earlier attempt landed.
func cbCreate(t *testing.T, nodes []*clusterNode, ids []string) {
	t.Helper()
	jobs := make([]func() error, len(ids))
	for i, id := range ids {
		node := nodes[i%len(nodes)]
		jobs[i] = func() error {
			for attempt := 0; ; attempt++ {
				t0 := time.Now()
				status, m := node.commandWithin(t, "15s", blackbox.Cmd("connectivity.commands:createConnection",
					"connection", blackbox.MQTTConnection(id, "closed")))
				switch {
				case status == http.StatusOK && m["status"] == float64(http.StatusCreated):
					return nil
				case attempt > 0 && status == http.StatusOK && m["status"] == float64(http.StatusConflict):
					return nil
				case attempt < 3 && (status == 0 || status == http.StatusRequestTimeout ||
					status == http.StatusOK && m["status"] == float64(http.StatusServiceUnavailable)):
					t.Logf("create %s via %s: %d %v after %v; trying again", id, node.instance, status, m,
						time.Since(t0).Round(time.Millisecond))
					continue
				}
				return fmt.Errorf("create %s via %s: %d %v after %v", id, node.instance, status, m,
					time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	cbParallel(t, 4, jobs)
}

// cbParallel runs jobs on workers goroutines and fails on the first error.
func cbParallel(t *testing.T, workers int, jobs []func() error) {
	t.Helper()
	ch := make(chan func() error)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for job := range ch {
				if err := job(); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, job := range jobs {
		ch <- job
	}
	close(ch)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}

// cbRecovery is how a set of connections came back: per gateway and
// connection, the time from the origin (the SIGKILL, or a fresh node's
// start) until its first successful retrieve through that gateway.
type cbRecovery struct {
	moved    int
	firstAny time.Duration // first connection answering through a gateway
	allAny   time.Duration // every connection answered through at least one gateway
	allEvery time.Duration // … through every gateway
	median   time.Duration // median over (connection, gateway)
	failed   int           // attempts that did not answer (timeouts, errors)
	cpu      string
	patient  string // failover only: single requests with a long timeout
}

func (r cbRecovery) String() string {
	return fmt.Sprintf("%d grains: first answer %v, all through some gateway %v, all through every gateway %v, median %v (%d failed attempts before; %s)",
		r.moved, r.firstAny.Round(time.Millisecond), r.allAny.Round(time.Millisecond),
		r.allEvery.Round(time.Millisecond), r.median.Round(time.Millisecond), r.failed, r.cpu) + r.patient
}

// cbPoll retrieves every id through each gateway until it answers, 16
// pollers per gateway: each attempt has a 500 ms piggyback timeout and a
// failed attempt is retried after 50 ms, so a time is at most ~0.55 s late.
func cbPoll(t *testing.T, gateways []*clusterNode, ids []string, origin time.Time) cbRecovery {
	t.Helper()
	cpu0 := cbCPU([]*cbSetup{{nodes: gateways}})
	firstOK := make([][]time.Duration, len(gateways))
	var failed atomic.Int64
	var wg sync.WaitGroup
	deadline := origin.Add(60 * time.Second)
	for gi, node := range gateways {
		firstOK[gi] = make([]time.Duration, len(ids))
		queue := make(chan int, len(ids))
		for i := range ids {
			queue <- i
		}
		var left atomic.Int64
		left.Store(int64(len(ids)))
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for left.Load() > 0 && time.Now().Before(deadline) {
					var i int
					select {
					case i = <-queue:
					case <-time.After(20 * time.Millisecond):
						continue
					}
					status, m := node.commandWithin(t, "500ms", blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", ids[i]))
					if status == http.StatusOK && blackbox.Field(m, "connection", "id") == ids[i] {
						firstOK[gi][i] = time.Since(origin)
						left.Add(-1)
						continue
					}
					failed.Add(1)
					time.Sleep(50 * time.Millisecond)
					queue <- i
				}
			}()
		}
	}
	wg.Wait()
	use := cbCPUSince([]*cbSetup{{nodes: gateways}}, cpu0)
	res := cbRecovery{moved: len(ids), failed: int(failed.Load()), firstAny: time.Hour,
		cpu: fmt.Sprintf("CPU s/s: test process (FerretDB, pollers) %.2f, gateways %.2f",
			use.self.Seconds()/use.wall.Seconds(), use.setup[0].Seconds()/use.wall.Seconds())}
	var all []time.Duration
	for i, id := range ids {
		anyT, everyT := time.Duration(0), time.Duration(0)
		for gi := range gateways {
			d := firstOK[gi][i]
			if d == 0 {
				t.Errorf("%s did not answer through %s within 60 s", id, gateways[gi].instance)
				continue
			}
			all = append(all, d)
			if anyT == 0 || d < anyT {
				anyT = d
			}
			everyT = max(everyT, d)
			res.firstAny = min(res.firstAny, d)
		}
		res.allAny = max(res.allAny, anyT)
		res.allEvery = max(res.allEvery, everyT)
	}
	slices.Sort(all)
	if len(all) > 0 {
		res.median = all[len(all)/2]
	}
	return res
}

// cbFailover SIGKILLs node victim and polls every connection that lived on
// it through both survivors (cbPoll). It returns the victim's connections,
// when etcd dropped the victim's registration, and the recovery.
func cbFailover(t *testing.T, c *testCluster, ids []string, victim int) ([]string, time.Duration, cbRecovery) {
	t.Helper()
	var jobs []func() error
	host := make(map[string]string, len(ids))
	var mu sync.Mutex
	for i, id := range ids {
		node := c.nodes[(victim+1+i%2)%3]
		jobs = append(jobs, func() error {
			h, err := cbHostOf(t, node, id)
			mu.Lock()
			host[id] = h
			mu.Unlock()
			return err
		})
	}
	cbParallel(t, 16, jobs)
	vname := c.nodes[victim].instance
	var moved []string
	for _, id := range ids {
		if host[id] == vname {
			moved = append(moved, id)
		}
	}
	survivors := []*clusterNode{c.nodes[(victim+1)%3], c.nodes[(victim+2)%3]}

	// etcd's view: when the victim's registration (under its 3 s lease)
	// is deleted, the survivors' topology changes.
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{c.etcd.addr}, DialTimeout: 3 * time.Second})
	if err != nil {
		t.Fatalf("etcd client: %v", err)
	}
	defer cli.Close()
	wctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	watch := cli.Watch(wctx, "/protoactor/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	<-watch
	deleted := make(chan time.Time, 1)
	go func() {
		for resp := range watch {
			for _, ev := range resp.Events {
				if ev.Type == clientv3.EventTypeDelete {
					deleted <- time.Now()
					return
				}
			}
		}
	}()
	logStart := make([]int, len(survivors))
	for si, node := range survivors {
		logStart[si] = len(node.Logs.String())
	}

	killed := time.Now()
	c.kill(victim)
	// Patient clients: one request per victim connection, sent through the
	// first survivor right after the kill and not retried, as a client that
	// does not retry would: up to 10 with Ditto's default timeout (10 s),
	// up to 10 with 15 s.
	type patientResult struct {
		timeout string
		took    time.Duration
		ok      bool
		status  int
	}
	patient := make(chan patientResult, 20)
	var pwg sync.WaitGroup
	for i, id := range moved[:min(20, len(moved))] {
		timeout := []string{"10s", "15s"}[i%2]
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			status, m := survivors[0].commandWithin(t, timeout, blackbox.Cmd("connectivity.commands:retrieveConnection", "connectionId", id))
			patient <- patientResult{timeout, time.Since(killed), status == http.StatusOK && blackbox.Field(m, "connection", "id") == id, status}
		}()
	}
	rec := cbPoll(t, survivors, moved, killed)
	pwg.Wait()
	close(patient)
	byTimeout := map[string][]string{}
	for r := range patient {
		what := "ok"
		if !r.ok {
			what = fmt.Sprintf("HTTP %d", r.status)
		}
		byTimeout[r.timeout] = append(byTimeout[r.timeout], fmt.Sprintf("%s %v", what, r.took.Round(100*time.Millisecond)))
	}
	for _, timeout := range []string{"10s", "15s"} {
		slices.Sort(byTimeout[timeout])
		rec.patient += fmt.Sprintf("; single requests at the kill with timeout %s: %s", timeout, strings.Join(byTimeout[timeout], ", "))
	}
	var leaseGone time.Duration
	select {
	case at := <-deleted:
		leaseGone = at.Sub(killed)
	default:
	}
	// What the survivors logged meanwhile (warnings and errors, by message).
	for si, node := range survivors {
		counts := map[string]int{}
		for _, line := range strings.Split(node.Logs.String()[logStart[si]:], "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) != nil || rec["level"] == "info" || rec["level"] == "debug" {
				continue
			}
			counts[fmt.Sprintf("%v: %v %v", rec["level"], rec["message"], rec["error"])]++
		}
		for msg, k := range counts {
			t.Logf("  %s logged %d× %s", node.instance, k, msg)
		}
	}
	return moved, leaseGone, rec
}

// cbHostOf is hostOf for worker goroutines: an error instead of t.Fatal.
func cbHostOf(t *testing.T, n *clusterNode, id string) (string, error) {
	status, m := n.command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
	clients, _ := m["clientStatus"].([]any)
	if status != http.StatusOK || len(clients) != 1 {
		return "", fmt.Errorf("status of %s via %s: %d %v", id, n.instance, status, m)
	}
	c, _ := clients[0].(map[string]any)
	host, _ := c["client"].(string)
	return host, nil
}

// cbAlive fails with the end of its log when a node process has exited.
func cbAlive(t *testing.T, setups []*cbSetup) {
	t.Helper()
	for _, s := range setups {
		for _, n := range s.nodes {
			if n.dead {
				continue
			}
			select {
			case err := <-n.Done:
				n.dead = true
				logs := strings.Split(strings.TrimSpace(n.Logs.String()), "\n")
				t.Fatalf("%s of %s exited: %v; its last log lines:\n%s", n.instance, s.name, err,
					strings.Join(logs[max(0, len(logs)-15):], "\n"))
			default:
			}
		}
	}
}

func cbEnv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
