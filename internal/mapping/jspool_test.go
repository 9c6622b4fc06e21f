package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dop251/goja"

	"github.com/dittoconn/dittoconn/internal/model"
)

// withRendezvous gives every runtime built during the test a global
// rendezvous(): it returns true once n calls (of any runtime) have been
// inside it at the same time, false when that did not happen within wait. Calls
// of one runtime cannot overlap, so n calls meeting means n runtimes.
func withRendezvous(t *testing.T, n int, wait time.Duration) {
	t.Helper()
	var mu sync.Mutex
	inside := 0
	met := make(chan struct{})
	var once sync.Once
	testRuntimeHook = func(vm *goja.Runtime) {
		_ = vm.Set("rendezvous", func() bool {
			mu.Lock()
			inside++
			if inside >= n {
				once.Do(func() { close(met) })
			}
			mu.Unlock()
			defer func() {
				mu.Lock()
				inside--
				mu.Unlock()
			}()
			select {
			case <-met:
				return true
			case <-time.After(wait):
				return false
			}
		})
	}
	t.Cleanup(func() { testRuntimeHook = nil })
}

// mapConcurrently calls m.MapIncoming from n goroutines at once and
// returns their errors.
func mapConcurrently(m *Configured, n int, text string) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.MapIncoming(textMsg(nil, text)).Err
		}()
	}
	wg.Wait()
	return errs
}

// TestJavaScriptPoolMapsConcurrently: with PoolSize 4 (processorPoolSize)
// four callers map at the same time, each in a runtime of its own; with
// one runtime the second caller waits, so the same four cannot meet.
func TestJavaScriptPoolMapsConcurrently(t *testing.T) {
	script := `function mapToDittoProtocolMsg(h, t) {
  if (!rendezvous()) { throw new Error('mapped alone'); }
  return JSON.parse(t);
}`
	cfg := testConfig()
	cfg.JavaScript.MaxScriptExecutionTime = 10 * time.Second // rendezvous waits inside the script
	cfg.PoolSize = 4
	withRendezvous(t, 4, 5*time.Second)
	m, err := newJS(t, script, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i, err := range mapConcurrently(m, 4, twinEvent) {
		if err != nil {
			t.Fatalf("caller %d: %v", i, err)
		}
	}
	if js := m.Mapper.(*jsMapper); js.built != 4 {
		t.Fatalf("%d runtimes built, want 4", js.built)
	}
	// and no more than PoolSize: a fifth caller reuses one
	for i, err := range mapConcurrently(m, 4, twinEvent) {
		if err != nil {
			t.Fatalf("second round, caller %d: %v", i, err)
		}
	}
	if js := m.Mapper.(*jsMapper); js.built != 4 {
		t.Fatalf("%d runtimes built after the second round, want 4", js.built)
	}

	cfg.PoolSize = 1
	withRendezvous(t, 2, 300*time.Millisecond)
	one, err := newJS(t, script, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	errs := mapConcurrently(one, 2, twinEvent)
	if errs[0] == nil || errs[1] == nil || !strings.Contains(errors.Join(errs...).Error(), "mapped alone") {
		t.Fatalf("one runtime: two callers met (%v)", errs)
	}
}

// TestJavaScriptPoolLimitsPerRuntime: the execution time and the call
// stack depth are enforced in every runtime of the pool, while the others
// run, and each runtime stays usable afterwards.
func TestJavaScriptPoolLimitsPerRuntime(t *testing.T) {
	cfg := testConfig()
	cfg.PoolSize = 3
	cfg.JavaScript.MaxScriptExecutionTime = time.Second
	withRendezvous(t, 3, 800*time.Millisecond)
	for _, c := range []struct {
		name, body string
		want       error
		text       string
	}{
		{"execution time", `while (true) {}`, ErrTimeout, "after the configured limit"},
		{"stack depth", `function f(n) { return f(n + 1) + 1; } return f(0);`, ErrMappingFailed, "call stack"},
	} {
		t.Run(c.name, func(t *testing.T) {
			script := fmt.Sprintf(`function mapToDittoProtocolMsg(h, t) {
  if (t !== 'go') { return JSON.parse(t); }
  if (!rendezvous()) { throw new Error('mapped alone'); }
  %s
}`, c.body)
			m, err := newJS(t, script, "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			for i, err := range mapConcurrently(m, 3, "go") {
				if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
					t.Fatalf("caller %d: want %v (%q), got %v", i, c.want, c.text, err)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %v", d)
			}
			if js := m.Mapper.(*jsMapper); js.built != 3 {
				t.Fatalf("%d runtimes built, want 3", js.built)
			}
			for i, err := range mapConcurrently(m, 3, twinEvent) {
				if err != nil {
					t.Fatalf("after the limit, caller %d: %v", i, err)
				}
			}
		})
		withRendezvous(t, 3, 800*time.Millisecond) // a fresh meeting for the next case
	}
}

// BenchmarkJavaScriptIncomingParallel maps from GOMAXPROCS goroutines at
// once with one runtime (callers queue) and with a pool of four.
func BenchmarkJavaScriptIncomingParallel(b *testing.B) {
	opts, _ := json.Marshal(map[string]string{"incomingScript": docTextScript})
	ext := textMsg(map[string]string{"content-type": "application/json", "device_id": "sensor1"},
		`{"temp": "23.42 °C", "hum": 78, "pres": {"value": 760, "unit": "mmHg"}}`)
	for _, pool := range []int{1, 4} {
		b.Run(fmt.Sprintf("PoolSize=%d", pool), func(b *testing.B) {
			cfg := DefaultConfig()
			cfg.PoolSize = pool
			m, err := New("b", model.MappingDefinition{MappingEngine: "JavaScript", Options: opts}, cfg)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if o := m.MapIncoming(ext); o.Err != nil {
						b.Error(o.Err)
						return
					}
				}
			})
		})
	}
}
