package live

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationDataPlaneThroughput measures messages/s of MQTT → Ditto
// mapper → bus → MQTT target through dittoconn against mosquitto's own
// publish → subscribe on the same broker in the same run (the aim: at
// least 0.5 of direct), against a bare paho relay, and with a JavaScript
// mapper on the source, with one runtime and with processorPoolSize 4.
// The five flows run interleaved in blocks, so that swings of the
// machine's load reach them alike. It runs only with
// DITTOCONN_BENCH_DATAPLANE=N (messages per flow; blocks of
// DITTOCONN_BENCH_DATAPLANE_BLOCK, default 1,000), against a mosquitto
// process of its own, with the same QoS everywhere (DITTOCONN_BENCH_QOS,
// 0 or 1; default 1).
func TestIntegrationDataPlaneThroughput(t *testing.T) {
	total := blackbox.EnvInt("DITTOCONN_BENCH_DATAPLANE", 0)
	qos := 1
	if q, err := strconv.Atoi(os.Getenv("DITTOCONN_BENCH_QOS")); err == nil && q >= 0 && q <= 1 {
		qos = q
	}
	if total <= 0 {
		t.Skip("set DITTOCONN_BENCH_DATAPLANE=N to measure data-plane throughput with N messages per flow")
	}
	block := blackbox.EnvInt("DITTOCONN_BENCH_DATAPLANE_BLOCK", 1000)
	b := blackbox.StartMosquitto(t, nil, "max_queued_messages 0\nmax_inflight_messages 0\n")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})

	// the floor of any relay: a bare paho client that republishes what it
	// consumes (two broker hops, no mapping, no routing)
	relay := paho.NewClient(paho.NewClientOptions().AddBroker(b.URI()).SetClientID("bench-relay"))
	if tok := relay.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay: %v", tok.Error())
	}
	defer relay.Disconnect(100)
	if tok := relay.Subscribe("bench/relay/in", byte(qos), func(c paho.Client, m paho.Message) {
		c.Publish("bench/relay/out", byte(qos), false, m.Payload()) // waiting here would block paho's router
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay subscribe: %v", tok.Error())
	}

	// one target for the three dittoconn sources; each flow's things have
	// a namespace of their own, so its subscriber counts only its events
	auth := []string{"nginx:ditto"}
	dpOpen(t, n, map[string]any{"id": "bench-tgt", "connectionType": "mqtt", "uri": b.URI(),
		"targets": []any{map[string]any{"address": "bench/out/{{ thing:namespace }}/{{ thing:name }}", "authorizationContext": auth,
			"qos": qos, "topics": []string{"_/_/things/twin/events"}}}})
	dpOpen(t, n, map[string]any{"id": "bench-src", "connectionType": "mqtt", "uri": b.URI(),
		"sources": []any{map[string]any{"addresses": []string{"bench/in/#"}, "authorizationContext": auth, "qos": qos}}})
	js := `function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  var m = JSON.parse(textPayload);
  var t = m.topic.split('/');
  return Ditto.buildDittoProtocolMsg(t[0], t[1], 'things', 'twin', 'events', 'modified', m.path, m.headers, m.value);
}`
	jsSource := func(id, address string, pool int) {
		dpOpen(t, n, map[string]any{"id": id, "connectionType": "mqtt", "uri": b.URI(), "processorPoolSize": pool,
			"mappingDefinitions": map[string]any{"js": map[string]any{"mappingEngine": "JavaScript",
				"options": map[string]any{"incomingScript": js}}},
			"sources": []any{map[string]any{"addresses": []string{address}, "authorizationContext": auth, "qos": qos,
				"payloadMapping": []string{"js"}}}})
	}
	jsSource("bench-src-js", "bench/js/#", 1)
	// processorPoolSize 4: four messages mapped at once, each in a runtime
	// of its own, handed on in consumed order
	jsSource("bench-src-js4", "bench/js4/#", 4)
	t.Cleanup(func() {
		if t.Failed() { // e.g. scripts interrupted at maxScriptExecutionTime on a starved machine
			for _, id := range []string{"bench-src", "bench-src-js", "bench-src-js4", "bench-tgt"} {
				t.Logf("%s metrics: %s", id, blackbox.MustJSON(t, dpMetrics(t, n, id)["connectionMetrics"]))
			}
		}
	})

	flows := []*benchFlow{
		newBenchFlow(t, qos, b.URI(), "mosquitto publish → subscribe", "direct", "bench/direct", "bench/direct", total+block),
		newBenchFlow(t, qos, b.URI(), "bare paho relay", "relay", "bench/relay/in", "bench/relay/out", total+block),
		newBenchFlow(t, qos, b.URI(), "dittoconn (Ditto mapper)", "ditto", "bench/in/x", "bench/out/org.ditto/#", total+block),
		newBenchFlow(t, qos, b.URI(), "dittoconn (JavaScript mapper)", "js", "bench/js/x", "bench/out/org.js/#", total+block),
		newBenchFlow(t, qos, b.URI(), "dittoconn (JavaScript mapper, processorPoolSize 4)", "js4", "bench/js4/x", "bench/out/org.js4/#", total+block),
	}
	benchInterleaved(len(flows), total, block, func(f, k, r int) { flows[f].round(t, k, r >= 0) })

	direct, ditto, js1, js4 := flows[0], flows[2], flows[3], flows[4]
	t.Logf("QoS %d, %d messages per flow in blocks of %d", qos, total, block)
	for _, f := range flows {
		t.Logf("%s: %d messages in %v = %.0f msg/s = %.2f of direct", f.label, f.measured, f.wall().Round(time.Millisecond),
			f.rate(), f.rate()/direct.rate())
	}
	// per round, the same block size for both: the ratio of their rates
	ratios := make([]float64, len(ditto.blocks))
	for r := range ratios {
		ratios[r] = ditto.blocks[r].Seconds() / js4.blocks[r].Seconds()
	}
	slices.Sort(ratios)
	t.Logf("JavaScript pool 4 / Ditto mapper %.2f, JavaScript pool 1 / Ditto mapper %.2f; pool 4 / Ditto mapper per round: median %.2f of %d (%.2f–%.2f)",
		js4.rate()/ditto.rate(), js1.rate()/ditto.rate(), median(ratios), len(ratios), ratios[0], ratios[len(ratios)-1])
}

