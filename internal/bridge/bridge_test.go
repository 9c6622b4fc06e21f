package bridge

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

func cmd(cid string, headers ...string) *protocol.Message {
	h := map[string]string{"correlation-id": cid}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	return &protocol.Message{Topic: "org.acme/dev-1/things/twin/commands/modify", Headers: h,
		Path: "/attributes/x", Value: json.RawMessage(`1`)}
}

func reply(to *protocol.Message, status int, value string) *protocol.Message {
	return &protocol.Message{Topic: to.Topic, Headers: map[string]string{"correlation-id": to.Headers["correlation-id"]},
		Path: to.Path, Status: status, Value: json.RawMessage(value)}
}

func TestUpgradeHeadersPreAuthenticated(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"nginx:alice", "google:bob"}, []string{"conn-1:my-ack"}, nil, func(Delivery) {})
	c := p.next()
	for k, want := range map[string]string{"X-Ditto-Pre-Authenticated": "nginx:alice,google:bob",
		"X-Correlation-Id": "conn-1", "Declared-Acks": `["conn-1:my-ack"]`, "Authorization": ""} {
		if got := c.hdr.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// a target without subscriptions is ready once its socket is up
	poll.Until(t, wait, "ready", l.Ready)
	st := l.Status()
	if len(st) != 1 || st[0].Type != "client" || st[0].Status != client.StatusOpen || st[0].RecoveryStatus != client.RecoverySucceeded ||
		st[0].Details != "ditto session [nginx:alice,google:bob] "+p.url()+": open" || st[0].Address != "nginx:alice,google:bob" {
		t.Fatalf("status %+v", st)
	}
}

func TestSubscriptionsAwaitAckAndReady(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	ns := []string{"org.acme", "org.other"}
	filter := `and(eq(attributes/kind,"a b&c"),gt(attributes/n,1))`
	l.Target([]string{"pre:x"}, nil, []Subscription{
		{Stream: model.TopicTwinEvents, Namespaces: ns, Filter: filter, ExtraFields: "attributes/kind,features"},
		{Stream: model.TopicLiveEvents, Namespaces: ns, Filter: filter},
		{Stream: model.TopicLiveMessages, Namespaces: ns, Filter: filter, ExtraFields: "attributes"},
		{Stream: model.TopicLiveCommands, Filter: filter},
		{Stream: model.TopicPolicyAnnouncements, Namespaces: ns, Filter: filter, ExtraFields: "attributes"},
	}, func(Delivery) {})
	c := p.next()
	var got []string
	for range 5 {
		got = append(got, c.recv(t))
	}
	slices.Sort(got)
	encNS := "namespaces=org.acme%2Corg.other"
	encFilter := "filter=and%28eq%28attributes%2Fkind%2C%22a+b%26c%22%29%2Cgt%28attributes%2Fn%2C1%29%29"
	want := []string{
		"START-SEND-EVENTS?" + encNS + "&" + encFilter + "&extraFields=attributes%2Fkind%2Cfeatures",
		"START-SEND-LIVE-COMMANDS",
		"START-SEND-LIVE-EVENTS?" + encNS + "&" + encFilter,
		"START-SEND-MESSAGES?" + encNS + "&extraFields=attributes",
		"START-SEND-POLICY-ANNOUNCEMENTS?" + encNS,
	}
	if !slices.Equal(got, want) {
		t.Fatalf("control messages\n got %q\nwant %q", got, want)
	}
	for i, ack := range []string{"START-SEND-EVENTS:ACK", "START-SEND-LIVE-EVENTS:ACK", "START-SEND-MESSAGES:ACK",
		"START-SEND-LIVE-COMMANDS:ACK", "START-SEND-POLICY-ANNOUNCEMENTS:ACK"} {
		if l.Ready() {
			t.Fatalf("ready after %d of 5 acks", i)
		}
		if i == 4 {
			st := l.Status()[0]
			if st.Status != client.StatusUnknown || !strings.HasSuffix(st.Details, ": connected, awaiting START-SEND-POLICY-ANNOUNCEMENTS:ACK") {
				t.Fatalf("status before the last ack: %+v", st)
			}
		}
		c.send(ack)
		poll.Until(t, wait, ack+" taken", func() bool { return !strings.Contains(l.Status()[0].Details, ack) })
	}
	poll.Until(t, wait, "ready after every :ACK", l.Ready)
}

