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

// ackFlow is one requester → issuer pair of planes on their own bus.
type ackFlow struct {
	in       func(client.Message)
	out      *counting
	settled  atomic.Int64
	accepted atomic.Int64
	sent     int64
}

func newAckFlow(b *testing.B, withAcks bool) *ackFlow {
	extra := ""
	if withAcks {
		extra = `,"acknowledgementRequests":{"includes":["bench-iss:ack"]}`
	}
	bs := bus.NewLocal()
	src, _ := benchPlane(b, bs, fmt.Sprintf(benchAckSource, extra), false)
	_, out := benchPlane(b, bs, benchAckTarget, false)
	return &ackFlow{in: src.Inbound(0), out: out}
}

// run consumes n live messages (response-required false) and waits until
// each is settled and published by the issuer's target.
func (f *ackFlow) run(n int) {
	settle := func(o client.Outcome) {
		if o == client.Accept {
			f.accepted.Add(1)
		}
		f.settled.Add(1)
	}
	for i := 0; i < n; i++ {
		f.sent++
		p := fmt.Appendf(nil, `{"topic":"org.acme/dev-%d/things/live/messages/ask","headers":`+
			`{"correlation-id":"c-%d","response-required":false,"content-type":"text/plain"},`+
			`"path":"/inbox/messages/ask","value":"hi"}`, f.sent%100, f.sent)
		f.in(client.Message{Address: "bench/in/#", Headers: map[string]string{"mqtt.topic": "bench/in/x"},
			Payload: p, Settle: settle})
	}
	for f.settled.Load() < f.sent || f.out.n.Load() < f.sent {
		runtime.Gosched()
	}
}

// BenchmarkLiveMessageAcks: consumed live messages (response-required
// false) → bus → another connection's target, whose client confirms each
// publish. "acks" requests the target's issued label, waits for it and
// settles each message on it; "baseline" requests nothing (settled once on
// the bus). Both run interleaved in blocks of 1,000 messages, so that the
// machine's load hits both alike; reported: CPU per message of each and
// acks-throughput-ratio, the baseline's CPU per message over the acks
// flow's (the issue asks ≥ 0.7).
func BenchmarkLiveMessageAcks(b *testing.B) {
	base, acks := newAckFlow(b, false), newAckFlow(b, true)
	const block = 1000
	base.run(block) // warm up
	acks.run(block)
	var cpuBase, cpuAcks int64
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; done += block {
		n := min(block, b.N-done)
		c0 := cpuTime()
		base.run(n)
		c1 := cpuTime()
		acks.run(n)
		cpuBase, cpuAcks = cpuBase+c1-c0, cpuAcks+cpuTime()-c1
	}
	b.StopTimer()
	if acks.accepted.Load() != acks.sent || base.accepted.Load() != base.sent {
		b.Fatalf("accepted %d of %d (acks), %d of %d (baseline)", acks.accepted.Load(), acks.sent, base.accepted.Load(), base.sent)
	}
	b.ReportMetric(float64(cpuBase)/float64(b.N), "base-cpu-ns/msg")
	b.ReportMetric(float64(cpuAcks)/float64(b.N), "acks-cpu-ns/msg")
	b.ReportMetric(float64(cpuBase)/float64(cpuAcks), "acks-throughput-ratio")
}

// BenchmarkUnsettledMessageMemory reports the heap held per consumed
// message waiting for an acknowledgement nobody sends (its aggregation,
// timer, settlement and the signal's headers), with 10,000 waiting.
func BenchmarkUnsettledMessageMemory(b *testing.B) {
	const pending = 10000
	for i := 0; i < min(b.N, 3); i++ { // each round holds 10,000 messages: a few rounds measure it
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