// benchInterleaved measures flows flows of total messages each, interleaved
// so that swings of the machine's load reach every flow alike: first a
// warm-up of min(block, 200) messages per flow (connections, mappers, first
// allocations), then rounds in which each flow in turn sends a block of
// block messages. round(f, k, r) sends k messages of flow f and returns once
// all arrived; r is the round, -1 for the warm-up, which a flow's
// measurement leaves out.
func benchInterleaved(flows, total, block int, round func(f, k, r int)) {
	for f := range flows {
		round(f, min(block, 200), -1)
	}
	for r, done := 0, 0; done < total; r, done = r+1, done+block {
		for f := range flows {
			round(f, min(block, total-done), r)
		}
	}
}

// median of sorted values, which are at least one.
func median(sorted []float64) float64 {
	m := len(sorted) / 2
	if len(sorted)%2 == 0 {
		return (sorted[m-1] + sorted[m]) / 2
	}
	return sorted[m]
}

// benchFlow is one flow of TestIntegrationDataPlaneThroughput: a publisher
// to its source topic and a subscriber of where its messages arrive, both
// connected for the whole run.
type benchFlow struct {
	label, topic string
	qos          byte
	pub          paho.Client
	payloads     []string
	sent         int64
	got, want    atomic.Int64
	arrived      chan struct{} // a signal when got reaches want
	measured     int64
	blocks       []time.Duration
}

// newBenchFlow connects a flow's clients and prepares its payloads (Ditto
// Protocol twin events of 100 things in namespace org.<name>), enough for
// messages.
func newBenchFlow(t *testing.T, qos int, uri, label, name, pubTopic, subTopic string, messages int) *benchFlow {
	t.Helper()
	f := &benchFlow{label: label, topic: pubTopic, qos: byte(qos), arrived: make(chan struct{}, 1)}
	for i := range messages {
		f.payloads = append(f.payloads, blackbox.TwinEvent(fmt.Sprintf("org.%s:dev-%d", name, i%100), i))
	}
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("bench-sub-" + name))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscriber: %v", name, tok.Error())
	}
	t.Cleanup(func() { sub.Disconnect(100) })
	if tok := sub.Subscribe(subTopic, f.qos, func(paho.Client, paho.Message) {
		if f.got.Add(1) >= f.want.Load() {
			select {
			case f.arrived <- struct{}{}:
			default:
			}
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s subscribe: %v", name, tok.Error())
	}
	f.pub = paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("bench-pub-" + name))
	if tok := f.pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("%s publisher: %v", name, tok.Error())
	}
	t.Cleanup(func() { f.pub.Disconnect(100) })
	return f
}

// round publishes the flow's next k payloads (pipelined) and waits until
// its subscriber received all of them; a measured round adds its wall
// time to the flow's blocks.
func (f *benchFlow) round(t *testing.T, k int, measured bool) {
	t.Helper()
	select { // a signal of a late duplicate would end this block early
	case <-f.arrived:
	default:
	}
	f.want.Store(f.sent + int64(k))
	start := time.Now()
	toks := make([]paho.Token, 0, k)
	for range k {
		toks = append(toks, f.pub.Publish(f.topic, f.qos, false, f.payloads[f.sent]))
		f.sent++
	}
	for _, tok := range toks {
		if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("%s publish: %v", f.label, tok.Error())
		}
	}
	deadline := time.After(time.Duration(k/50+30) * time.Second)
	for f.got.Load() < f.sent {
		select {
		case <-f.arrived:
		case <-deadline:
			got := f.got.Load()
			t.Fatalf("%s: %d of %d messages arrived, %d of this block's %d", f.label, got, f.sent, got-(f.sent-int64(k)), k)
		}
	}
	if measured {
		f.blocks = append(f.blocks, time.Since(start))
		f.measured += int64(k)
	}
}

// wall is the sum of the measured blocks' wall time.
func (f *benchFlow) wall() time.Duration {
	var d time.Duration
	for _, b := range f.blocks {
		d += b
	}
	return d
}

// rate is the measured messages per second of wall time.
func (f *benchFlow) rate() float64 {
	return float64(f.measured) / f.wall().Seconds()
}
