package dittoemu

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// client is a raw WebSocket speaker of Ditto's protocol for the tests.
type client struct {
	t    *testing.T
	conn *websocket.Conn
}

func start(t *testing.T, opts Options) *Emulator {
	e := Start(t, opts)
	t.Cleanup(func() {
		if v := e.Violations(); len(v) > 0 {
			t.Errorf("schema violations:\n%s", strings.Join(v, "\n"))
		}
	})
	return e
}

func dial(t *testing.T, e *Emulator, subjects, origin string, declared ...string) *client {
	t.Helper()
	h := http.Header{}
	if subjects != "" {
		h.Set("x-ditto-pre-authenticated", subjects)
	}
	if origin != "" {
		h.Set("x-correlation-id", origin)
	}
	if len(declared) > 0 {
		b, _ := json.Marshal(declared)
		h.Set("declared-acks", string(b))
	}
	conn, resp, err := websocket.DefaultDialer.Dial(e.URL(), h)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	c := &client{t: t, conn: conn}
	t.Cleanup(func() { _ = conn.Close() })
	return c
}

func (c *client) send(text string) {
	c.t.Helper()
	if err := c.conn.WriteMessage(websocket.TextMessage, []byte(text)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func (c *client) sendMsg(m *protocol.Message) {
	c.t.Helper()
	c.send(string(encode(m)))
}

// read returns the next frame's text, failing after 5 s.
func (c *client) read() string {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, b, err := c.conn.ReadMessage()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return string(b)
}

func (c *client) readMsg() *protocol.Message {
	c.t.Helper()
	txt := c.read()
	m, err := protocol.Decode([]byte(txt))
	if err != nil {
		c.t.Fatalf("not a Ditto Protocol message: %s: %v", txt, err)
	}
	return m
}

func (c *client) subscribe(control string) {
	c.t.Helper()
	c.send(control)
	name, _, _ := strings.Cut(control, "?")
	if got := c.read(); got != name+":ACK" {
		c.t.Fatalf("%s answered %q", control, got)
	}
}

func msg(topic, path, value string, headers ...string) *protocol.Message {
	h := map[string]string{}
	for i := 0; i+1 < len(headers); i += 2 {
		h[headers[i]] = headers[i+1]
	}
	m := &protocol.Message{Topic: topic, Headers: h, Path: path}
	if value != "" {
		m.Value = json.RawMessage(value)
	}
	return m
}

func errorCode(t *testing.T, m *protocol.Message) string {
	t.Helper()
	var v struct {
		Error string `json:"error"`
	}
	if err := json.Unmarshal(m.Value, &v); err != nil {
		t.Fatalf("error value %s: %v", m.Value, err)
	}
	return v.Error
}

func expect(t *testing.T, m *protocol.Message, topic string, status int) {
	t.Helper()
	if m.Topic != topic || m.Status != status {
		t.Fatalf("got %s, want topic %s status %d", encode(m), topic, status)
	}
}

func jsonEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("got %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &b); err != nil {
		t.Fatalf("want %s: %v", want, err)
	}
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Fatalf("got %s\nwant %s", ja, jb)
	}
}

func queryEscape(s string) string { return url.QueryEscape(s) }