func TestSubscriptionsResentAfterReconnect(t *testing.T) {
	p := newPeer(t)
	p.autoAck.Store(true)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicTwinEvents, Namespaces: []string{"org.acme"}}}, func(Delivery) {})
	c1 := p.next()
	if got := c1.recv(t); got != "START-SEND-EVENTS?namespaces=org.acme" {
		t.Fatalf("first socket: %q", got)
	}
	poll.Until(t, wait, "ready", l.Ready)
	p.autoAck.Store(false)
	c1.ws.Close()
	c2 := p.next()
	if got := c2.recv(t); got != "START-SEND-EVENTS?namespaces=org.acme" {
		t.Fatalf("second socket: %q", got)
	}
	poll.Until(t, wait, "not ready before the new :ACK", func() bool { return !l.Ready() })
	c2.send("START-SEND-EVENTS:ACK")
	poll.Until(t, wait, "ready again", l.Ready)
	if s := l.Stats(); s.Reconnects != 1 || s.Sessions != 1 || s.SessionsOpen != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSubscriptionRefusedByDittoIsMisconfigured(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicTwinEvents, Filter: "eq(foo"}}, func(Delivery) {})
	c := p.next()
	c.recv(t)
	c.sendMsg(&protocol.Message{Topic: "_/_/things/twin/errors", Headers: map[string]string{"correlation-id": "conn-1"},
		Path: "/", Status: 400, Value: json.RawMessage(`{"status":400,"error":"rql.expression.invalid","message":"The RQL expression is invalid."}`)})
	poll.Until(t, wait, "misconfigured", func() bool { return l.Status()[0].Status == client.StatusMisconfigured })
	if d := l.Status()[0].Details; !strings.HasSuffix(d, ": misconfigured (Ditto refused: 400 rql.expression.invalid: The RQL expression is invalid.)") {
		t.Fatalf("details %q", d)
	}
	if l.Ready() {
		t.Fatal("ready with a refused subscription")
	}
}

// The error Ditto sends before it closes a session itself (an expired or
// refused token) is no refusal: the session stays what it is and
// reconnects when the socket closes.
func TestSessionEndedByDittoIsNoRefusal(t *testing.T) {
	p := newPeer(t)
	p.autoAck.Store(true)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	got := make(chan Delivery, 1)
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicTwinEvents}}, func(d Delivery) { got <- d })
	c := p.next()
	poll.Until(t, wait, "ready", l.Ready)
	c.sendMsg(&protocol.Message{Topic: "_/_/things/twin/errors", Headers: map[string]string{"correlation-id": "conn-1"},
		Path: "/", Status: 401, Value: json.RawMessage(`{"status":401,"error":"gateway:websocket.session.expired","message":"The session expired."}`)})
	// one reader reads the socket in order: once the event after the error
	// is delivered, the error has been read
	c.sendMsg(&protocol.Message{Topic: "org.acme/dev-1/things/twin/events/modified", Headers: map[string]string{"correlation-id": "e1"},
		Path: "/attributes/a", Value: json.RawMessage(`1`), Revision: 2})
	select {
	case <-got:
	case <-time.After(wait):
		t.Fatal("the event after the error was not delivered")
	}
	if st := l.Status()[0]; st.Status != client.StatusOpen || !l.Ready() {
		t.Fatalf("the session's end was taken for a refusal: %+v", st)
	}
}

func TestUnknownStreamIsMisconfigured(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicConnectionAnnouncements}}, func(Delivery) {})
	p.next()
	poll.Until(t, wait, "status", func() bool { return len(l.Status()) == 1 && l.Status()[0].Status == client.StatusMisconfigured })
	if l.Ready() {
		t.Fatal("ready")
	}
}

