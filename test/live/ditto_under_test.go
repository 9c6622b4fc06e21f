package live

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/dittoemu"
)

// The Ditto the bridge proofs run against: Ditto's gateway emulator
// (test/dittoemu) by default; a real Ditto when DITTOCONN_TEST_DITTO_WS_URI
// names its gateway's WebSocket endpoint (ws://host:8080/ws/2, reached
// directly, with ENABLE_PRE_AUTHENTICATION=true) and, when its HTTP API is
// not at the same host and port, DITTOCONN_TEST_DITTO_HTTP_URI. Against a
// real Ditto, the proofs that need fault injection (stopping Ditto) skip.
const (
	envTestDittoWS   = "DITTOCONN_TEST_DITTO_WS_URI"
	envTestDittoHTTP = "DITTOCONN_TEST_DITTO_HTTP_URI"
)

// adminSubject administers the things the proofs create.
const adminSubject = "test:admin"

// dittoUnderTest is what the proofs do to Ditto besides what dittoconn does.
type dittoUnderTest interface {
	URL() string
	// Thing is the thing as adminSubject reads it.
	Thing(thingID string) (json.RawMessage, bool)
	// Apply runs a twin command as subject and returns Ditto's answer.
	Apply(subject string, cmd *protocol.Message) *protocol.Message
	// Grant gives subject READ and/or WRITE on a thing (existing or created
	// next by Apply); Revoke takes it away.
	Grant(thingID, subject string, read, write bool)
	Revoke(thingID, subject string)
	// Violations are the frames that broke Ditto's protocol schemas (the
	// emulator checks every frame; a real Ditto reports none here).
	Violations() []string
}

// startDitto starts the emulator, or names the real Ditto of the
// environment.
func startDitto(t *testing.T) dittoUnderTest {
	t.Helper()
	ws := os.Getenv(envTestDittoWS)
	if ws == "" {
		return dittoemu.Start(t, dittoemu.Options{})
	}
	httpURI := os.Getenv(envTestDittoHTTP)
	if httpURI == "" {
		u, err := url.Parse(ws)
		if err != nil {
			t.Fatalf("%s: %v", envTestDittoWS, err)
		}
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		httpURI = scheme + "://" + u.Host
	}
	return &realDitto{t: t, ws: ws, http: strings.TrimSuffix(httpURI, "/"), pending: map[string]map[string][2]bool{}}
}

// faulty is d as the emulator, for the proofs that stop or kill Ditto;
// against a real Ditto they skip.
func faulty(t *testing.T, d dittoUnderTest) *dittoemu.Emulator {
	t.Helper()
	emu, ok := d.(*dittoemu.Emulator)
	if !ok {
		t.Skipf("this proof stops Ditto: it runs against the emulator only (%s is set)", envTestDittoWS)
	}
	return emu
}

// realDitto is a Ditto gateway reached over its public API only.
type realDitto struct {
	t    *testing.T
	ws   string
	http string

	mu sync.Mutex
	// pending: grants for things not created yet, written into the inline
	// policy of their create command.
	pending map[string]map[string][2]bool
}

func (d *realDitto) URL() string          { return d.ws }
func (d *realDitto) Violations() []string { return nil }

func (d *realDitto) request(method, path string, body any) (int, []byte) {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, d.http+path, rd)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	req.Header.Set("x-ditto-pre-authenticated", adminSubject)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b
}

func (d *realDitto) Thing(thingID string) (json.RawMessage, bool) {
	status, b := d.request(http.MethodGet, "/api/2/things/"+url.PathEscape(thingID), nil)
	return b, status == http.StatusOK
}

// entryLabel is the policy entry of subject.
func entryLabel(subject string) string {
	return strings.NewReplacer(":", "-", "/", "-").Replace(subject)
}

