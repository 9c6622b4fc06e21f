// Command dittoconn-load measures dittoconn against baselines taken in the
// same run on the same machine, and prints the ratios docs/BENCHMARKS.md
// reports:
//
//   - retrieveConnection through the piggyback HTTP API, C concurrent clients
//     over N stored connections, against a bare Echo handler answering a JSON
//     body of the same size;
//   - createConnection throughput on the embedded engine against raw appends
//     of the same documents through the same store (same durability);
//   - heap per idle connection grain with G grains activated.
//
// Everything runs in-process on loopback and stops by itself.
//
//	go run ./cmd/dittoconn-load [-connections 1000] [-clients 64] [-duration 10s] [-grains 10000]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/actors"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/gateway"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func main() {
	conns := flag.Int("connections", 1000, "stored connections for the retrieve run")
	clients := flag.Int("clients", 64, "concurrent HTTP clients")
	duration := flag.Duration("duration", 10*time.Second, "length of each timed run")
	creates := flag.Int("creates", 2000, "connections created in the create run")
	grains := flag.Int("grains", 10000, "grains activated for the heap measurement")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil && pprof.StartCPUProfile(f) == nil {
			defer pprof.StopCPUProfile()
		}
	}
	if err := run(*conns, *clients, *duration, *creates, *grains); err != nil {
		fmt.Fprintln(os.Stderr, "dittoconn-load:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

func run(conns, clients int, duration time.Duration, creates, grains int) error {
	fmt.Printf("dittoconn-load: %d cores, GOMAXPROCS %d, %s\n", runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version())
	if err := retrieveRun(conns, clients, duration); err != nil {
		return err
	}
	if err := createRun(creates, clients); err != nil {
		return err
	}
	return heapRun(grains)
}

// node is an in-process dittoconn on a fresh embedded store.
type node struct {
	dir   string
	store persistence.Store
	sys   *actors.System
	srv   *gateway.Server
	url   string
}

func startNode() (*node, error) {
	dir, err := os.MkdirTemp("", "dittoconn-load-")
	if err != nil {
		return nil, err
	}
	store, err := bolt.Open(dir)
	if err != nil {
		return nil, err
	}
	log := zerolog.New(os.Stderr).Level(zerolog.ErrorLevel)
	sys, err := actors.Start(actors.Config{Store: store, Instance: "load-1", Validation: model.DefaultValidationConfig(),
		PassivateAfter: time.Hour, Logger: log})
	if err != nil {
		return nil, err
	}
	srv := gateway.New(gateway.Config{Instance: "load-1", DevopsSecured: true, DevopsPassword: "foobar",
		BodyLimit: 1 << 20, Logger: log.With().Str("component", "gateway").Logger()}, sys)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() { _ = srv.Start(ln) }()
	return &node{dir: dir, store: store, sys: sys, srv: srv, url: "http://" + ln.Addr().String()}, nil
}

func (n *node) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = n.srv.Shutdown(ctx)
	n.sys.Stop()
	_ = n.store.Close(ctx)
	_ = os.RemoveAll(n.dir)
}

func connectionJSON(id string) map[string]any {
	return map[string]any{
		"id": id, "name": "load " + id, "connectionType": "mqtt", "connectionStatus": "closed",
		"uri":     "tcp://127.0.0.1:1883",
		"sources": []any{map[string]any{"addresses": []string{"devices/#"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
		"targets": []any{map[string]any{"address": "out/{{ thing:id }}", "topics": []string{"_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"}, "qos": 0}},
		"tags": []string{"load"},
	}
}

func (n *node) dispatch(target string, command map[string]any) (*pb.Reply, error) {
	payload, _ := json.Marshal(command)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return n.sys.Dispatch(ctx, target, &pb.Command{Type: command["type"].(string), Headers: map[string]string{}, Payload: payload})
}

func (n *node) create(id string) error {
	r, err := n.dispatch(ditto.PathConnectionShard, map[string]any{"type": ditto.CreateConnection, "connection": connectionJSON(id)})
	if err != nil {
		return err
	}
	if r.Status != 201 {
		return fmt.Errorf("create %s: %d %s", id, r.Status, r.Payload)
	}
	return nil
}

// stats is one timed HTTP run.
type stats struct {
	name     string
	requests int
	errors   int64
	elapsed  time.Duration
	p50, p99 time.Duration
}

func (s stats) rps() float64 { return float64(s.requests) / s.elapsed.Seconds() }

func (s stats) String() string {
	return fmt.Sprintf("%-22s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  (%d requests, %d errors)",
		s.name, s.rps(), ms(s.p50), ms(s.p99), s.requests, s.errors)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// drive runs clients goroutines, each sending requests built by next, for d.
func drive(name string, clients int, d time.Duration, next func(i int) *http.Request) stats {
	tr := &http.Transport{MaxIdleConns: clients, MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var wg sync.WaitGroup
	var errs atomic.Int64
	lat := make([][]time.Duration, clients)
	stop := time.Now().Add(d)
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for i := c; time.Now().Before(stop); i += clients {
				req := next(i)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						errs.Add(1)
					}
				} else {
					errs.Add(1)
				}
				lat[c] = append(lat[c], time.Since(t0))
			}
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	for _, l := range lat {
		all = append(all, l...)
	}
	slices.Sort(all)
	s := stats{name: name, requests: len(all), errors: errs.Load(), elapsed: elapsed}
	if len(all) > 0 {
		s.p50, s.p99 = all[len(all)/2], all[len(all)*99/100]
	}
	return s
}

func retrieveRun(conns, clients int, d time.Duration) error {
	n, err := startNode()
	if err != nil {
		return err
	}
	defer n.stop()
	fmt.Printf("\n== retrieveConnection over HTTP: %d connections, %d clients, %v per run\n", conns, clients, d)
	if err := parallel(conns, clients, func(i int) error { return n.create(fmt.Sprintf("load-%05d", i)) }); err != nil {
		return err
	}
	envelope := func(i int) []byte {
		b, _ := json.Marshal(map[string]any{"targetActorSelection": ditto.PathConnectionShard,
			"headers":          map[string]any{"aggregate": false},
			"piggybackCommand": map[string]any{"type": ditto.RetrieveConnection, "connectionId": fmt.Sprintf("load-%05d", i%conns)}})
		return b
	}
	bodies := make([][]byte, conns)
	for i := range bodies {
		bodies[i] = envelope(i)
	}
	req := func(url string) func(i int) *http.Request {
		return func(i int) *http.Request {
			r, _ := http.NewRequest(http.MethodPost, url+"/devops/piggyback/connectivity", bytes.NewReader(bodies[i%conns]))
			r.SetBasicAuth("devops", "foobar")
			r.Header.Set("Content-Type", "application/json")
			return r
		}
	}
	// a real answer, for the baseline's body size
	warm := drive("warm-up", clients, d/5, req(n.url))
	sample, _ := n.dispatch(ditto.PathConnectionShard, map[string]any{"type": ditto.RetrieveConnection, "connectionId": "load-00000"})

	bare := echo.New()
	bare.HideBanner, bare.HidePort = true, true
	bare.POST("/devops/piggyback/connectivity", func(c echo.Context) error {
		_, _ = io.Copy(io.Discard, c.Request().Body)
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, sample.Payload)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: bare, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()

	_ = warm
	base := drive("bare Echo", clients, d, req("http://"+ln.Addr().String()))
	got := drive("dittoconn retrieve", clients, d, req(n.url))
	fmt.Println(base)
	fmt.Println(got)
	fmt.Printf("ratio req/s dittoconn/bare = %.2f (target >= 0.5); dittoconn p99 %.3f ms (target < 5 ms); body %d bytes\n",
		got.rps()/base.rps(), ms(got.p99), len(sample.Payload))
	return nil
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(n, workers int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var first atomic.Value
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				if err := fn(i); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}

func createRun(creates, clients int) error {
	fmt.Printf("\n== createConnection on the embedded engine: %d creates, %d concurrent\n", creates, clients)
	n, err := startNode()
	if err != nil {
		return err
	}
	t0 := time.Now()
	err = parallel(creates, clients, func(i int) error { return n.create(fmt.Sprintf("c-%06d", i)) })
	grainRate := float64(creates) / time.Since(t0).Seconds()
	if err != nil {
		n.stop()
		return err
	}
	// the documents the grains wrote, appended again raw to a fresh store
	var events []persistence.Event
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < creates; i++ {
		pid := fmt.Sprintf("connection:c-%06d", i)
		if err := n.store.Replay(ctx, pid, 1, func(ev persistence.Event) error { events = append(events, ev); return nil }); err != nil {
			n.stop()
			return err
		}
	}
	n.stop()
	dir, err := os.MkdirTemp("", "dittoconn-load-raw-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	raw, err := bolt.Open(dir)
	if err != nil {
		return err
	}
	defer raw.Close(ctx)
	t0 = time.Now()
	err = parallel(len(events), clients, func(i int) error { return raw.Append(ctx, events[i]) })
	rawRate := float64(len(events)) / time.Since(t0).Seconds()
	if err != nil {
		return err
	}
	fmt.Printf("createConnection  %8.0f /s\nraw store append  %8.0f /s\nratio = %.2f (target >= 0.7)\n", grainRate, rawRate, grainRate/rawRate)
	return nil
}

func heapRun(grains int) error {
	fmt.Printf("\n== heap per idle connection grain: %d grains\n", grains)
	n, err := startNode()
	if err != nil {
		return err
	}
	defer n.stop()
	heap := func() uint64 {
		runtime.GC()
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	before := heap()
	if err := parallel(grains, 16, func(i int) error { return n.create(fmt.Sprintf("h-%06d", i)) }); err != nil {
		return err
	}
	after := heap()
	active := n.sys.ActivatedGrains()
	per := float64(after-before) / float64(active)
	fmt.Printf("activated %d grains; heap %.1f MB → %.1f MB; %.1f KB per grain (target < 20 KB)\n",
		active, float64(before)/1e6, float64(after)/1e6, per/1024)
	return nil
}