func TestDeliveryAndReplyOnTheDeliveringSocket(t *testing.T) {
	p := newPeer(t)
	p.autoAck.Store(true)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	got := make(chan Delivery, 4)
	l.Target([]string{"pre:x"}, []string{"conn-1:ack"}, []Subscription{{Stream: model.TopicLiveMessages}}, func(d Delivery) { got <- d })
	c := p.next()
	poll.Until(t, wait, "ready", l.Ready)
	// a twin event is no subscribed stream: not delivered
	c.sendMsg(&protocol.Message{Topic: "org.acme/dev-1/things/twin/events/modified", Headers: map[string]string{"correlation-id": "e1"},
		Path: "/attributes/x", Value: json.RawMessage(`1`), Revision: 2})
	msg := &protocol.Message{Topic: "org.acme/dev-1/things/live/messages/hello",
		Headers: map[string]string{"correlation-id": "m1#3", "requested-acks": `["conn-1:ack"]`}, Path: "/inbox/messages/hello",
		Value: json.RawMessage(`"hi"`)}
	c.sendMsg(msg)
	var d Delivery
	select {
	case d = <-got:
	case <-time.After(wait):
		t.Fatal("no delivery")
	}
	if d.Stream != model.TopicLiveMessages || d.Message.Topic != msg.Topic || d.Message.Headers["correlation-id"] != "m1#3" {
		t.Fatalf("delivery %+v %s", d, protocol.Encode(d.Message))
	}
	d.Reply(&protocol.Message{Topic: "org.acme/dev-1/things/twin/acks/conn-1:ack", Headers: map[string]string{"correlation-id": "m1"},
		Path: "/", Status: 200})
	back := c.recvMsg(t)
	if back.Topic != "org.acme/dev-1/things/twin/acks/conn-1:ack" || back.Headers["correlation-id"] != "m1#3" || back.Status != 200 {
		t.Fatalf("reply %s", protocol.Encode(back))
	}
	select {
	case d := <-got:
		t.Fatalf("second delivery %s", protocol.Encode(d.Message))
	default:
	}
}

