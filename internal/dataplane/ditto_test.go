package dataplane

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// fakeLink is a DittoLink that records what the plane sends and lets the
// test answer and deliver as Ditto's gateway would.
type fakeLink struct {
	mu      sync.Mutex
	targets []fakeTarget
	sent    chan sentUp
	closed  bool
}

type fakeTarget struct {
	subjects, declared []string
	subs               []bridge.Subscription
	deliver            func(bridge.Delivery)
}

type sentUp struct {
	subjects []string
	msg      *protocol.Message
	answer   func(*protocol.Message)
}

func newFakeLink() *fakeLink { return &fakeLink{sent: make(chan sentUp, 100)} }

func (f *fakeLink) Target(subjects, declared []string, subs []bridge.Subscription, deliver func(bridge.Delivery)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, fakeTarget{subjects, declared, subs, deliver})
}

func (f *fakeLink) Send(subjects []string, msg *protocol.Message, answer func(*protocol.Message)) {
	f.sent <- sentUp{subjects, msg, answer}
}

func (f *fakeLink) Status() []client.ResourceStatus { return nil }

func (f *fakeLink) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
}

func (f *fakeLink) next(t *testing.T) sentUp {
	t.Helper()
	select {
	case s := <-f.sent:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("nothing sent up to Ditto")
		return sentUp{}
	}
}

func (f *fakeLink) target(t *testing.T, i int) fakeTarget {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if i >= len(f.targets) {
		t.Fatalf("%d targets subscribed at Ditto, want > %d", len(f.targets), i)
	}
	return f.targets[i]
}

// startDitto is start with the plane working next to Ditto through link.
func startDitto(t *testing.T, b bus.Bus, js string, link *fakeLink) (*Plane, *recorder) {
	t.Helper()
	return startConfig(t, js, Config{Bus: b, Ditto: func(string) DittoLink { return link }})
}

// device consumes twin commands requesting twin-persisted, answering on
// its reply target; its target receives twin events and live messages of
// org.acme (the live messages filtered here, Ditto's WebSocket takes no
// filter for them) and issues dev:ack.
const bridgedConn = `{"id":"dev","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["integration:dev"],
   "acknowledgementRequests":{"includes":["twin-persisted"]},
   "replyTarget":{"enabled":true,"address":"replies","expectedResponseTypes":["response","error","nack"]}}],
 "targets":[{"address":"out/{{ thing:id }}","authorizationContext":["integration:reader"],
   "issuedAcknowledgementLabel":"{{connection:id}}:ack",
   "topics":["_/_/things/twin/events?namespaces=org.acme&filter=eq(attributes/on,true)&extraFields=attributes/on",
     "_/_/things/live/messages?namespaces=org.acme&filter=eq(attributes/on,true)"]}]}`

const modifyAttribute = `{"topic":"org.acme/lamp/things/twin/commands/modify","headers":{"correlation-id":"m-1",
 "ditto-auth-context":"forged","timeout":"5s"},"path":"/attributes/on","value":true}`

