package live

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationRestartManyOpen measures how long a restart takes until N
// stored open MQTT connections all report open again (the aim: 10,000 in
// under 30 s), and heap and goroutines per open connection. It runs only
// with DITTOCONN_BENCH_OPEN=N, against a mosquitto of its own.
func TestIntegrationRestartManyOpen(t *testing.T) {
	total := blackbox.EnvInt("DITTOCONN_BENCH_OPEN", 0)
	if total <= 0 {
		t.Skip("set DITTOCONN_BENCH_OPEN=N to measure a restart with N open MQTT connections")
	}
	b := blackbox.StartMosquitto(t, nil, "max_connections -1\n")
	open := kit.Bolt().Open(t)
	n := kit.Start(t, open(), kit.Options{})
	id := func(i int) string { return fmt.Sprintf("bench-%05d", i) }
	start := time.Now()
	parallel(t, total, 16, func(i int) {
		c := mqttLive("mqtt", id(i), "open", b.URI())
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", c)); r == nil || r.Status != 201 {
			t.Errorf("create %s: %v", id(i), r)
		}
	})
	t.Logf("created %d open connections in %v", total, time.Since(start))
	allOpen(t, n, total, id)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	t.Logf("open: heap %d MiB, %d goroutines (%.1f KiB heap and %.1f goroutines per connection, whole test process)",
		ms.HeapAlloc>>20, runtime.NumGoroutine(), float64(ms.HeapAlloc)/1024/float64(total), float64(runtime.NumGoroutine())/float64(total))

	n.Stop()
	start = time.Now()
	n2 := kit.Start(t, open(), kit.Options{})
	allOpen(t, n2, total, id)
	t.Logf("restart: all %d connections open again %v after start", total, time.Since(start))
}

// allOpen polls until every connection reports liveStatus open.
func allOpen(t *testing.T, n *kit.Node, total int, id func(int) string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	pending := make([]int, total)
	for i := range pending {
		pending[i] = i
	}
	for len(pending) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections not open, e.g. %s", len(pending), id(pending[0]))
		}
		var mu sync.Mutex
		var still []int
		parallel(t, len(pending), 16, func(k int) {
			i := pending[k]
			r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id(i)))
			if r == nil || blackbox.Decode(t, r.Payload)["liveStatus"] != "open" {
				mu.Lock()
				still = append(still, i)
				mu.Unlock()
			}
		})
		pending = still
		if len(pending) > 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
}

func parallel(t *testing.T, total, workers int, fn func(i int)) {
	t.Helper()
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				fn(i)
			}
		}()
	}
	for i := range total {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
}