func TestSendAnswered(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	a := newAnswers()
	go l.Send([]string{"pre:dev"}, cmd("c1"), a.fn)
	c := p.next()
	if c.hdr.Get("X-Ditto-Pre-Authenticated") != "pre:dev" || c.hdr.Get("X-Correlation-Id") != "conn-1" {
		t.Fatalf("command session headers %v", c.hdr)
	}
	in := c.recvMsg(t)
	if in.Headers["correlation-id"] != "c1" || in.Topic != "org.acme/dev-1/things/twin/commands/modify" {
		t.Fatalf("sent %s", protocol.Encode(in))
	}
	poll.Until(t, wait, "in flight", func() bool { return l.Stats().InFlight == 1 })
	c.sendMsg(reply(in, 204, ""))
	ans := a.next(t)
	if ans.Status != 204 || ans.Headers["correlation-id"] != "c1" {
		t.Fatalf("answer %s", protocol.Encode(ans))
	}
	if s := l.Stats(); s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestSendTimeoutIs408(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	a := newAnswers()
	start := time.Now()
	go l.Send([]string{"pre:dev"}, cmd("c1", "timeout", "200ms", "response-required", "true"), a.fn)
	c := p.next()
	c.recvMsg(t) // and never answer
	ans := a.next(t)
	if el := time.Since(start); el < 200*time.Millisecond+answerGrace {
		t.Fatalf("408 after %v", el)
	}
	want := `{"topic":"org.acme/dev-1/things/twin/errors","headers":{"content-type":"application/json","correlation-id":"c1","response-required":true,"timeout":"200ms"},"path":"/","value":{"status":408,"error":"command.timeout","message":"The Command reached the specified timeout of 200ms.","description":"Try increasing the command timeout."},"status":408}`
	if got := string(protocol.Encode(ans)); got != want {
		t.Fatalf("answer\n got %s\nwant %s", got, want)
	}
	if s := l.Stats(); s.Timeouts != 1 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
	// a late answer from Ditto goes nowhere
	c.sendMsg(reply(cmd("c1"), 204, ""))
	a.none(t, 100*time.Millisecond)
}

func TestTimeoutMessageGroupsThousands(t *testing.T) {
	if got := ditto.CommandTimeout((60 * time.Second).Milliseconds()).Message; got != "The Command reached the specified timeout of 60,000ms." {
		t.Fatal(got)
	}
}

func TestDroppedSessionFailsPendingWith503(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	a := newAnswers()
	live := &protocol.Message{Topic: "org.acme/dev-1/things/live/messages/ask", Headers: map[string]string{"correlation-id": "q1"},
		Path: "/inbox/messages/ask"}
	go l.Send([]string{"pre:dev"}, live, a.fn)
	c := p.next()
	c.recvMsg(t)
	c.ws.Close()
	ans := a.next(t)
	want := `{"topic":"org.acme/dev-1/things/live/errors","headers":{"content-type":"application/json","correlation-id":"q1"},"path":"/","value":{"status":503,"error":"gateway:service.unavailable","message":"The service you wanted to reach is currently not available.","description":"Please contact the service team if this happens again."},"status":503}`
	if got := string(protocol.Encode(ans)); got != want {
		t.Fatalf("answer\n got %s\nwant %s", got, want)
	}
	p.next() // and it reconnects
}

func TestCorrelationIDCollisionSuffixedAndRestored(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	a1, a2 := newAnswers(), newAnswers()
	go l.Send([]string{"pre:dev"}, cmd("dup", "requested-acks", `["twin-persisted","conn-1:x"]`), a1.fn)
	c := p.next()
	first := c.recvMsg(t)
	go l.Send([]string{"pre:dev"}, cmd("dup"), a2.fn)
	second := c.recvMsg(t)
	if first.Headers["correlation-id"] != "dup" || !strings.HasPrefix(second.Headers["correlation-id"], "dup_dittoconn-") {
		t.Fatalf("wire ids %q %q", first.Headers["correlation-id"], second.Headers["correlation-id"])
	}
	wire := second.Headers["correlation-id"]
	acks := &protocol.Message{Topic: "org.acme/dev-1/things/twin/acks", Headers: map[string]string{"correlation-id": wire},
		Path: "/", Status: 424, Value: json.RawMessage(`{"twin-persisted":{"status":204,"headers":{"correlation-id":"` + wire + `"}},"conn-1:x":{"status":408,"headers":{"correlation-id":"` + wire + `"}}}`)}
	c.sendMsg(acks)
	ans2 := a2.next(t)
	if ans2.Headers["correlation-id"] != "dup" || strings.Contains(string(ans2.Value), "dittoconn") ||
		string(ans2.Value) != `{"twin-persisted":{"status":204,"headers":{"correlation-id":"dup"}},"conn-1:x":{"status":408,"headers":{"correlation-id":"dup"}}}` {
		t.Fatalf("answer 2 %s", protocol.Encode(ans2))
	}
	a1.none(t, 50*time.Millisecond)
	c.sendMsg(reply(first, 204, ""))
	if ans1 := a1.next(t); ans1.Headers["correlation-id"] != "dup" || ans1.Status != 204 {
		t.Fatalf("answer 1 %s", protocol.Encode(ans1))
	}
}

func TestMaxInFlightWaitsThen503(t *testing.T) {
	p := newPeer(t)
	cfg := testConfig(p)
	cfg.MaxInFlight = 1
	l := Open(cfg, "conn-1")
	defer l.Close()
	a1, a2, a3 := newAnswers(), newAnswers(), newAnswers()
	go l.Send([]string{"pre:dev"}, cmd("c1"), a1.fn)
	c := p.next()
	in1 := c.recvMsg(t)
	// no room: the second waits, and gets 503 when its timeout passes first
	start := time.Now()
	l.Send([]string{"pre:dev"}, cmd("c2", "timeout", "150ms"), a2.fn)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Fatalf("Send returned after %v", el)
	}
	if ans := a2.next(t); ans.Status != 503 || ans.Headers["correlation-id"] != "c2" {
		t.Fatalf("answer 2 %s", protocol.Encode(ans))
	}
	// a third waits until the first is answered, then goes out
	done := make(chan struct{})
	go func() { l.Send([]string{"pre:dev"}, cmd("c3"), a3.fn); close(done) }()
	select {
	case <-done:
		t.Fatal("Send did not wait for room")
	case <-time.After(50 * time.Millisecond):
	}
	c.sendMsg(reply(in1, 204, ""))
	a1.next(t)
	if in3 := c.recvMsg(t); in3.Headers["correlation-id"] != "c3" {
		t.Fatalf("third %s", protocol.Encode(in3))
	}
	<-done
}