// A twin command a source consumes goes up to Ditto under the source's
// context, requesting twin-persisted with a response; Ditto's answer goes
// to the reply target and settles the message on its status.
func TestDittoBridgeTwinCommandGoesUpAndSettlesOnTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		want   client.Outcome
	}{
		{"persisted", 204, client.Accept},
		{"precondition failed counts as success", 412, client.Accept},
		{"ditto unavailable", 503, client.Redeliver},
		{"timed out", 408, client.Redeliver},
		{"forbidden", 403, client.Reject},
	} {
		t.Run(tc.name, func(t *testing.T) {
			link := newFakeLink()
			p, rec := startDitto(t, bus.NewLocal(), bridgedConn, link)
			s := make(settled, 2)
			p.Inbound(0)(s.msg("in", []byte(modifyAttribute)))
			up := link.next(t)
			if strings.Join(up.subjects, ",") != "integration:dev" {
				t.Errorf("sent under %v, want the source's context", up.subjects)
			}
			h := up.msg.Headers
			if h["requested-acks"] != `["twin-persisted"]` || h["response-required"] != "true" || h["correlation-id"] != "m-1" {
				t.Errorf("headers sent up %v", h)
			}
			if _, ok := h["ditto-auth-context"]; ok {
				t.Errorf("dittoconn's internal auth header went up: %v", h)
			}
			if up.msg.Topic != "org.acme/lamp/things/twin/commands/modify" || up.msg.Path != "/attributes/on" {
				t.Errorf("sent %+v", up.msg)
			}
			if up.answer == nil {
				t.Fatal("no answer awaited for a command requesting twin-persisted")
			}
			select {
			case o := <-s:
				t.Fatalf("settled %v before Ditto answered", o)
			case <-time.After(50 * time.Millisecond):
			}
			topic := "org.acme/lamp/things/twin/commands/modify"
			if tc.status >= 400 {
				topic = "org.acme/lamp/things/twin/errors"
			}
			up.answer(&protocol.Message{Topic: topic, Path: "/attributes/on", Status: tc.status,
				Headers: map[string]string{"correlation-id": "m-1"}})
			if got := s.wait(t, 5*time.Second); got != tc.want {
				t.Errorf("settled %v, want %v", got, tc.want)
			}
			if tc.status != 412 {
				r := decode(t, rec.next(t))
				if r.Status != tc.status || r.Headers["correlation-id"] != "m-1" {
					t.Errorf("reply %+v", r)
				}
			}
		})
	}
}

// With the bridge on nothing a source consumes travels on the local bus:
// Ditto delivers it back to every subscriber, enforced.
func TestDittoBridgeSignalsDoNotTravelOnTheLocalBus(t *testing.T) {
	b := bus.NewLocal()
	link := newFakeLink()
	p, _ := startDitto(t, b, bridgedConn, link)
	_, other := start(t, b, `{"id":"other","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"o","authorizationContext":["integration:dev"],"topics":["_/_/things/live/messages"]}]}`)
	s := make(settled, 2)
	p.Inbound(0)(s.msg("in", liveMessage("org.acme", "hi")))
	up := link.next(t)
	if up.msg.Topic != "org.acme/dev/things/live/messages/hi" {
		t.Fatalf("sent %+v", up.msg)
	}
	other.none(t)
}

// Each target subscribes under its own context with its label; what
// Ditto delivers is published, the issued acknowledgement and the weak
// acknowledgement of a locally filtered live message go back on the
// delivering session.
func TestDittoBridgeTargetSubscribesPublishesAndAnswersOnTheSession(t *testing.T) {
	link := newFakeLink()
	_, rec := startDitto(t, bus.NewLocal(), bridgedConn, link)
	tg := link.target(t, 0)
	if strings.Join(tg.subjects, ",") != "integration:reader" || strings.Join(tg.declared, ",") != "dev:ack" {
		t.Errorf("target subscribed as %v declaring %v", tg.subjects, tg.declared)
	}
	if len(tg.subs) != 2 || tg.subs[0].Stream != model.TopicTwinEvents || tg.subs[0].Filter != "eq(attributes/on,true)" ||
		tg.subs[0].ExtraFields != "attributes/on" || strings.Join(tg.subs[0].Namespaces, ",") != "org.acme" ||
		tg.subs[1].Stream != model.TopicLiveMessages || tg.subs[1].Filter != "" {
		t.Errorf("subscriptions %+v", tg.subs)
	}

	answers := make(chan *protocol.Message, 4)
	reply := func(m *protocol.Message) { answers <- m }
	event := &protocol.Message{Topic: "org.acme/lamp/things/twin/events/modified", Path: "/attributes/on",
		Value: []byte("true"), Revision: 3, Headers: map[string]string{"correlation-id": "e-1", "requested-acks": `["dev:ack"]`}}
	tg.deliver(bridge.Delivery{Message: event, Stream: model.TopicTwinEvents, Reply: reply})
	if m := rec.next(t); m.Address != "out/org.acme:lamp" {
		t.Errorf("published to %s", m.Address)
	}
	a := waitAnswer(t, answers)
	if a.Topic != "org.acme/lamp/things/twin/acks/dev:ack" || a.Status != 200 || a.Headers["correlation-id"] != "e-1" {
		t.Errorf("issued acknowledgement %+v", a)
	}

	off := &protocol.Message{Topic: "org.acme/lamp/things/live/messages/switch", Path: "/inbox/messages/switch",
		Extra:   []byte(`{"attributes":{"on":false}}`),
		Headers: map[string]string{"correlation-id": "l-1", "requested-acks": `["dev:ack"]`, "ditto-message-subject": "switch"}}
	tg.deliver(bridge.Delivery{Message: off, Stream: model.TopicLiveMessages, Reply: reply})
	a = waitAnswer(t, answers)
	if a.Status != 200 || a.Headers["ditto-weak-ack"] != "true" || a.Headers["correlation-id"] != "l-1" {
		t.Errorf("weak acknowledgement %+v", a)
	}
	rec.none(t)
}

