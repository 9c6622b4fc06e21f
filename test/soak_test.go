package test

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

type sample struct {
	heapMB     float64
	goroutines int
	fds        int
}

func takeSample() sample {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	fds := -1
	if entries, err := os.ReadDir("/proc/self/fd"); err == nil {
		fds = len(entries)
	}
	return sample{heapMB: float64(m.HeapAlloc) / 1e6, goroutines: runtime.NumGoroutine(), fds: fds}
}

// TestSoak drives steady piggyback traffic plus connection churn (create,
// modify, close, delete, re-create) and samples heap, goroutines and open
// file descriptors: after the first round they stay within a bound. The
// default run is short; DITTOCONN_SOAK=10m runs the documented long soak.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("soak")
	}
	d := 12 * time.Second
	if v := os.Getenv("DITTOCONN_SOAK"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil {
			t.Fatalf("DITTOCONN_SOAK: %v", err)
		}
	}
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{PassivateAfter: 500 * time.Millisecond, PassivateDeletedAfter: 500 * time.Millisecond})
	const workers, idsPerWorker = 8, 16
	var ops, failures atomic.Int64
	round := func(w, r int) {
		for k := 0; k < idsPerWorker; k++ {
			id := fmt.Sprintf("soak-%d-%d", w, k)
			c := blackbox.MQTTConnection(id, "closed", "soak")
			c["name"] = fmt.Sprintf("round %d", r)
			steps := []struct {
				command map[string]any
				want    float64
			}{
				{blackbox.Cmd(ditto.ModifyConnection, "connection", c), 0}, // 201 or 204
				{blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id), 200},
				{blackbox.Cmd(ditto.CloseConnection, "connectionId", id), 200},
				{blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id), 200},
				{blackbox.Cmd(ditto.DeleteConnection, "connectionId", id), 204},
				{blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id), 404},
			}
			for _, s := range steps {
				_, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, s.command, nil))
				st := blackbox.Decode(t, body)["status"]
				ops.Add(1)
				if (s.want == 0 && st != float64(201) && st != float64(204)) || (s.want != 0 && st != s.want) {
					failures.Add(1)
					t.Errorf("%s %s: status %v", id, s.command["type"], st)
				}
			}
		}
		_, body := n.Piggyback(t, kit.Envelope(blackbox.IDsPath, blackbox.Cmd(ditto.RetrieveAllConnectionIDs), nil))
		if blackbox.Decode(t, body)["status"] != float64(200) {
			failures.Add(1)
		}
	}
	runRounds := func(until time.Time) int {
		var wg sync.WaitGroup
		var rounds atomic.Int64
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for r := 0; time.Now().Before(until); r++ {
					round(w, r)
					rounds.Add(1)
				}
			}(w)
		}
		wg.Wait()
		return int(rounds.Load())
	}
	// warm-up round: caches, pools and connections reach their steady size
	runRounds(time.Now().Add(d / 6))
	settle := func() sample {
		poll.Until(t, 10*time.Second, "grains passivated", func() bool { return n.Sys.ActivatedGrains() == 0 })
		return takeSample()
	}
	base := settle()
	start := time.Now()
	rounds := runRounds(start.Add(d))
	end := settle()
	t.Logf("soak %v: %d rounds, %d ops (%.0f/s), %d failures; heap %.1f→%.1f MB, goroutines %d→%d, fds %d→%d",
		d, rounds, ops.Load(), float64(ops.Load())/time.Since(start).Seconds(), failures.Load(),
		base.heapMB, end.heapMB, base.goroutines, end.goroutines, base.fds, end.fds)
	if end.heapMB > base.heapMB+16 {
		t.Errorf("heap grew from %.1f to %.1f MB", base.heapMB, end.heapMB)
	}
	if end.goroutines > base.goroutines+10 {
		t.Errorf("goroutines grew from %d to %d", base.goroutines, end.goroutines)
	}
	if end.fds > base.fds+10 {
		t.Errorf("open files grew from %d to %d", base.fds, end.fds)
	}
}
