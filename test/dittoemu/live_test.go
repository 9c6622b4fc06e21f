package dittoemu

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func TestLiveMessagesAndCommands(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:device", true, false)
	e.Grant(thingID, "pre:app", true, true)
	dev := dial(t, e, "pre:device", "conn-dev")
	dev.subscribe("START-SEND-MESSAGES?extraFields=attributes")
	dev.subscribe("START-SEND-LIVE-COMMANDS")
	e.Apply("pre:app", msg(thingTopic+"create", "/", `{"attributes":{"k":1}}`, "correlation-id", "c0"))

	// SendLive: the device answers, the answer goes back to the requester
	done := make(chan *protocol.Message, 1)
	go func() {
		a, err := e.SendLive("pre:app", msg("org.acme/t1/things/live/messages/ping", "/inbox/messages/ping", `"hi"`,
			"correlation-id", "l1", "content-type", "text/plain"), 5*time.Second)
		if err != nil {
			t.Error(err)
		}
		done <- a
	}()
	m := dev.readMsg()
	expect(t, m, "org.acme/t1/things/live/messages/ping", 0)
	jsonEq(t, m.Extra, `{"attributes":{"k":1}}`)
	if m.Headers["correlation-id"] != "l1" || m.Headers["ditto-originator"] != "pre:app" {
		t.Errorf("delivered: %s", encode(m))
	}
	resp := msg("org.acme/t1/things/live/messages/ping", "/inbox/messages/ping", `"pong"`, "correlation-id", "l1", "content-type", "text/plain")
	resp.Status = 200
	dev.sendMsg(resp)
	a := <-done
	if a == nil || a.Status != 200 || string(a.Value) != `"pong"` || a.Headers["correlation-id"] != "l1" {
		t.Fatalf("answer %v", a)
	}

	// a live command from a session goes to the device, its response back to the session
	app := dial(t, e, "pre:app", "conn-app")
	app.sendMsg(msg("org.acme/t1/things/live/commands/modify", "/attributes/k", `2`, "correlation-id", "lc1"))
	m = dev.readMsg()
	expect(t, m, "org.acme/t1/things/live/commands/modify", 0)
	r := msg("org.acme/t1/things/live/commands/modify", "/attributes/k", "", "correlation-id", "lc1")
	r.Status = 204
	dev.sendMsg(r)
	expect(t, app.readMsg(), "org.acme/t1/things/live/commands/modify", 204)

	// no answer in time: 408
	app.sendMsg(msg("org.acme/t1/things/live/messages/slow", "/inbox/messages/slow", `1`, "correlation-id", "lc2", "timeout", "200ms"))
	dev.readMsg()
	m = app.readMsg()
	expect(t, m, "org.acme/t1/things/live/errors", 408)
	if errorCode(t, m) != "acknowledgement:request.timeout" {
		t.Errorf("%s", encode(m))
	}

	// without WRITE no message may be sent
	a, err := e.SendLive("pre:device", msg("org.acme/t1/things/live/messages/x", "/inbox/messages/x", `1`), time.Second)
	if err != nil || a == nil || a.Status != 403 || errorCode(t, a) != "messages:send.notallowed" {
		t.Errorf("not allowed: %v", a)
	}
}

func TestHTTPInboxMessage(t *testing.T) {
	e := start(t, Options{})
	e.Grant(thingID, "pre:device", true, false)
	e.Grant(thingID, "pre:app", true, true)
	dev := dial(t, e, "pre:device", "conn-dev")
	dev.subscribe("START-SEND-MESSAGES")
	go func() {
		m := dev.readMsg()
		if m.Topic != "org.acme/t1/things/live/messages/hello" || string(m.Value) != `{"a":1}` {
			t.Errorf("delivered %s", encode(m))
		}
		r := msg(m.Topic, m.Path, `{"b":2}`, "correlation-id", m.Headers["correlation-id"], "content-type", "application/json")
		r.Status = 201
		dev.sendMsg(r)
	}()
	req, _ := http.NewRequest(http.MethodPost, e.HTTPURL()+"/api/2/things/org.acme:t1/inbox/messages/hello?timeout=5s", strings.NewReader(`{"a":1}`))
	req.Header.Set("x-ditto-pre-authenticated", "pre:app")
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 201 || string(b) != `{"b":2}` || resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("HTTP answer %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	// nobody answers: 408
	req, _ = http.NewRequest(http.MethodPost, e.HTTPURL()+"/api/2/things/org.acme:t1/inbox/messages/none?timeout=200ms", strings.NewReader("x"))
	req.Header.Set("x-ditto-pre-authenticated", "pre:app")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	b, _ = io.ReadAll(resp2.Body)
	if resp2.StatusCode != 408 || !strings.Contains(string(b), "acknowledgement:request.timeout") {
		t.Errorf("timeout: %d %s", resp2.StatusCode, b)
	}
}