// A device's live response to a live command Ditto delivered goes back on
// the session that delivered the command.
func TestDittoBridgeLiveResponseGoesBackOnTheDeliveringSession(t *testing.T) {
	const conn = `{"id":"dev","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["answers"],"authorizationContext":["integration:dev"]}],
 "targets":[{"address":"cmd","authorizationContext":["integration:dev"],"topics":["_/_/things/live/commands"]}]}`
	link := newFakeLink()
	p, rec := startDitto(t, bus.NewLocal(), conn, link)
	answers := make(chan *protocol.Message, 2)
	cmd := &protocol.Message{Topic: "org.acme/lamp/things/live/commands/retrieve", Path: "/attributes",
		Headers: map[string]string{"correlation-id": "q-1#1", "response-required": "true"}}
	link.target(t, 0).deliver(bridge.Delivery{Message: cmd, Stream: model.TopicLiveCommands,
		Reply: func(m *protocol.Message) { answers <- m }})
	rec.next(t)
	s := make(settled, 2)
	p.Inbound(0)(s.msg("answers", []byte(`{"topic":"org.acme/lamp/things/live/commands/retrieve",
 "headers":{"correlation-id":"q-1#1"},"path":"/attributes","value":{"on":true},"status":200}`)))
	a := waitAnswer(t, answers)
	if a.Status != 200 || a.Headers["correlation-id"] != "q-1#1" || string(a.Value) != `{"on":true}` {
		t.Errorf("live response %+v", a)
	}
	if got := s.wait(t, 5*time.Second); got != client.Accept {
		t.Errorf("settled %v", got)
	}
	select {
	case up := <-link.sent:
		t.Errorf("the response also went up on a source session: %+v", up.msg)
	default:
	}
}

// A session's context is fixed when it opens: a target whose context
// holds placeholders cannot subscribe at Ditto, and says so.
func TestDittoBridgeRefusesTargetContextWithPlaceholders(t *testing.T) {
	c := parse(t, `{"id":"p","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "targets":[{"address":"o","authorizationContext":["integration:{{ header:tenant }}"],"topics":["_/_/things/twin/events"]}]}`)
	_, err := New(c, Config{Bus: bus.NewLocal(), Ditto: func(string) DittoLink { return newFakeLink() }})
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "cannot subscribe at Ditto") {
		t.Fatalf("New: %v", err)
	}
}

func waitAnswer(t *testing.T, ch chan *protocol.Message) *protocol.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no answer on the delivering session")
		return nil
	}
}

