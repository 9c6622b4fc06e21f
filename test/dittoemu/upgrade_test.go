package dittoemu

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/test/poll"
	"time"
)

func TestUpgradePreAuthenticatedHeaderAndQuery(t *testing.T) {
	e := start(t, Options{})
	dial(t, e, "pre:alice, pre:bob", "conn-1", "conn-1:ack")
	conn, _, err := websocket.DefaultDialer.Dial(e.URL()+"?x-ditto-pre-authenticated=pre:carol&declared-acks=conn-2:a,conn-2:b", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var got []SessionInfo
	poll.Until(t, 5*time.Second, "two sessions", func() bool { got = e.Sessions(); return len(got) == 2 })
	if !reflect.DeepEqual(got[0].Subjects, []string{"pre:alice", "pre:bob"}) || got[0].Origin != "conn-1" ||
		!reflect.DeepEqual(got[0].DeclaredAcks, []string{"conn-1:ack"}) {
		t.Errorf("header session: %+v", got[0])
	}
	if !reflect.DeepEqual(got[1].Subjects, []string{"pre:carol"}) || got[1].Origin == "" ||
		!reflect.DeepEqual(got[1].DeclaredAcks, []string{"conn-2:a", "conn-2:b"}) {
		t.Errorf("query session: %+v", got[1])
	}
}

func upgradeStatus(t *testing.T, e *Emulator, subjects string) (int, map[string]any) {
	t.Helper()
	h := http.Header{}
	if subjects != "" {
		h.Set("x-ditto-pre-authenticated", subjects)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(e.URL(), h)
	if err == nil {
		conn.Close()
		return 101, nil
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	if resp.Header.Get("Content-Type") != "application/json" {
		t.Errorf("content-type %q", resp.Header.Get("Content-Type"))
	}
	return resp.StatusCode, body
}

func TestUpgradeRefused(t *testing.T) {
	e := start(t, Options{})
	status, body := upgradeStatus(t, e, "")
	if status != 401 || body["error"] != "gateway:authentication.failed" || body["message"] != "No pre-authenticated subject was provided!" {
		t.Errorf("no subject: %d %v", status, body)
	}
	e.RefuseUpgrades(401)
	if status, body = upgradeStatus(t, e, "pre:a"); status != 401 || body["error"] != "gateway:authentication.failed" || body["status"] != float64(401) {
		t.Errorf("refused 401: %d %v", status, body)
	}
	e.RefuseUpgrades(403)
	if status, body = upgradeStatus(t, e, "pre:a"); status != 403 || body["error"] != "gateway:namespace.notaccessible" {
		t.Errorf("refused 403: %d %v", status, body)
	}
	e.RefuseUpgrades(0)
	if status, _ = upgradeStatus(t, e, "pre:a"); status != 101 {
		t.Errorf("accepted again: %d", status)
	}
}

func TestUpgradeJWT(t *testing.T) {
	e := start(t, Options{JWT: func(tok string) (string, bool) { return "idp:" + tok, tok == "good" }})
	h := http.Header{"Authorization": {"Bearer good"}}
	conn, _, err := websocket.DefaultDialer.Dial(e.URL(), h)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if status, body := upgradeStatus(t, e, "pre:a"); status != 401 || body["message"] != "Unauthorized." {
		t.Errorf("pre-auth with JWT only: %d %v", status, body)
	}
	_, resp, err := websocket.DefaultDialer.Dial(e.URL(), http.Header{"Authorization": {"Bearer bad"}})
	if err == nil || resp.StatusCode != 401 {
		t.Errorf("bad token: %v %v", err, resp)
	}
}

func TestControlMessages(t *testing.T) {
	e := start(t, Options{})
	c := dial(t, e, "pre:a", "c")
	c.subscribe("START-SEND-EVENTS?namespaces=org.a,org.b&filter=" + queryEscape("gt(attributes/counter,42)") + "&extraFields=attributes")
	c.subscribe("START-SEND-MESSAGES")
	c.subscribe("START-SEND-LIVE-COMMANDS")
	c.subscribe("START-SEND-LIVE-EVENTS?namespaces=org.c")
	c.subscribe("START-SEND-POLICY-ANNOUNCEMENTS")
	subs := e.Sessions()[0].Subscriptions
	want := []Subscription{
		{Type: "EVENTS", Namespaces: []string{"org.a", "org.b"}, Filter: "gt(attributes/counter,42)", ExtraFields: "attributes"},
		{Type: "MESSAGES"}, {Type: "LIVE_COMMANDS"}, {Type: "LIVE_EVENTS", Namespaces: []string{"org.c"}}, {Type: "POLICY_ANNOUNCEMENTS"},
	}
	if !reflect.DeepEqual(subs, want) {
		t.Fatalf("subscriptions %+v", subs)
	}
	// a second START of the same type replaces the first
	c.subscribe("START-SEND-EVENTS?namespaces=org.z")
	if got := e.Sessions()[0].Subscriptions[0]; !reflect.DeepEqual(got, Subscription{Type: "EVENTS", Namespaces: []string{"org.z"}}) {
		t.Errorf("replaced: %+v", got)
	}
	c.subscribe("STOP-SEND-MESSAGES")
	if n := len(e.Sessions()[0].Subscriptions); n != 4 {
		t.Errorf("after STOP: %d subscriptions", n)
	}
	// an invalid filter: Ditto's error, no :ACK, the old subscription stays
	c.send("START-SEND-EVENTS?filter=" + queryEscape("gt(attributes/x"))
	m := c.readMsg()
	expect(t, m, "_/_/things/twin/errors", 400)
	if code := errorCode(t, m); code != "rql.expression.invalid" || m.Headers["correlation-id"] != "c" {
		t.Errorf("invalid filter: %s", encode(m))
	}
	if got := e.Sessions()[0].Subscriptions[0].Namespaces; !reflect.DeepEqual(got, []string{"org.z"}) {
		t.Errorf("kept: %v", got)
	}
}

func TestDeclaredAckLabelUniqueAcrossSessions(t *testing.T) {
	e := start(t, Options{})
	a := dial(t, e, "pre:a", "conn-a", "conn-a:ack")
	b := dial(t, e, "pre:b", "conn-b", "conn-a:ack")
	m := b.readMsg()
	expect(t, m, "_/_/things/twin/errors", 409)
	if code := errorCode(t, m); code != "acknowledgement:label.not.unique" {
		t.Errorf("code %s", code)
	}
	_ = b.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := b.conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("second declarer not closed: %v", err)
	}
	a.conn.Close()
	poll.Until(t, 5*time.Second, "label released", func() bool { return len(e.Sessions()) == 0 })
	c := dial(t, e, "pre:c", "conn-c", "conn-a:ack")
	c.subscribe("START-SEND-EVENTS")
	if got := e.Sessions()[0].DeclaredAcks; !reflect.DeepEqual(got, []string{"conn-a:ack"}) {
		t.Errorf("declared %v", got)
	}
}
