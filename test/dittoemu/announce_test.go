package dittoemu

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// Policy announcements reach the subscribed sessions holding an announced
// subject, within their namespaces; nobody else.
func TestAnnounceSubjectDeletion(t *testing.T) {
	e := start(t, Options{})
	owner := dial(t, e, "integration:owner", "o1")
	owner.subscribe("START-SEND-POLICY-ANNOUNCEMENTS")
	otherNS := dial(t, e, "integration:owner", "o2")
	otherNS.subscribe("START-SEND-POLICY-ANNOUNCEMENTS?namespaces=other")
	stranger := dial(t, e, "integration:stranger", "s1")
	stranger.subscribe("START-SEND-POLICY-ANNOUNCEMENTS")
	unsubscribed := dial(t, e, "integration:owner", "u1")
	unsubscribed.subscribe("START-SEND-EVENTS")

	at := time.Date(2026, 12, 6, 16, 5, 55, 0, time.UTC)
	if n := e.AnnounceSubjectDeletion("org.acme:pol", []string{"integration:owner", "integration:x"}, at); n != 1 {
		t.Fatalf("reached %d sessions, want 1", n)
	}
	m := owner.readMsg()
	if m.Topic != "org.acme/pol/policies/announcements/subjectDeletion" || m.Path != "/" {
		t.Errorf("topic %q path %q", m.Topic, m.Path)
	}
	if m.Headers["correlation-id"] == "" {
		t.Errorf("no correlation-id: %v", m.Headers)
	}
	jsonEq(t, m.Value, `{"deleteAt":"2026-12-06T16:05:55Z","subjectIds":["integration:owner","integration:x"]}`)
	// the others get nothing: a later frame they do get proves it
	for _, c := range []*client{otherNS, stranger, unsubscribed} {
		c.send("STOP-SEND-POLICY-ANNOUNCEMENTS")
		if got := c.read(); got != "STOP-SEND-POLICY-ANNOUNCEMENTS:ACK" {
			t.Errorf("a session outside the announcement got %s", got)
		}
	}
}

func jwtDial(t *testing.T, e *Emulator, token string) *client {
	t.Helper()
	conn, _, err := websocket.DefaultDialer.Dial(e.URL(), http.Header{"Authorization": {"Bearer " + token}, "x-correlation-id": {"jwt-session"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &client{t: t, conn: conn}
}

// jwtOptions: tokens "<subject>|<expiry unix ms>", "bad" is invalid.
func jwtOptions() Options {
	return Options{
		JWT: func(tok string) (string, bool) {
			sub, _, _ := strings.Cut(tok, "|")
			return sub, tok != "bad"
		},
		JWTExpiry: func(tok string) time.Time {
			_, ms, _ := strings.Cut(tok, "|")
			n, _ := strconv.ParseInt(ms, 10, 64)
			return time.UnixMilli(n)
		},
	}
}

func tokenFor(sub string, life time.Duration) string {
	return sub + "|" + strconv.FormatInt(time.Now().Add(life).UnixMilli(), 10)
}

func expectSessionEnd(t *testing.T, c *client, code string, status int) {
	t.Helper()
	m := c.readMsg()
	if m.Status != status || errorCode(t, m) != code || m.Headers["correlation-id"] != "jwt-session" {
		t.Errorf("got %d %s %v, want %d %s", m.Status, errorCode(t, m), m.Headers, status, code)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		t.Errorf("after the error: %v, want a close", err)
	}
}

// A refreshed token keeps the session past the first token's expiry and is
// answered with nothing; the session expires with the last token.
func TestJWTRefreshKeepsSession(t *testing.T) {
	e := start(t, jwtOptions())
	c := jwtDial(t, e, tokenFor("idp:a", 400*time.Millisecond))
	c.subscribe("START-SEND-EVENTS")
	c.send("JWT-TOKEN?jwtToken=" + queryEscape(tokenFor("idp:a", 1200*time.Millisecond)))
	// nothing answers the refresh: the next frame is the ACK of a later control message
	c.subscribe("START-SEND-MESSAGES")
	if r := e.JWTRefreshes(); len(r) != 1 || r[0].Session != e.Sessions()[0].ID {
		t.Errorf("refreshes %v", r)
	}
	start := time.Now()
	expectSessionEnd(t, c, "gateway:websocket.session.expired", 401)
	if d := time.Since(start); d < 600*time.Millisecond {
		t.Errorf("expired after %v: the first token's expiry, not the refreshed one", d)
	}
}

func TestJWTRefreshInvalid(t *testing.T) {
	e := start(t, jwtOptions())
	c := jwtDial(t, e, tokenFor("idp:a", time.Minute))
	c.send("JWT-TOKEN?jwtToken=bad")
	expectSessionEnd(t, c, "gateway:websocket.session.closed", 403)
}

func TestJWTRefreshOtherSubject(t *testing.T) {
	e := start(t, jwtOptions())
	c := jwtDial(t, e, tokenFor("idp:a", time.Minute))
	c.send("JWT-TOKEN?jwtToken=" + queryEscape(tokenFor("idp:b", time.Minute)))
	expectSessionEnd(t, c, "gateway:websocket.session.closed", 403)
}