func TestFireAndForget(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	a := newAnswers()
	go l.Send([]string{"pre:dev"}, cmd("f1", "response-required", "false"), a.fn)
	c := p.next()
	if in := c.recvMsg(t); in.Headers["correlation-id"] != "f1" {
		t.Fatalf("sent %s", protocol.Encode(in))
	}
	if ans := a.next(t); ans != nil {
		t.Fatalf("answer %s", protocol.Encode(ans))
	}
	if s := l.Stats(); s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
	// Ditto down: a signal that waits for nothing fails at once with 503
	p.refuse.Store(http.StatusBadGateway)
	c.ws.Close()
	poll.Until(t, wait, "failed", func() bool {
		st := l.Status()[0]
		return st.Status == client.StatusFailed && strings.HasSuffix(st.Details, ": failed (upgrade refused with 502); reconnecting")
	})
	start := time.Now()
	l.Send([]string{"pre:dev"}, cmd("f2", "response-required", "false"), a.fn)
	if ans := a.next(t); ans.Status != 503 || time.Since(start) > time.Second {
		t.Fatalf("answer %s after %v", protocol.Encode(ans), time.Since(start))
	}
}

func TestUpgradeRefused401IsMisconfiguredAndRetried(t *testing.T) {
	p := newPeer(t)
	p.refuse.Store(http.StatusUnauthorized)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	poll.Until(t, wait, "misconfigured", func() bool { return l.Status()[0].Status == client.StatusMisconfigured })
	st := l.Status()[0]
	if st.Details != "ditto session [pre:x] "+p.url()+": misconfigured (401 on the upgrade); retrying" ||
		st.RecoveryStatus != client.RecoveryOngoing {
		t.Fatalf("status %+v", st)
	}
	n := p.upgrades.Load()
	poll.Until(t, wait, "retried", func() bool { return p.upgrades.Load() > n })
	p.refuse.Store(0)
	p.next()
	poll.Until(t, wait, "open", l.Ready)
}

