package live

import (
	"fmt"
	"os"
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
// least 0.5 of direct), then the same with a JavaScript mapper on the
// source. It runs only with DITTOCONN_BENCH_DATAPLANE=N (messages per
// round), against a mosquitto process of its own, with the same QoS
// everywhere (DITTOCONN_BENCH_QOS, 0 or 1; default 1).
func TestIntegrationDataPlaneThroughput(t *testing.T) {
	total, _ := strconv.Atoi(os.Getenv("DITTOCONN_BENCH_DATAPLANE"))
	qos := 1
	if q, err := strconv.Atoi(os.Getenv("DITTOCONN_BENCH_QOS")); err == nil && q >= 0 && q <= 1 {
		qos = q
	}
	if total <= 0 {
		t.Skip("set DITTOCONN_BENCH_DATAPLANE=N to measure data-plane throughput with N messages")
	}
	b := blackbox.StartMosquitto(t, nil, "max_queued_messages 0\nmax_inflight_messages 0\n")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	payloads := make([]string, total)
	for i := range payloads {
		payloads[i] = blackbox.TwinEvent(fmt.Sprintf("org.acme:dev-%d", i%100), i)
	}

	direct := benchRound(t, qos, b.URI(), "bench/direct", "bench/direct", payloads)
	t.Logf("QoS %d", qos)
	t.Logf("mosquitto publish → subscribe: %d messages in %v = %.0f msg/s", total, direct.d, direct.rate)

	// the floor of any relay: a bare paho client that republishes what it
	// consumes (two broker hops, no mapping, no routing)
	relay := paho.NewClient(paho.NewClientOptions().AddBroker(b.URI()).SetClientID("bench-relay"))
	if tok := relay.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay: %v", tok.Error())
	}
	if tok := relay.Subscribe("bench/relay/in", byte(qos), func(c paho.Client, m paho.Message) {
		c.Publish("bench/relay/out", byte(qos), false, m.Payload()) // waiting here would block paho's router
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay subscribe: %v", tok.Error())
	}
	bare := benchRound(t, qos, b.URI(), "bench/relay/in", "bench/relay/out", payloads)
	relay.Disconnect(100)
	t.Logf("bare paho relay: %d messages in %v = %.0f msg/s = %.2f of direct", total, bare.d, bare.rate, bare.rate/direct.rate)

	auth := []string{"nginx:ditto"}
	dpOpen(t, n, map[string]any{"id": "bench-tgt", "connectionType": "mqtt", "uri": b.URI(),
		"targets": []any{map[string]any{"address": "bench/out/{{ thing:id }}", "authorizationContext": auth, "qos": qos,
			"topics": []string{"_/_/things/twin/events"}}}})
	dpOpen(t, n, map[string]any{"id": "bench-src", "connectionType": "mqtt", "uri": b.URI(),
		"sources": []any{map[string]any{"addresses": []string{"bench/in/#"}, "authorizationContext": auth, "qos": qos}}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source metrics: %s", blackbox.MustJSON(t, dpMetrics(t, n, "bench-src")["connectionMetrics"]))
			t.Logf("target metrics: %s", blackbox.MustJSON(t, dpMetrics(t, n, "bench-tgt")["connectionMetrics"]))
		}
	})
	via := benchRound(t, qos, b.URI(), "bench/in/x", "bench/out/#", payloads)
	t.Logf("dittoconn (Ditto mapper): %d messages in %v = %.0f msg/s = %.2f of direct", total, via.d, via.rate, via.rate/direct.rate)

	js := `function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  var m = JSON.parse(textPayload);
  var t = m.topic.split('/');
  return Ditto.buildDittoProtocolMsg(t[0], t[1], 'things', 'twin', 'events', 'modified', m.path, m.headers, m.value);
}`
	dpOpen(t, n, map[string]any{"id": "bench-src-js", "connectionType": "mqtt", "uri": b.URI(),
		"mappingDefinitions": map[string]any{"js": map[string]any{"mappingEngine": "JavaScript",
			"options": map[string]any{"incomingScript": js}}},
		"sources": []any{map[string]any{"addresses": []string{"bench/js/#"}, "authorizationContext": auth, "qos": qos,
			"payloadMapping": []string{"js"}}}})
	t.Cleanup(func() {
		if t.Failed() { // e.g. scripts interrupted at maxScriptExecutionTime on a starved machine
			t.Logf("JavaScript source metrics: %s", blackbox.MustJSON(t, dpMetrics(t, n, "bench-src-js")["connectionMetrics"]))
		}
	})
	viaJS := benchRound(t, qos, b.URI(), "bench/js/x", "bench/out/#", payloads)
	t.Logf("dittoconn (JavaScript mapper): %d messages in %v = %.0f msg/s = %.2f of direct", total, viaJS.d, viaJS.rate, viaJS.rate/direct.rate)

	// processorPoolSize 4: four messages mapped at once, each in a runtime
	// of its own, handed on in consumed order
	dpOpen(t, n, map[string]any{"id": "bench-src-js4", "connectionType": "mqtt", "uri": b.URI(), "processorPoolSize": 4,
		"mappingDefinitions": map[string]any{"js": map[string]any{"mappingEngine": "JavaScript",
			"options": map[string]any{"incomingScript": js}}},
		"sources": []any{map[string]any{"addresses": []string{"bench/js4/#"}, "authorizationContext": auth, "qos": qos,
			"payloadMapping": []string{"js"}}}})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("JavaScript pool source metrics: %s", blackbox.MustJSON(t, dpMetrics(t, n, "bench-src-js4")["connectionMetrics"]))
		}
	})
	viaJS4 := benchRound(t, qos, b.URI(), "bench/js4/x", "bench/out/#", payloads)
	t.Logf("dittoconn (JavaScript mapper, processorPoolSize 4): %d messages in %v = %.0f msg/s = %.2f of direct = %.2f of the Ditto mapper",
		total, viaJS4.d, viaJS4.rate, viaJS4.rate/direct.rate, viaJS4.rate/via.rate)
}

type benchResult struct {
	d    time.Duration
	rate float64
}

// benchRound publishes every payload to pubTopic (QoS 1, pipelined) and
// waits until a subscriber of subTopic received as many messages.
func benchRound(t *testing.T, qos int, uri, pubTopic, subTopic string, payloads []string) benchResult {
	t.Helper()
	var got atomic.Int64
	done := make(chan struct{})
	total := int64(len(payloads))
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID(fmt.Sprintf("bench-sub-%d", time.Now().UnixNano())))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(subTopic, byte(qos), func(paho.Client, paho.Message) {
		if got.Add(1) == total {
			close(done)
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench subscribe: %v", tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID(fmt.Sprintf("bench-pub-%d", time.Now().UnixNano())))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)
	start := time.Now()
	toks := make([]paho.Token, 0, len(payloads))
	for _, p := range payloads {
		toks = append(toks, pub.Publish(pubTopic, byte(qos), false, p))
	}
	for _, tok := range toks {
		tok.Wait()
	}
	select {
	case <-done:
	case <-time.After(time.Duration(len(payloads)/100+20) * time.Second):
		t.Fatalf("only %d of %d messages arrived", got.Load(), total)
	}
	d := time.Since(start)
	return benchResult{d: d, rate: float64(total) / d.Seconds()}
}
