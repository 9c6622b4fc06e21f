package dataplane

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/poll"
)

// recorder is a fake client that records what it publishes.
type recorder struct {
	mu   sync.Mutex
	msgs []client.Message
	got  chan client.Message
}

func newRecorder() *recorder { return &recorder{got: make(chan client.Message, 100)} }

func (r *recorder) Connect(context.Context) error { return nil }
func (r *recorder) Publish(_ context.Context, m client.Message) error {
	r.mu.Lock()
	r.msgs = append(r.msgs, m)
	r.mu.Unlock()
	r.got <- m
	return nil
}
func (r *recorder) Status() []client.ResourceStatus { return nil }
func (r *recorder) Close(context.Context) error     { return nil }

func (r *recorder) next(t *testing.T) client.Message {
	t.Helper()
	select {
	case m := <-r.got:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
		return client.Message{}
	}
}

func (r *recorder) none(t *testing.T) {
	t.Helper()
	select {
	case m := <-r.got:
		t.Fatalf("unexpected publish to %s: %s", m.Address, m.Payload)
	case <-time.After(100 * time.Millisecond):
	}
}

func parse(t *testing.T, js string) *model.Connection {
	t.Helper()
	c, err := model.ParseCommand([]byte(js))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

// start builds, connects and registers cleanup of a plane with a recorder.
func start(t *testing.T, b bus.Bus, js string) (*Plane, *recorder) {
	t.Helper()
	return startWith(t, b, js, "")
}

// startWith is start with a chosen standalone routing.
func startWith(t *testing.T, b bus.Bus, js string, r Routing) (*Plane, *recorder) {
	t.Helper()
	return startConfig(t, js, Config{Bus: b, Routing: r})
}

// startConfig starts the plane of js with cfg and enabled logs, one
// recording client connected.
func startConfig(t *testing.T, js string, cfg Config) (*Plane, *recorder) {
	t.Helper()
	cfg.Logs = monitor.NewLogs(monitor.LogOptions{ConnectionID: "x"})
	cfg.Logs.Enable()
	p, err := New(parse(t, js), cfg)
	if err != nil {
		t.Fatalf("plane: %v", err)
	}
	rec := newRecorder()
	p.Connected(0, rec)
	t.Cleanup(func() { p.Close(); p.Wait() })
	return p, rec
}

func count(p *Plane, d monitor.Direction, typ monitor.MetricType, addr string, success bool) int {
	return int(p.metrics.Counter(d, typ, addr).Total(success))
}

const sourceConn = `{"id":"src","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],
   "enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}}],
 "targets":[{"address":"own","topics":["_/_/things/live/messages"],"authorizationContext":["a:b"]}]}`

const targetConn = `{"id":"tgt","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[
  {"address":"ex/{{ thing:id }}","authorizationContext":["a:b"],
   "topics":["_/_/things/live/messages?namespaces=org.acme","_/_/things/twin/events?filter=eq(attributes/on,true)"],
   "headerMapping":{"subject":"{{ header:ditto-message-subject }}","gone":"{{ header:nope }}"}},
  {"address":"ex/{{ header:nope }}","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`

func liveMessage(ns, subject string) []byte {
	return []byte(`{"topic":"` + ns + `/dev/things/live/messages/` + subject + `","headers":{"correlation-id":"c1",` +
		`"ditto-message-subject":"` + subject + `","content-type":"text/plain"},"path":"/inbox/messages/` + subject + `","value":"hi"}`)
}

func TestRoutesLiveMessagesWithNamespacesHeadersAndNoLoop(t *testing.T) {
	b := bus.NewLocal()
	src, srcRec := start(t, b, sourceConn)
	tgt, rec := start(t, b, targetConn)
	in := src.Inbound(0)
	in(client.Message{Address: "q", Headers: map[string]string{"device-id": "org.acme:dev"}, Payload: liveMessage("org.acme", "hello")})
	m := rec.next(t)
	if m.Address != "ex/org.acme:dev" || m.Headers["subject"] != "hello" || m.Headers["correlation-id"] != "c1" {
		t.Fatalf("published %+v", m)
	}
	if _, ok := m.Headers["gone"]; ok {
		t.Errorf("unresolved header sent: %v", m.Headers)
	}
	srcRec.none(t) // the source's own target subscribed to live messages too

	// another namespace: dispatched, not filtered
	in(client.Message{Address: "q", Headers: map[string]string{"device-id": "other:dev"}, Payload: liveMessage("other", "x")})
	rec.none(t)
	if got := count(tgt, monitor.Outbound, monitor.Dispatched, "ex/{{ thing:id }}", true); got != 2 {
		t.Errorf("dispatched %d", got)
	}
	if got := count(tgt, monitor.Outbound, monitor.Filtered, "ex/{{ thing:id }}", true); got != 1 {
		t.Errorf("filtered %d", got)
	}
	if got := count(src, monitor.Outbound, monitor.Dispatched, "own", true); got != 0 {
		t.Errorf("own target dispatched %d", got)
	}
	if got := count(src, monitor.Inbound, monitor.Enforced, "q", true); got != 2 {
		t.Errorf("enforced %d", got)
	}
}

func TestTwinEventFilterAndUnresolvedAddress(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, strings.Replace(sourceConn, `"enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}`, `"qos":0`, 1))
	tgt, rec := start(t, b, targetConn)
	ev := func(on bool) []byte {
		v := "false"
		if on {
			v = "true"
		}
		return []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{},"path":"/attributes/on","value":` + v + `}`)
	}
	src.Inbound(0)(client.Message{Address: "q", Payload: ev(false)})
	src.Inbound(0)(client.Message{Address: "q", Payload: ev(true)})
	m := rec.next(t)
	if m.Address != "ex/org.acme:dev" {
		t.Fatalf("published to %s", m.Address)
	}
	rec.none(t)
	poll.Until(t, 5*time.Second, "2 dropped", func() bool { return count(tgt, monitor.Outbound, monitor.Dropped, "ex/{{ header:nope }}", true) == 2 })
	if got := count(tgt, monitor.Outbound, monitor.Filtered, "ex/{{ thing:id }}", true); got != 1 {
		t.Errorf("filtered %d", got)
	}
	if got := count(tgt, monitor.Outbound, monitor.Published, "ex/{{ header:nope }}", true); got != 0 {
		t.Errorf("published to an unresolved address: %d", got)
	}
	logs := tgt.logs.Retrieve()
	found := false
	for _, e := range logs.Entries {
		if e.Type == monitor.Dropped && strings.Contains(e.Message, "target address unresolved") {
			found = true
		}
	}
	if !found {
		t.Errorf("no dropped entry: %s", logs.ConnectionLogsJSON())
	}
}

const replyConn = `{"id":"dev","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],
   "enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}}]}`

func TestTwinCommandAndEnforcementFailuresAnswerTheReplyTarget(t *testing.T) {
	b := bus.NewLocal()
	var routed int
	b.Subscribe(model.TopicTwinEvents, func(*bus.Signal) { routed++ })
	p, rec := start(t, b, replyConn)
	cmd := []byte(`{"topic":"org.acme/dev/things/twin/commands/modify","headers":{"correlation-id":"k1"},"path":"/attributes/x","value":1}`)
	p.Inbound(0)(client.Message{Address: "q", Payload: cmd,
		Headers: map[string]string{"device-id": "org.acme:dev", "reply-to": "replies", "correlation-id": "k1"}})
	m := rec.next(t)
	if m.Address != "replies" || m.Headers["correlation-id"] != "k1" {
		t.Fatalf("reply %+v", m)
	}
	var resp map[string]any
	_ = json.Unmarshal(m.Payload, &resp)
	if resp["topic"] != "org.acme/dev/things/twin/errors" || resp["status"] != float64(501) {
		t.Errorf("error response %s", m.Payload)
	}
	if v, _ := resp["value"].(map[string]any); v["error"] != CodeTwinUnsupported {
		t.Errorf("error response %s", m.Payload)
	}
	if got := count(p, monitor.Inbound, monitor.Dropped, "q", false); got != 1 {
		t.Errorf("dropped failures %d", got)
	}
	if got := count(p, monitor.Outbound, monitor.Published, monitor.ResponsesAddress, true); got != 1 {
		t.Errorf("responses published %d", got)
	}

	// enforcement: the device may only speak for itself
	ev := []byte(`{"topic":"org.acme/other/things/twin/events/modified","headers":{},"path":"/attributes/x","value":1}`)
	p.Inbound(0)(client.Message{Address: "q", Payload: ev,
		Headers: map[string]string{"device-id": "org.acme:dev", "reply-to": "replies", "correlation-id": "k2"}})
	m = rec.next(t)
	_ = json.Unmarshal(m.Payload, &resp)
	if v, _ := resp["value"].(map[string]any); v["error"] != CodeEnforcementFailed {
		t.Errorf("enforcement error response %s", m.Payload)
	}
	if got := count(p, monitor.Inbound, monitor.Enforced, "q", false); got != 1 {
		t.Errorf("enforced failures %d", got)
	}
	// a bad payload: mapping failure answered too
	p.Inbound(0)(client.Message{Address: "q", Payload: []byte("{"),
		Headers: map[string]string{"reply-to": "replies", "correlation-id": "k3"}})
	m = rec.next(t)
	_ = json.Unmarshal(m.Payload, &resp)
	if v, _ := resp["value"].(map[string]any); v["error"] != CodeMappingFailed {
		t.Errorf("mapping error response %s", m.Payload)
	}
	if routed != 0 {
		t.Errorf("%d signals routed", routed)
	}
	if !p.Metrics().ContainsFailures() {
		t.Error("no failures in the metrics")
	}
}

func TestBadMappingConfigurationFailsNew(t *testing.T) {
	js := `{"id":"m","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
	 "mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"incomingScript":"function ("}}},
	 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],"payloadMapping":["js"]}]}`
	c, err := model.ParseCommand([]byte(js))
	if err != nil {
		t.Skipf("rejected at parse: %v", err)
	}
	if _, err := New(c, Config{Bus: bus.NewLocal()}); err == nil {
		t.Fatal("a script that does not compile was accepted")
	}
}

func TestLiveCommandResponseGoesBackToTheRequester(t *testing.T) {
	b := bus.NewLocal()
	app, appRec := start(t, b, `{"id":"app","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
	 "sources":[{"addresses":["commands"],"authorizationContext":["a:b"]}]}`)
	dev, devRec := start(t, b, `{"id":"dev","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
	 "sources":[{"addresses":["answers"],"authorizationContext":["a:b"]}],
	 "targets":[{"address":"devices/{{ thing:id }}","topics":["_/_/things/live/commands"],"authorizationContext":["a:b"]}]}`)
	cmd := `{"topic":"org.acme/d1/things/live/commands/modify","headers":{"correlation-id":"r1"},"path":"/attributes/on","value":true}`
	app.Inbound(0)(client.Message{Address: "commands", Payload: []byte(cmd),
		Headers: map[string]string{"reply-to": "app-replies", "correlation-id": "r1"}})
	if m := devRec.next(t); m.Address != "devices/org.acme:d1" {
		t.Fatalf("command published to %s", m.Address)
	}
	resp := `{"topic":"org.acme/d1/things/live/commands/modify","headers":{"correlation-id":"r1"},"path":"/attributes/on","status":204}`
	dev.Inbound(0)(client.Message{Address: "answers", Payload: []byte(resp)})
	m := appRec.next(t)
	if m.Address != "app-replies" || m.Headers["correlation-id"] != "r1" {
		t.Fatalf("response %+v", m)
	}
	var got map[string]any
	_ = json.Unmarshal(m.Payload, &got)
	if got["status"] != float64(204) || got["topic"] != "org.acme/d1/things/live/commands/modify" {
		t.Errorf("response %s", m.Payload)
	}
	if n := count(app, monitor.Outbound, monitor.Published, monitor.ResponsesAddress, true); n != 1 {
		t.Errorf("responses published %d", n)
	}
	// a second response to the same request, or one nobody asked for, goes nowhere
	dev.Inbound(0)(client.Message{Address: "answers", Payload: []byte(resp)})
	appRec.none(t)
	if n := count(dev, monitor.Inbound, monitor.Dropped, "answers", true); n != 1 {
		t.Errorf("unrequested response dropped %d", n)
	}
}
