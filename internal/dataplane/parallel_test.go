package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/test/poll"
)

// collector is a client that keeps everything it is asked to publish.
type collector struct {
	mu   sync.Mutex
	msgs []client.Message
}

func (c *collector) Connect(context.Context) error { return nil }
func (c *collector) Publish(_ context.Context, m client.Message) error {
	c.mu.Lock()
	c.msgs = append(c.msgs, m)
	c.mu.Unlock()
	return nil
}
func (c *collector) Status() []client.ResourceStatus { return nil }
func (c *collector) Close(context.Context) error     { return nil }

func (c *collector) published() []client.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// parallelSource is a source connection mapping with a JavaScript script
// whose run time depends on the message ("spin" loop iterations), so that
// with several runtimes later messages finish mapping first.
func parallelSource(poolSize int) string {
	script := `function mapToDittoProtocolMsg(headers, textPayload) {
  var m = JSON.parse(textPayload);
  var x = 0;
  for (var i = 0; i < m.value.spin; i++) { x += i; }
  return m;
}`
	js, _ := json.Marshal(script)
	return `{"id":"src","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "processorPoolSize":` + strconv.Itoa(poolSize) + `,
 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],"payloadMapping":["js"]}],
 "mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"incomingScript":` + string(js) + `}}}}`
}

const parallelTarget = `{"id":"tgt","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"ex/{{ thing:id }}","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`

func seqEvent(thing string, seq, spin int) []byte {
	return []byte(fmt.Sprintf(`{"topic":"org.acme/%s/things/twin/events/modified","headers":{"correlation-id":"c%d"},`+
		`"path":"/attributes/seq","value":{"seq":%d,"spin":%d}}`, thing, seq, seq, spin))
}

// TestParallelMappingKeepsOrder: with processorPoolSize 4 a source maps
// four messages at once, yet every thing's signals reach the target in
// the order they were consumed, and the messages are settled in that
// order, each once.
func TestParallelMappingKeepsOrder(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, parallelSource(4))
	if src.par == nil {
		t.Fatal("processorPoolSize 4 built no mapping stage")
	}
	tgt, err := New(parse(t, parallelTarget), Config{Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	out := &collector{}
	tgt.Connected(0, out)
	t.Cleanup(func() { tgt.Close(); tgt.Wait() })

	const total = 200
	var mu sync.Mutex
	var settled []int
	in := src.Inbound(0)
	for i := range total {
		spin := 0
		if i%5 == 0 {
			spin = 20000 // slower than the four behind it
		}
		in(client.Message{Address: "q", Payload: seqEvent(fmt.Sprintf("dev-%d", i%4), i, spin),
			Headers: map[string]string{"content-type": "application/json"},
			Settle: func(o client.Outcome) {
				mu.Lock()
				settled = append(settled, i)
				mu.Unlock()
				if o != client.Accept {
					t.Errorf("message %d settled %v", i, o)
				}
			}})
	}
	poll.Check(t, 20*time.Second, func() error {
		if n := len(out.published()); n < total {
			return fmt.Errorf("%d of %d published", n, total)
		}
		return nil
	})
	last := map[string]int{}
	for _, m := range out.published() {
		var ev struct {
			Value struct{ Seq int } `json:"value"`
		}
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			t.Fatalf("%s: %v", m.Payload, err)
		}
		if prev, ok := last[m.Address]; ok && ev.Value.Seq <= prev {
			t.Fatalf("%s: %d published after %d", m.Address, ev.Value.Seq, prev)
		}
		last[m.Address] = ev.Value.Seq
	}
	if len(last) != 4 {
		t.Fatalf("published to %v", last)
	}
	src.Close()
	src.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(settled) != total {
		t.Fatalf("%d settled, want %d", len(settled), total)
	}
	for i, seq := range settled {
		if seq != i {
			t.Fatalf("settled in the order %v", settled)
		}
	}
}

// TestParallelMappingUsesThePool: processorPoolSize 4 maps four messages
// of one source at the same time (the hook holds each until all four are
// in); processorPoolSize 1 maps on the consuming goroutine, and a pool
// size above CONNECTIVITY_MESSAGE_MAPPING_MAX_POOL_SIZE is clamped to it.
func TestParallelMappingUsesThePool(t *testing.T) {
	var mu sync.Mutex
	inside, most := 0, 0
	met := make(chan struct{})
	var once sync.Once
	testMapHook = func() {
		mu.Lock()
		inside++
		most = max(most, inside)
		if inside == 4 {
			once.Do(func() { close(met) })
		}
		mu.Unlock()
		select {
		case <-met:
		case <-time.After(5 * time.Second):
		}
		mu.Lock()
		inside--
		mu.Unlock()
	}
	t.Cleanup(func() { testMapHook = nil })

	b := bus.NewLocal()
	src, _ := start(t, b, parallelSource(4))
	in := src.Inbound(0)
	for i := range 4 {
		in(client.Message{Address: "q", Payload: seqEvent("dev", i, 0)})
	}
	select {
	case <-met:
	case <-time.After(10 * time.Second):
		t.Fatal("four messages were not mapped at the same time")
	}
	src.Close()
	src.Wait()
	mu.Lock()
	if most != 4 {
		t.Errorf("at most %d mapped at once, want 4", most)
	}
	mu.Unlock()

	if one, _ := start(t, b, parallelSource(1)); one.par != nil {
		t.Error("processorPoolSize 1 built a mapping stage")
	}
	big, _ := start(t, b, parallelSource(64))
	if big.par == nil || big.par.n != 5 {
		t.Errorf("processorPoolSize 64: want Ditto's max-pool-size 5, got %v", big.par)
	}
}