// The labels a source declares are declared by the subscribing target's
// session, and a device's acknowledgement goes back on the session that
// delivered the signal it answers.
func TestDittoBridgeDeviceAcknowledgementGoesBackOnTheDeliveringSession(t *testing.T) {
	const conn = `{"id":"dev","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["acks"],"authorizationContext":["integration:dev"],"declaredAcks":["{{connection:id}}:done"]}],
 "targets":[{"address":"cmd","authorizationContext":["integration:dev"],"issuedAcknowledgementLabel":"{{connection:id}}:sent",
   "topics":["_/_/things/live/messages"]}]}`
	link := newFakeLink()
	p, rec := startDitto(t, bus.NewLocal(), conn, link)
	tg := link.target(t, 0)
	if strings.Join(tg.declared, ",") != "dev:sent,dev:done" {
		t.Fatalf("declared %v, want the target's and the source's labels", tg.declared)
	}
	answers := make(chan *protocol.Message, 4)
	msg := &protocol.Message{Topic: "org.acme/lamp/things/live/messages/go", Path: "/inbox/messages/go",
		Headers: map[string]string{"correlation-id": "d-1#3", "requested-acks": `["dev:done"]`, "timeout": "5s"}}
	tg.deliver(bridge.Delivery{Message: msg, Stream: model.TopicLiveMessages, Reply: func(m *protocol.Message) { answers <- m }})
	rec.next(t)
	s := make(settled, 2)
	p.Inbound(0)(s.msg("acks", []byte(`{"topic":"org.acme/lamp/things/live/acks/dev:done",
 "headers":{"correlation-id":"d-1#3"},"path":"/","status":200}`)))
	a := waitAnswer(t, answers)
	if a.Topic != "org.acme/lamp/things/live/acks/dev:done" || a.Status != 200 || a.Headers["correlation-id"] != "d-1#3" {
		t.Errorf("device acknowledgement %+v", a)
	}
	if got := s.wait(t, 5*time.Second); got != client.Accept {
		t.Errorf("settled %v", got)
	}
}

// stuckClient is a broker whose publishes wait until release closes.
type stuckClient struct {
	*recorder
	release chan struct{}
}

func (c *stuckClient) Publish(ctx context.Context, m client.Message) error {
	<-c.release
	return c.recorder.Publish(ctx, m)
}

// The answer function the plane gives the link runs on the bridge's
// socket reader (bridge.Link.Send), so it returns at once even while the
// reply target's broker takes its time; the reply and the settlement
// follow once the broker is back.
func TestDittoBridgeAnswerDoesNotWaitForTheBroker(t *testing.T) {
	link := newFakeLink()
	cfg := Config{Bus: bus.NewLocal(), Ditto: func(string) DittoLink { return link },
		Logs: monitor.NewLogs(monitor.LogOptions{ConnectionID: "x"})}
	p, err := New(parse(t, bridgedConn), cfg)
	if err != nil {
		t.Fatalf("plane: %v", err)
	}
	broker := &stuckClient{recorder: newRecorder(), release: make(chan struct{})}
	p.Connected(0, broker)
	released := false
	t.Cleanup(func() {
		if !released {
			close(broker.release)
		}
		p.Close()
		p.Wait()
	})
	s := make(settled, 2)
	p.Inbound(0)(s.msg("in", []byte(modifyAttribute)))
	up := link.next(t)
	returned := make(chan struct{})
	go func() {
		up.answer(&protocol.Message{Topic: "org.acme/lamp/things/twin/commands/modify", Path: "/attributes/on",
			Status: 204, Headers: map[string]string{"correlation-id": "m-1"}})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("the answer function waits for the reply target's broker")
	}
	close(broker.release)
	released = true
	if r := decode(t, broker.next(t)); r.Status != 204 || r.Headers["correlation-id"] != "m-1" {
		t.Errorf("reply %+v", r)
	}
	if got := s.wait(t, 5*time.Second); got != client.Accept {
		t.Errorf("settled %v, want %v", got, client.Accept)
	}
}
