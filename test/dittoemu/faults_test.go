package dittoemu

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/test/poll"
)

func TestKillStopRestart(t *testing.T) {
	e := start(t, Options{})
	c := dial(t, e, "pre:a", "conn-a")
	url := e.URL()
	e.KillSessions()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil || websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("killed session: %v (want an abrupt end, no close frame)", err)
	}
	poll.Until(t, 5*time.Second, "no sessions", func() bool { return len(e.Sessions()) == 0 })
	c = dial(t, e, "pre:a", "conn-a")
	e.Stop()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.conn.ReadMessage(); err == nil {
		t.Error("session survived Stop")
	}
	if _, _, err := websocket.DefaultDialer.Dial(url, http.Header{"x-ditto-pre-authenticated": {"pre:a"}}); err == nil {
		t.Error("upgrade while stopped")
	}
	e.Restart()
	if e.URL() != url {
		t.Errorf("restarted on %s, was %s", e.URL(), url)
	}
	c = dial(t, e, "pre:a", "conn-a")
	c.subscribe("START-SEND-EVENTS")
}

func TestPingAnsweredWithPong(t *testing.T) {
	e := start(t, Options{})
	c := dial(t, e, "pre:a", "conn-a")
	pong := make(chan string, 1)
	c.conn.SetPongHandler(func(s string) error { pong <- s; return nil })
	if err := c.conn.WriteControl(websocket.PingMessage, []byte("p1"), time.Now().Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() { _, _, _ = c.conn.ReadMessage() }() // control frames are processed by reads
	select {
	case s := <-pong:
		if s != "p1" {
			t.Errorf("pong %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no pong")
	}
}

func TestAnswerDelayAndDrop(t *testing.T) {
	e := start(t, Options{})
	c := dial(t, e, "pre:a", "conn-a")
	e.DropAnswers(true)
	c.sendMsg(msg(thingTopic+"create", "/", `{}`, "correlation-id", "d1"))
	poll.Until(t, 5*time.Second, "command applied", func() bool { _, ok := e.Thing(thingID); return ok })
	e.DropAnswers(false)
	e.SetAnswerDelay(300 * time.Millisecond)
	t0 := time.Now()
	c.sendMsg(msg(thingTopic+"retrieve", "/", "", "correlation-id", "d2"))
	m := c.readMsg()
	if m.Headers["correlation-id"] != "d2" || m.Status != 200 {
		t.Fatalf("first answer %s (the dropped one must not come)", encode(m))
	}
	if time.Since(t0) < 300*time.Millisecond {
		t.Errorf("answer not delayed: %v", time.Since(t0))
	}
}

func TestOutboundQueueDropsAboveLimit(t *testing.T) {
	e := start(t, Options{QueueSize: 5})
	e.Grant(thingID, "pre:slow", true, false)
	slow := dial(t, e, "pre:slow", "conn-slow")
	slow.subscribe("START-SEND-EVENTS")
	// The session's writer stays blocked on a socket nobody reads once the
	// kernel buffers are full; big events fill them quickly.
	big := `"` + strings.Repeat("x", 64<<10) + `"`
	e.Apply("pre:a", msg(thingTopic+"create", "/", `{}`))
	poll.Until(t, 20*time.Second, "frames dropped", func() bool {
		for i := 0; i < 20; i++ {
			e.Apply("pre:a", msg(thingTopic+"modify", "/attributes/big", big, "response-required", "false"))
		}
		s := e.Sessions()
		return len(s) == 1 && s[0].Dropped > 0
	})
	// the session is still usable: it reads what was queued
	for range 3 {
		if m := slow.readMsg(); m.Topic != "org.acme/t1/things/twin/events/created" && m.Topic != "org.acme/t1/things/twin/events/modified" {
			t.Fatalf("queued frame %s", m.Topic)
		}
	}
}

func TestSchemaViolationsRecorded(t *testing.T) {
	e := Start(t, Options{})
	if !e.val.enabled() {
		t.Skip("Ditto's schemas are not available (../shared/ditto-reference/jsonschema)")
	}
	c := dial(t, e, "pre:a", "conn-a")
	// no headers (correlation-id is required by the envelope schema)
	c.send(`{"topic":"org.acme/t1/things/twin/commands/retrieve","path":"/"}`)
	m := c.readMsg()
	if m.Status != 404 {
		t.Fatalf("%s", encode(m))
	}
	v := e.Violations()
	if len(v) != 1 || !strings.HasPrefix(v[0], "received ") || !strings.Contains(v[0], "missing property 'headers'") {
		t.Errorf("violations %q", v)
	}
}
