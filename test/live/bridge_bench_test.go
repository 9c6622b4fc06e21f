package live

import (
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationBridgeThroughput is issue #14's speed measurement: device
// twin commands (modifyAttribute, requested-acks twin-persisted) published
// at QoS 1 to Mosquitto, consumed by an MQTT source of a dittoconn node
// working next to the Ditto gateway emulator, sent up through the bridge
// and each settled (PUBACK) on Ditto's answer ("bridge"), against a
// gorilla/websocket client pre-authenticated to the same emulator sending
// the same commands and reading the answers itself ("baseline"), with the
// same number of commands in flight as the bridge allows (its
// MaxInFlight). A bridged command is done when the emulator answers it
// (counted as it queues the answer for dittoconn's session); with
// DITTOCONN_BENCH_BRIDGE_REPLY=1 the source also has a reply target and a
// command is done when its answer reached the device's reply subscriber
// through Mosquitto (two more MQTT legs, which the baseline has no
// counterpart for). The flows run in the same process, interleaved in
// blocks. It runs only with DITTOCONN_BENCH_BRIDGE=N (commands per flow;
// blocks of DITTOCONN_BENCH_BRIDGE_BLOCK, default 1,000; window
// DITTOCONN_BENCH_BRIDGE_WINDOW, default 20, also the max_inflight_messages
// of the benchmark's own Mosquitto, which bounds what the source has
// unsettled; DITTOCONN_BENCH_BRIDGE_DEVICES=paho: the test's devices are
// paho clients instead of leanMQTT ones). The devices are the harness, as
// the baseline's client is: both are as lean as a client of their
// protocol gets, so that the ratio compares the two paths to Ditto and not
// the test's client libraries (paho costs about 28 µs of this process's
// CPU per message it handles).
func TestIntegrationBridgeThroughput(t *testing.T) {
	total := blackbox.EnvInt("DITTOCONN_BENCH_BRIDGE", 0)
	if total <= 0 {
		t.Skip("set DITTOCONN_BENCH_BRIDGE=N to measure N twin commands through the Ditto bridge against a plain WebSocket client")
	}
	block := blackbox.EnvInt("DITTOCONN_BENCH_BRIDGE_BLOCK", 1000)
	window := blackbox.EnvInt("DITTOCONN_BENCH_BRIDGE_WINDOW", 20)
	// A Mosquitto of the benchmark's own, whose window of unacknowledged
	// QoS 1 messages per client is the window: the machine's keeps
	// Mosquitto's default of 20, which would bound the bridge's flow
	// (every message waits for twin-persisted before its PUBACK) and not
	// the baseline's.
	mq := blackbox.StartMosquitto(t, nil, fmt.Sprintf("max_inflight_messages %d\nmax_queued_messages 1000000\n", window))
	uri := mq.URI()
	// Without a reply leg the MQTT flows end at Ditto's answer, counted
	// as the emulator queues it.
	reply := os.Getenv("DITTOCONN_BENCH_BRIDGE_REPLY") == "1"
	var gotBridge, failBridge, gotRelay, failRelay atomic.Int64
	var lastFail atomic.Value
	// tally counts one command of the bridge or the relay flow as done
	tally := func(relay, ok bool, detail string) {
		got, fail := &gotBridge, &failBridge
		if relay {
			got, fail = &gotRelay, &failRelay
		}
		if ok {
			got.Add(1)
		} else {
			fail.Add(1)
			lastFail.Store(detail)
		}
	}
	onAnswer := func(m *protocol.Message) {
		corr := m.Headers["correlation-id"]
		if relay := strings.HasPrefix(corr, "bb-relay-"); relay || strings.HasPrefix(corr, "bb-bridge-") {
			tally(relay, m.Status/100 == 2, fmt.Sprintf("%d %s", m.Status, m.Value))
		}
	}
	if reply {
		onAnswer = nil
	}
	emu := dittoemu.Start(t, dittoemu.Options{OnAnswer: onAnswer})
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Ditto: &bridge.Config{
		URI: emu.URL(), Auth: bridge.AuthPreAuthenticated, ReconnectMin: 50 * time.Millisecond,
		ReconnectMax: 500 * time.Millisecond, PingInterval: 5 * time.Second, MaxInFlight: window,
	}})
	run := fmt.Sprintf("%d-%d", runID, time.Now().UnixNano()%1e9)
	const subject, things = "integration:bench", 20
	thingID := func(flow string, i int64) string { return fmt.Sprintf("org.bench:%s-%s-%d", flow, run, i%things) }
	for i := range int64(things) {
		for _, flow := range []string{"base", "bridge", "relay"} {
			createThing(t, emu, thingID(flow, i), map[string]any{"counter": 0}, map[string][2]bool{subject: {true, true}})
		}
	}
	id, prefix := dpID("bb-"+run), "bb/"+run
	source := map[string]any{"addresses": []string{prefix + "/bridge/in"}, "qos": 1,
		"authorizationContext":    []string{subject},
		"acknowledgementRequests": map[string]any{"includes": []string{"twin-persisted"}},
		"replyTarget": map[string]any{"enabled": true, "address": prefix + "/bridge/reply",
			"expectedResponseTypes": []string{"response", "error", "nack"}}}
	if !reply {
		source["replyTarget"] = map[string]any{"enabled": false}
	}
	dpOpen(t, n, map[string]any{"id": id, "connectionType": "mqtt", "uri": uri,
		"specificConfig": map[string]any{"clientId": id}, "sources": []any{source}})

	onReply := func(topic string, payload []byte) {
		tally(strings.HasSuffix(topic, "/relay/reply"), strings.Contains(string(payload), `"status":204`), string(payload))
	}
	// The devices: leanMQTT clients, as cheap as the baseline's WebSocket
	// client, or with DITTOCONN_BENCH_BRIDGE_DEVICES=paho paho ones.
	lean := os.Getenv("DITTOCONN_BENCH_BRIDGE_DEVICES") != "paho"
	var pub paho.Client
	var leanPub *leanMQTT
	if lean {
		dialLean(t, uri, "bb-sub-"+run, window, onReply).Subscribe(t, prefix+"/+/reply")
		leanPub = dialLean(t, uri, "bb-pub-"+run, window, func(string, []byte) {})
	} else {
		sub := paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("bb-sub-" + run))
		if tok := sub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("bench subscriber: %v", tok.Error())
		}
		defer sub.Disconnect(100)
		if tok := sub.Subscribe(prefix+"/+/reply", 1, func(_ paho.Client, m paho.Message) {
			onReply(m.Topic(), m.Payload())
		}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("bench subscribe: %v", tok.Error())
		}
		pub = paho.NewClient(paho.NewClientOptions().AddBroker(uri).SetClientID("bb-pub-" + run))
		if tok := pub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("bench publisher: %v", tok.Error())
		}
		defer pub.Disconnect(100)
	}

	// the baseline: one socket, as the bridge's one session for the
	// source's subject; a slot of window is freed by each answer read
	ws, _, err := websocket.DefaultDialer.Dial(emu.URL(), http.Header{"x-ditto-pre-authenticated": {subject}})
	if err != nil {
		t.Fatalf("baseline socket: %v", err)
	}
	defer ws.Close()
	var gotBase, failBase atomic.Int64
	slots := make(chan struct{}, window)
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := protocol.Decode(data)
			if err != nil || m.Status == 0 || !strings.HasPrefix(m.Headers["correlation-id"], "bb-base-") {
				continue
			}
			if m.Status == 204 {
				gotBase.Add(1)
			} else {
				failBase.Add(1)
				lastFail.Store(string(data))
			}
			<-slots
		}
	}()

	startRelay(t, emu.URL(), uri, subject, prefix+"/relay", run, window, reply)

	type flow struct {
		name      string
		got, fail *atomic.Int64
		send      func(seq int64)
		finish    func()
		sent      int64
		wall, cpu time.Duration
	}
	command := func(flow string, seq int64) (topic, path string, headers map[string]string) {
		ns, name, _ := strings.Cut(thingID(flow, seq), ":")
		return ns + "/" + name + "/things/twin/commands/modify", "/attributes/counter",
			map[string]string{"correlation-id": fmt.Sprintf("bb-%s-%d", flow, seq), "timeout": "10s"}
	}
	base := &flow{name: "baseline", got: &gotBase, fail: &failBase, send: func(seq int64) {
		topic, path, h := command("base", seq)
		h["requested-acks"], h["response-required"] = `["twin-persisted"]`, "true"
		slots <- struct{}{}
		if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(&protocol.Message{Topic: topic, Path: path,
			Headers: h, Value: []byte(strconv.FormatInt(seq, 10))})); err != nil {
			t.Fatalf("baseline write: %v", err)
		}
	}, finish: func() {}}
	// mqttFlow publishes the commands of flow name to Mosquitto, for the
	// bridge's source or the relay, waiting for every PUBACK at the end.
	mqttFlow := func(name string, got, fail *atomic.Int64) *flow {
		var toks []paho.Token
		return &flow{name: name, got: got, fail: fail, send: func(seq int64) {
			_, path, h := command(name, seq)
			cmd := twinCommand(thingID(name, seq), "modify", path, h["correlation-id"], seq, map[string]string{"timeout": h["timeout"]})
			if lean {
				leanPub.Publish(prefix+"/"+name+"/in", []byte(cmd))
				return
			}
			toks = append(toks, pub.Publish(prefix+"/"+name+"/in", 1, false, cmd))
		}, finish: func() {
			if lean {
				leanPub.WaitAcked(t, 30*time.Second)
			}
			for _, tok := range toks {
				if !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
					t.Fatalf("%s publish: %v", name, tok.Error())
				}
			}
			toks = toks[:0]
		}}
	}
	brg := mqttFlow("bridge", &gotBridge, &failBridge)
	// the relay: the same device messages through Mosquitto to the floor
	// of any MQTT-to-Ditto bridge (startRelay)
	relay := mqttFlow("relay", &gotRelay, &failRelay)
	// a round sends k commands of a flow and waits until all k are answered
	flows := []*flow{base, brg, relay}
	benchInterleaved(len(flows), total, block, func(i, k, r int) {
		f := flows[i]
		w0, c0 := time.Now(), processCPU()
		for range k {
			f.sent++
			f.send(f.sent)
		}
		f.finish()
		poll.Check(t, time.Duration(k/50+30)*time.Second, func() error {
			if f.fail.Load() > 0 {
				t.Fatalf("%s: %d answers not 204, e.g. %v", f.name, f.fail.Load(), lastFail.Load())
			}
			if got := f.got.Load(); got < f.sent {
				return fmt.Errorf("%s: %d of %d commands answered; sessions at Ditto %+v", f.name, got, f.sent, emu.Sessions())
			}
			return nil
		})
		if r >= 0 { // not the warm-up
			f.wall += time.Since(w0)
			f.cpu += processCPU() - c0
		}
	})
	warm := base.sent - int64(total)
	// every bridged device message was settled on Ditto's success (the
	// rate above counted answers as Ditto gave them)
	acked := func(level string) int {
		v, _ := blackbox.Field(dpMetrics(t, n, id), "sourceMetrics", "addressMetrics", prefix+"/bridge/in", "acknowledged", level, "PT1H").(float64)
		return int(v)
	}
	poll.Check(t, 30*time.Second, func() error {
		if got := acked("success"); got < int(brg.sent) {
			return fmt.Errorf("%d of %d bridged messages settled on success", got, brg.sent)
		}
		return nil
	})
	if f := acked("failure"); f != 0 {
		t.Errorf("%d bridged messages settled on failure", f)
	}
	// the twins hold what the last commands wrote (a window wider than the
	// things lets the bridge's concurrent sends overtake one another)
	for _, f := range []string{"base", "bridge", "relay"} {
		if window > things {
			break
		}
		for seq := warm + int64(total) - things + 1; seq <= warm+int64(total); seq++ {
			if v, _ := attribute(emu, thingID(f, seq), "counter"); v != float64(seq) {
				t.Errorf("%s: counter of %s = %v, want %d", f, thingID(f, seq), v, seq)
			}
		}
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v[:min(len(v), 3)])
	}
	// sessions per connection: one per target with topics, plus one
	// command-only session per source authorization context no target has
	sessions := 0
	for _, si := range emu.Sessions() {
		if si.Origin == id {
			sessions++
		}
	}
	t.Logf("the connection's sessions at Ditto: %d (no target, one source context)", sessions)
	if sessions != 1 {
		t.Errorf("the connection holds %d sessions at Ditto, want 1", sessions)
	}
	for _, f := range flows {
		t.Logf("%-8s %d commands in %v = %.0f cmd/s, %.1f µs process CPU per command, %d answers (%d duplicates)",
			f.name, total, f.wall.Round(time.Millisecond), float64(total)/f.wall.Seconds(),
			float64(f.cpu.Microseconds())/float64(total), f.got.Load()-warm, f.got.Load()-f.sent)
	}
	devices := "paho"
	if lean {
		devices = "lean"
	}
	t.Logf("window %d, reply leg %v, %s devices; bridge/baseline throughput ratio %.2f (issue #14: ≥ 0.7); CPU ratio (baseline/bridge) %.2f",
		window, reply, devices, base.wall.Seconds()/brg.wall.Seconds(), base.cpu.Seconds()/brg.cpu.Seconds())
	t.Logf("relay/baseline throughput ratio %.2f, bridge/relay %.2f; CPU ratio (relay/bridge) %.2f",
		base.wall.Seconds()/relay.wall.Seconds(), relay.wall.Seconds()/brg.wall.Seconds(), relay.cpu.Seconds()/brg.cpu.Seconds())
}