func entry(subject string, read, write bool) map[string]any {
	var grant []string
	if read {
		grant = append(grant, "READ")
	}
	if write {
		grant = append(grant, "WRITE")
	}
	return map[string]any{"subjects": map[string]any{subject: map[string]any{"type": "dittoconn-test"}},
		"resources": map[string]any{"thing:/": map[string]any{"grant": grant, "revoke": []string{}}}}
}

func (d *realDitto) Grant(thingID, subject string, read, write bool) {
	if _, exists := d.Thing(thingID); !exists {
		d.mu.Lock()
		if d.pending[thingID] == nil {
			d.pending[thingID] = map[string][2]bool{}
		}
		d.pending[thingID][subject] = [2]bool{read, write}
		d.mu.Unlock()
		return
	}
	status, b := d.request(http.MethodPut, "/api/2/policies/"+url.PathEscape(thingID)+"/entries/"+entryLabel(subject),
		entry(subject, read, write))
	if status/100 != 2 {
		d.t.Fatalf("grant %s on %s: %d %s", subject, thingID, status, b)
	}
}

func (d *realDitto) Revoke(thingID, subject string) {
	status, b := d.request(http.MethodDelete, "/api/2/policies/"+url.PathEscape(thingID)+"/entries/"+entryLabel(subject), nil)
	if status/100 != 2 {
		d.t.Fatalf("revoke %s on %s: %d %s", subject, thingID, status, b)
	}
}

// Apply sends cmd on a WebSocket session of subject and waits for the
// answer with its correlation id. A create command gets the inline policy
// of the grants made before it (and adminSubject's).
func (d *realDitto) Apply(subject string, cmd *protocol.Message) *protocol.Message {
	d.t.Helper()
	m := *cmd
	m.Headers = map[string]string{}
	for k, v := range cmd.Headers {
		m.Headers[k] = v
	}
	if m.Headers["correlation-id"] == "" {
		m.Headers["correlation-id"] = uuid.NewString()
	}
	if strings.HasSuffix(m.Topic, "/things/twin/commands/create") {
		m.Value = d.withPolicy(m.Value)
	}
	h := http.Header{}
	h.Set("x-ditto-pre-authenticated", subject)
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	c, resp, err := dialer.Dial(d.ws, h)
	if err != nil {
		d.t.Fatalf("dial %s as %s: %v (%v)", d.ws, subject, err, resp)
	}
	defer c.Close()
	if err := c.WriteMessage(websocket.TextMessage, protocol.Encode(&m)); err != nil {
		d.t.Fatalf("send: %v", err)
	}
	deadline := time.Now().Add(65 * time.Second)
	for {
		_ = c.SetReadDeadline(deadline)
		_, frame, err := c.ReadMessage()
		if err != nil {
			d.t.Fatalf("no answer to %s: %v", m.Headers["correlation-id"], err)
		}
		a, err := protocol.Decode(frame)
		if err == nil && a.Headers["correlation-id"] == m.Headers["correlation-id"] && a.Status != 0 {
			return a
		}
	}
}

func (d *realDitto) withPolicy(value json.RawMessage) json.RawMessage {
	var th map[string]any
	if json.Unmarshal(value, &th) != nil {
		return value
	}
	id, _ := th["thingId"].(string)
	entries := map[string]any{entryLabel(adminSubject): map[string]any{
		"subjects": map[string]any{adminSubject: map[string]any{"type": "dittoconn-test"}},
		"resources": map[string]any{
			"thing:/":   map[string]any{"grant": []string{"READ", "WRITE"}, "revoke": []string{}},
			"policy:/":  map[string]any{"grant": []string{"READ", "WRITE"}, "revoke": []string{}},
			"message:/": map[string]any{"grant": []string{"READ", "WRITE"}, "revoke": []string{}},
		}}}
	d.mu.Lock()
	for subject, rw := range d.pending[id] {
		entries[entryLabel(subject)] = entry(subject, rw[0], rw[1])
	}
	delete(d.pending, id)
	d.mu.Unlock()
	th["_policy"] = map[string]any{"entries": entries}
	b, err := json.Marshal(th)
	if err != nil {
		return value
	}
	return b
}