func TestMissedPongsEndTheSession(t *testing.T) {
	p := newPeer(t)
	p.noPong.Store(true)
	cfg := testConfig(p)
	cfg.PingInterval = 30 * time.Millisecond
	l := Open(cfg, "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	c1 := p.next()
	start := time.Now()
	c1.waitGone(t)
	if el := time.Since(start); el < 2*cfg.PingInterval {
		t.Fatalf("closed after %v", el)
	}
	p.noPong.Store(false)
	p.next()
	poll.Until(t, wait, "reconnected", func() bool { return l.Stats().Reconnects >= 1 && l.Ready() })
}

func TestPongsKeepTheSession(t *testing.T) {
	p := newPeer(t)
	cfg := testConfig(p)
	cfg.PingInterval = 10 * time.Millisecond
	l := Open(cfg, "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	p.next()
	p.none(200 * time.Millisecond) // twenty pings answered: no new socket
}

func TestJWTBearerAndInSessionRefresh(t *testing.T) {
	p := newPeer(t)
	cfg := testConfig(p)
	cfg.Auth = AuthJWT
	var n atomic.Int32
	cfg.Token = func(ctx context.Context) (string, time.Time, error) {
		if _, ok := ctx.Deadline(); !ok {
			t.Error("token fetched without a deadline")
		}
		i := n.Add(1)
		return "tok" + string(rune('0'+i)), time.Now().Add(200 * time.Millisecond), nil
	}
	l := Open(cfg, "conn-1")
	defer l.Close()
	l.Target([]string{"ignored:in-jwt-mode"}, nil, nil, func(Delivery) {})
	c := p.next()
	if got := c.hdr.Get("Authorization"); got != "Bearer tok1" || c.hdr.Get("X-Ditto-Pre-Authenticated") != "" {
		t.Fatalf("headers %v", c.hdr)
	}
	if got := c.recv(t); got != "JWT-TOKEN?jwtToken=tok2" {
		t.Fatalf("refresh %q", got)
	}
	if got := c.recv(t); got != "JWT-TOKEN?jwtToken=tok3" {
		t.Fatalf("second refresh %q", got)
	}
}

func TestCommandSessionsPoolLRUAndTargetReuse(t *testing.T) {
	p := newPeer(t)
	cfg := testConfig(p)
	cfg.CommandSessions = 2
	l := Open(cfg, "conn-1")
	defer l.Close()
	l.Target([]string{"pre:target"}, nil, nil, func(Delivery) {})
	tc := p.next()
	// the target's subjects: its session carries the command
	l.Send([]string{"pre:target"}, cmd("t1", "response-required", "false"), nil)
	if in := tc.recvMsg(t); in.Headers["correlation-id"] != "t1" {
		t.Fatalf("on target session: %s", protocol.Encode(in))
	}
	conns := map[string]*peerConn{}
	for _, sub := range []string{"pre:a", "pre:b", "pre:a", "pre:c"} {
		go l.Send([]string{sub}, cmd("x", "response-required", "false"), nil)
		if _, ok := conns[sub]; ok {
			conns[sub].recvMsg(t)
			continue
		}
		c := p.next()
		if got := c.hdr.Get("X-Ditto-Pre-Authenticated"); got != sub {
			t.Fatalf("session for %s has %q", sub, got)
		}
		c.recvMsg(t)
		conns[sub] = c
	}
	// b was used least recently when c came: closed
	conns["pre:b"].waitGone(t)
	if s := l.Stats(); s.Sessions != 3 {
		t.Fatalf("stats %+v", s)
	}
	p.none(50 * time.Millisecond)
}

func TestTLSWithCAFile(t *testing.T) {
	p := newPeerWith(t, true)
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(p)
	if !strings.HasPrefix(cfg.URI, "wss://") {
		t.Fatalf("uri %s", cfg.URI)
	}
	cfg.TLSCA = ca
	l := Open(cfg, "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	p.next()
	poll.Until(t, wait, "open over TLS", l.Ready)

	// without the CA the server's certificate is unknown: failed, not open
	cfg.TLSCA = ""
	l2 := Open(cfg, "conn-2")
	defer l2.Close()
	l2.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	poll.Until(t, wait, "failed", func() bool { return l2.Status()[0].Status == client.StatusFailed })
	if d := l2.Status()[0].Details; !strings.Contains(d, "certificate") {
		t.Fatalf("details %q", d)
	}
}

func TestCloseAnswersPendingAndStops(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	a := newAnswers()
	l.Target([]string{"pre:x"}, nil, nil, func(Delivery) {})
	c := p.next()
	go l.Send([]string{"pre:x"}, cmd("c1"), a.fn)
	c.recvMsg(t)
	l.Close()
	if ans := a.next(t); ans.Status != 503 {
		t.Fatalf("answer %s", protocol.Encode(ans))
	}
	c.waitGone(t)
	if st := l.Status()[0]; st.Status != client.StatusClosed {
		t.Fatalf("status %+v", st)
	}
	l.Send([]string{"pre:x"}, cmd("c2"), a.fn)
	if ans := a.next(t); ans.Status != 503 {
		t.Fatalf("after close %s", protocol.Encode(ans))
	}
	l.Target([]string{"pre:y"}, nil, nil, func(Delivery) {}) // a no-op
	if l.Ready() {
		t.Fatal("ready after close")
	}
}

func TestDeliveryQueueDropsWhenFull(t *testing.T) {
	p := newPeer(t)
	p.autoAck.Store(true)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	release := make(chan struct{})
	var delivered atomic.Int32
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicTwinEvents}}, func(Delivery) {
		delivered.Add(1)
		<-release
	})
	c := p.next()
	poll.Until(t, wait, "ready", l.Ready)
	ev := &protocol.Message{Topic: "org.acme/dev-1/things/twin/events/modified", Path: "/attributes/x", Value: json.RawMessage(`1`)}
	c.sendMsg(ev)
	poll.Until(t, wait, "first in deliver", func() bool { return delivered.Load() == 1 })
	for range queueSize + 10 {
		c.sendMsg(ev)
	}
	// one in deliver, queueSize queued, ten dropped; the reader kept reading
	poll.Until(t, wait, "dropped", func() bool { return l.Stats().Dropped == 10 })
	close(release)
	poll.Until(t, wait, "delivered", func() bool { return delivered.Load() == queueSize+1 })
}

