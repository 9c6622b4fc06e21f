package live

import (
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationAckThroughputMQTT is issue #13's speed measurement:
// MQTT QoS 1 live messages → dittoconn → MQTT QoS 1 target issuing a
// custom label, once with the source requesting that label ("acks": each
// message's PUBACK waits for the target's broker to confirm the publish)
// and once without acknowledgement requests ("baseline"), through the
// Mosquitto on 127.0.0.1:1883. Both flows run in the same process,
// interleaved in blocks (benchInterleaved), so the machine's load hits both
// alike. It runs only with DITTOCONN_BENCH_ACKS=N (messages per flow; blocks
// of DITTOCONN_BENCH_ACKS_BLOCK, default 1,000).
func TestIntegrationAckThroughputMQTT(t *testing.T) {
	total := blackbox.EnvInt("DITTOCONN_BENCH_ACKS", 0)
	if total <= 0 {
		t.Skip("set DITTOCONN_BENCH_ACKS=N to measure acknowledged against unacknowledged MQTT throughput with N messages each")
	}
	block := blackbox.EnvInt("DITTOCONN_BENCH_ACKS_BLOCK", 1000)
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	const uri = "tcp://127.0.0.1:1883"
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	run := fmt.Sprintf("%d-%d", runID, time.Now().UnixNano()%1e9)
	baseID, acksID, issID := dpID("abb-base-"+run), dpID("abb-acks-"+run), dpID("abb-iss-"+run)
	auth := []string{"nginx:ditto"}
	prefix := "abb/" + run

	// one issuer for both flows: messages reach it by their namespace's topic
	dpOpen(t, n, map[string]any{"id": issID, "connectionType": "mqtt", "uri": uri,
		"targets": []any{map[string]any{"address": prefix + "/out/{{ thing:namespace }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	dpOpen(t, n, map[string]any{"id": baseID, "connectionType": "mqtt", "uri": uri,
		"sources": []any{map[string]any{"addresses": []string{prefix + "/base/in"}, "authorizationContext": auth, "qos": 1}}})
	dpOpen(t, n, map[string]any{"id": acksID, "connectionType": "mqtt", "uri": uri,
		"sources": []any{map[string]any{"addresses": []string{prefix + "/acks/in"}, "authorizationContext": auth, "qos": 1,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}}}}})

	var gotBase, gotAcks atomic.Int64
	sub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("abb-sub-" + run))
	if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench subscriber: %v", tok.Error())
	}
	defer sub.Disconnect(100)
	if tok := sub.Subscribe(prefix+"/out/#", 1, func(_ paho.Client, m paho.Message) {
		if strings.HasSuffix(m.Topic(), "/org.acks") {
			gotAcks.Add(1)
		} else {
			gotBase.Add(1)
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench subscribe: %v", tok.Error())
	}
	pub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("abb-pub-" + run))
	if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("bench publisher: %v", tok.Error())
	}
	defer pub.Disconnect(100)

	type flow struct {
		name, ns, topic string
		got             *atomic.Int64
		sent            int64
		wall, cpu       time.Duration
	}
	base := &flow{name: "baseline", ns: "org.base", topic: prefix + "/base/in", got: &gotBase}
	acks := &flow{name: "acks", ns: "org.acks", topic: prefix + "/acks/in", got: &gotAcks}
	// a round publishes k live messages of a flow (pipelined, QoS 1) and
	// waits until the subscriber of the target's topic received all of them
	flows := []*flow{base, acks}
	benchInterleaved(len(flows), total, block, func(i, k, r int) {
		f := flows[i]
		w0, c0 := time.Now(), processCPU()
		toks := make([]paho.Token, 0, k)
		for range k {
			f.sent++
			toks = append(toks, pub.Publish(f.topic, 1, false, fmt.Sprintf(
				`{"topic":"%s/dev-%d/things/live/messages/tick","headers":{"correlation-id":"abb-%s-%d",`+
					`"content-type":"application/json","response-required":"false","timeout":"10s"},`+
					`"path":"/inbox/messages/tick","value":%d}`, f.ns, f.sent%100, f.ns, f.sent, f.sent)))
		}
		for _, tok := range toks {
			if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
				t.Fatalf("%s publish: %v", f.name, tok.Error())
			}
		}
		poll.Until(t, time.Duration(k/50+30)*time.Second, fmt.Sprintf("%s: %d messages at the target", f.name, f.sent), func() bool {
			return f.got.Load() >= f.sent
		})
		if r >= 0 { // not the warm-up
			f.wall += time.Since(w0)
			f.cpu += processCPU() - c0
		}
	})
	warm := base.sent - int64(total)
	// every acknowledged message was settled on the issued label
	m := waitSourceAcks(t, n, acksID, prefix+"/acks/in", int(acks.sent))
	if f := dpCount(m, "source", prefix+"/acks/in", "acknowledged", "failure"); f != 0 {
		t.Errorf("%d acknowledged failures at the acks source", f)
	}
	for _, f := range []*flow{base, acks} {
		t.Logf("%-8s %d messages in %v = %.0f msg/s, %.1f µs process CPU per message, %d arrivals (%d duplicates)",
			f.name, total, f.wall.Round(time.Millisecond), float64(total)/f.wall.Seconds(),
			float64(f.cpu.Microseconds())/float64(total), f.got.Load()-warm, f.got.Load()-f.sent)
	}
	t.Logf("acks/baseline throughput ratio %.2f (issue #13: ≥ 0.7); CPU ratio (baseline/acks) %.2f",
		base.wall.Seconds()/acks.wall.Seconds(), base.cpu.Seconds()/acks.cpu.Seconds())
}

// processCPU is this process's user and system CPU time: on a shared
// machine a steadier measure of dittoconn's (and the test clients') work
// than wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
