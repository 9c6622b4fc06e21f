package dataplane

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
)

const benchAckSource = `{"id":"bench-req","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["bench/in/#"],"authorizationContext":["nginx:ditto"],"qos":1%s}]}`

const benchAckTarget = `{"id":"bench-iss","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"bench/out/{{ thing:id }}","authorizationContext":["nginx:ditto"],"qos":1,
   "topics":["_/_/things/live/messages"],"issuedAcknowledgementLabel":"{{connection:id}}:ack"}]}`

// BenchmarkLiveMessageAcks: consumed live messages (response-required
// false) → bus → another connection's target, whose client confirms each
// publish; "acks" requests the target's issued label, waits for it and
// settles the message on it, "baseline" requests nothing (settled once
// published on the bus). Each op ends when its message is settled and
// published; the ratio baseline/acks in ns/op is the throughput
// ratio.
func BenchmarkLiveMessageAcks(b *testing.B) {
	for _, mode := range []string{"baseline", "acks"} {
		b.Run(mode, func(b *testing.B) {
			extra := ""
			if mode == "acks" {
				extra = `,"acknowledgementRequests":{"includes":["bench-iss:ack"]}`
			}
			bs := bus.NewLocal()
			src, _ := benchPlane(b, bs, fmt.Sprintf(benchAckSource, extra), false)
			_, out := benchPlane(b, bs, benchAckTarget, false)
			payloads := make([][]byte, 100)
			for i := range payloads {
				payloads[i] = []byte(fmt.Sprintf(`{"topic":"org.acme/dev-%d/things/live/messages/ask","headers":`+
					`{"correlation-id":"c-%%d","response-required":false,"content-type":"text/plain"},`+
					`"path":"/inbox/messages/ask","value":"hi"}`, i))
			}
			var settledN, accepted atomic.Int64
			settle := func(o client.Outcome) {
				if o == client.Accept {
					accepted.Add(1)
				}
				settledN.Add(1)
			}
			in := src.Inbound(0)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p := []byte(fmt.Sprintf(string(payloads[i%len(payloads)]), i))
				in(client.Message{Address: "bench/in/#", Headers: map[string]string{"mqtt.topic": "bench/in/x"},
					Payload: p, Settle: settle})
			}
			for settledN.Load() < int64(b.N) || out.n.Load() < int64(b.N) {
				runtime.Gosched()
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
			if accepted.Load() != int64(b.N) {
				b.Fatalf("accepted %d of %d", accepted.Load(), b.N)
			}
		})
	}
}

// BenchmarkUnsettledMessageMemory reports the heap held per consumed
// message waiting for an acknowledgement nobody sends (its aggregation,
// timer, settlement and the signal's headers), with 10,000 waiting.
func BenchmarkUnsettledMessageMemory(b *testing.B) {
	const pending = 10000
	for i := 0; i < b.N; i++ {
		bs := bus.NewLocal()
		src, _ := benchPlane(b, bs, fmt.Sprintf(benchAckSource, `,"acknowledgementRequests":{"includes":["nobody:ack"]}`), false)
		in := src.Inbound(0)
		msgs := make([]client.Message, pending)
		for j := range msgs {
			msgs[j] = client.Message{Address: "bench/in/#", Headers: map[string]string{"mqtt.topic": "bench/in/x"},
				Payload: []byte(fmt.Sprintf(`{"topic":"org.acme/dev/things/live/messages/ask","headers":`+
					`{"correlation-id":"m-%d","response-required":false,"timeout":"60s"},"path":"/inbox/messages/ask","value":"hi"}`, j)),
				Settle: func(client.Outcome) {}}
		}
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for j := range msgs {
			in(msgs[j])
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		src.acks.mu.Lock()
		n := len(src.acks.m)
		src.acks.mu.Unlock()
		if n != pending {
			b.Fatalf("%d waiting, want %d", n, pending)
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/pending, "B/unsettled")
		runtime.KeepAlive(msgs)
	}
}