// startRelay runs the least an MQTT-to-Ditto bridge does, to tell the
// bridge's own cost from that of the broker hops: a paho client consuming
// prefix/in at QoS 1 (manual PUBACK), writing each command with
// requested-acks twin-persisted on one pre-authenticated socket, and on
// Ditto's answer acknowledging the device's message (with reply,
// publishing the answer to prefix/reply first), at most window commands
// in flight (as the bridge's MaxInFlight; Mosquitto alone lets more
// through, and the emulator's 200-frame queue per session then drops
// answers). No mapping, no checks, no logs, no metrics.
func startRelay(t *testing.T, wsURI, mqttURI, subject, prefix, run string, window int, reply bool) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(wsURI, http.Header{"x-ditto-pre-authenticated": {subject}})
	if err != nil {
		t.Fatalf("relay socket: %v", err)
	}
	t.Cleanup(func() { _ = ws.Close() })
	var mu sync.Mutex
	waiting := map[string]paho.Message{}
	slots := make(chan struct{}, window)
	c := paho.NewClient(paho.NewClientOptions().AddBroker(mqttURI).SetClientID("bb-relay-" + run).
		SetOrderMatters(true).SetAutoAckDisabled(true))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay client: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	go func() {
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			m, err := protocol.Decode(data)
			if err != nil || m.Status == 0 {
				continue
			}
			mu.Lock()
			in, ok := waiting[m.Headers["correlation-id"]]
			delete(waiting, m.Headers["correlation-id"])
			mu.Unlock()
			if ok {
				if reply {
					c.Publish(prefix+"/reply", 1, false, data)
				}
				in.Ack()
				<-slots
			}
		}
	}()
	if tok := c.Subscribe(prefix+"/in", 1, func(_ paho.Client, in paho.Message) {
		m, err := protocol.Decode(in.Payload())
		if err != nil {
			in.Ack()
			return
		}
		m.Headers["requested-acks"], m.Headers["response-required"] = `["twin-persisted"]`, "true"
		slots <- struct{}{}
		mu.Lock()
		waiting[m.Headers["correlation-id"]] = in
		mu.Unlock()
		if err := ws.WriteMessage(websocket.TextMessage, protocol.Encode(m)); err != nil {
			t.Errorf("relay write: %v", err)
		}
	}); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("relay subscribe: %v", tok.Error())
	}
}
