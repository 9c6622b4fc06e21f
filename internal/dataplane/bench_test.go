package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
)

// counting is a client that only counts what it publishes.
type counting struct{ n atomic.Int64 }

func (c *counting) Connect(context.Context) error                 { return nil }
func (c *counting) Publish(context.Context, client.Message) error { c.n.Add(1); return nil }
func (c *counting) Status() []client.ResourceStatus               { return nil }
func (c *counting) Close(context.Context) error                   { return nil }

const benchSource = `{"id":"bench-src","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["bench/in/#"],"authorizationContext":["nginx:ditto"],"qos":1}]}`

const benchTarget = `{"id":"bench-tgt","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"bench/out/{{ thing:id }}","authorizationContext":["nginx:ditto"],"qos":1,
   "topics":["_/_/things/twin/events"]}]}`

func benchPlane(b *testing.B, bs bus.Bus, js string, logsOn bool) (*Plane, *counting) {
	c, err := model.ParseCommand([]byte(js))
	if err != nil {
		b.Fatal(err)
	}
	logs := monitor.NewLogs(monitor.LogOptions{ConnectionID: c.ID})
	if logsOn {
		logs.Enable()
	}
	p, err := New(c, Config{Bus: bs, Logs: logs})
	if err != nil {
		b.Fatal(err)
	}
	cl := &counting{}
	p.Connected(0, cl)
	b.Cleanup(func() { p.Close(); p.Wait() })
	return p, cl
}

// BenchmarkMQTTDittoToTarget is the benchmark test's path without brokers:
// a consumed MQTT message (Ditto Protocol twin event) → Ditto mapper → bus →
// target filter → Ditto mapper → address → a client that does nothing.
func BenchmarkMQTTDittoToTarget(b *testing.B) {
	for _, logsOn := range []bool{true, false} {
		b.Run(fmt.Sprintf("logs=%v", logsOn), func(b *testing.B) {
			bs := bus.NewLocal()
			src, _ := benchPlane(b, bs, benchSource, logsOn)
			_, out := benchPlane(b, bs, benchTarget, logsOn)
			driveTwinEvents(b, src, out)
		})
	}
}

// driveTwinEvents feeds b.N device twin events (100 things) to src's
// consumer at QoS 1 and waits until out counted them all, reporting CPU
// time per message.
func driveTwinEvents(b *testing.B, src *Plane, out *counting) {
	payloads := make([][]byte, 100)
	for i := range payloads {
		payloads[i] = []byte(fmt.Sprintf(`{"topic":"org.acme/dev-%d/things/twin/events/modified",`+
			`"headers":{"correlation-id":"c-dev-%d-%d"},"path":"/features/temp/properties/value","value":%d,"revision":%d}`,
			i, i, i, i, i))
	}
	in := src.Inbound(0)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		qos := 1
		in(client.Message{Address: "bench/in/#", Headers: map[string]string{"mqtt.topic": "bench/in/x",
			"mqtt.qos": "1", "mqtt.retain": "false"}, Payload: payloads[i%len(payloads)], QoS: &qos})
	}
	for out.n.Load() < int64(b.N) {
		runtimeGosched()
	}
	b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
}

func runtimeGosched() { runtime.Gosched() }

// cpuTime is the process's user and system CPU time in ns: on a shared
// machine a steadier measure than wall time.
func cpuTime() int64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// benchScript is the benchmark test's JavaScript incomingScript
// (test/live TestIntegrationDataPlaneThroughput).
const benchScript = `function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  var m = JSON.parse(textPayload);
  var t = m.topic.split('/');
  return Ditto.buildDittoProtocolMsg(t[0], t[1], 'things', 'twin', 'events', 'modified', m.path, m.headers, m.value);
}`

// BenchmarkMQTTJavaScriptToTarget is BenchmarkMQTTDittoToTarget (logs on)
// with the JavaScript mapper on the source, processorPoolSize 1 and 4.
func BenchmarkMQTTJavaScriptToTarget(b *testing.B) {
	script, _ := json.Marshal(benchScript)
	for _, pool := range []int{1, 4} {
		b.Run(fmt.Sprintf("processorPoolSize=%d", pool), func(b *testing.B) {
			bs := bus.NewLocal()
			src, _ := benchPlane(b, bs, fmt.Sprintf(`{"id":"bench-src","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "processorPoolSize":%d,
 "sources":[{"addresses":["bench/in/#"],"authorizationContext":["nginx:ditto"],"qos":1,"payloadMapping":["js"]}],
 "mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"incomingScript":%s}}}}`, pool, script), true)
			_, out := benchPlane(b, bs, benchTarget, true)
			driveTwinEvents(b, src, out)
		})
	}
}