func TestDeclaredLabelNotUniqueIsMisconfigured(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	l.Target([]string{"pre:x"}, []string{"conn-1:taken"}, nil, func(Delivery) {})
	c := p.next()
	// Ditto's AcknowledgementLabelNotUniqueException carries no correlation-id
	c.sendMsg(&protocol.Message{Topic: "_/_/things/twin/errors", Path: "/", Status: 409,
		Value: json.RawMessage(`{"status":409,"error":"acknowledgement:label.not.unique","message":"Acknowledgement label is not unique."}`)})
	poll.Until(t, wait, "misconfigured", func() bool {
		return strings.HasSuffix(l.Status()[0].Details, ": misconfigured (Ditto refused: 409 acknowledgement:label.not.unique: Acknowledgement label is not unique.)")
	})
	if l.Ready() {
		t.Fatal("ready")
	}
}

func TestMissingAckRedials(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	l.ackTimeout = 100 * time.Millisecond
	defer l.Close()
	l.Target([]string{"pre:x"}, nil, []Subscription{{Stream: model.TopicTwinEvents}}, func(Delivery) {})
	c1 := p.next()
	c1.recv(t) // START-SEND-EVENTS, never confirmed
	c1.waitGone(t)
	c2 := p.next()
	if got := c2.recv(t); got != "START-SEND-EVENTS" {
		t.Fatalf("%q", got)
	}
	c2.send("START-SEND-EVENTS:ACK")
	poll.Until(t, wait, "ready", l.Ready)
	p.none(300 * time.Millisecond) // confirmed: the timer does not close it
}

// Ditto's answers reach their commands on the session's reader, in the
// order they arrived on the socket.
func TestAnswersInSocketOrder(t *testing.T) {
	p := newPeer(t)
	l := Open(testConfig(p), "conn-1")
	defer l.Close()
	var mu sync.Mutex
	var order []string
	answered := make(chan struct{}, 8)
	fn := func(m *protocol.Message) {
		mu.Lock()
		order = append(order, m.Headers["correlation-id"])
		mu.Unlock()
		answered <- struct{}{}
	}
	var c *peerConn
	var in []*protocol.Message
	for i := range 5 {
		go l.Send([]string{"pre:dev"}, cmd(fmt.Sprintf("c%d", i)), fn)
		if c == nil {
			c = p.next()
		}
		in = append(in, c.recvMsg(t))
	}
	for i := len(in) - 1; i >= 0; i-- {
		c.sendMsg(reply(in[i], 204, ""))
	}
	for range in {
		select {
		case <-answered:
		case <-time.After(wait):
			t.Fatal("not every command answered")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got := strings.Join(order, ","); got != "c4,c3,c2,c1,c0" {
		t.Fatalf("answers in the order %s, want c4,c3,c2,c1,c0", got)
	}
}
