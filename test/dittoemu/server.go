// Package dittoemu is a test-only emulator of Eclipse Ditto's gateway, for
// testing dittoconn's Ditto bridge without a JVM: the WebSocket binding /ws/2
// and the HTTP message inbox, over a small in-memory twin and policy store.
// Only tests import it; it is never linked into the binary.
//
// What it emulates (facts from eclipse-ditto/ditto 4e3576844b, named in the
// code where they are used): the upgrade with pre-authentication
// (x-ditto-pre-authenticated header or query parameter; JWT via a callback),
// the session origin from x-correlation-id, declared-acks with cluster-wide
// label uniqueness (acknowledgement:label.not.unique), the START-SEND-* and
// STOP-SEND-* control messages with namespaces, RQL filter and extraFields,
// twin commands on things (create/modify/merge/retrieve/delete at any path),
// twin events derived from them with revision and timestamp, READ/WRITE
// enforcement, the acknowledgement matrix (requested-acks, response-required,
// timeout, twin-persisted, live-response, custom labels answered on the
// delivering session only, weak acks, 408 on timeout, aggregated acks), live
// messages and commands with their responses routed back, policy
// announcements (AnnounceSubjectDeletion: to the sessions holding one of the
// announced subjects, namespaces filter), JWT-TOKEN refresh in session
// (same subject: nothing answered, the expiry timer restarts; an invalid
// token or another subject: gateway:websocket.session.closed, then close;
// expiry with Options.JWTExpiry: gateway:websocket.session.expired, then
// close), the 200-frame outbound queue per session, and fault injection.
//
// What it does not emulate: policies as Ditto models them (resources, revokes,
// policy commands: a thing has a subject → READ/WRITE table on the whole
// thing), policy announcements other than those a test makes with
// AnnounceSubjectDeletion (no subject expiry of its own, no requested
// acknowledgements on announcements), search and streaming
// subscriptions, conditional headers (if-match, condition),
// partial access, throttling, search-persisted. Such signals are answered
// with the non-Ditto error "dittoemu:unsupported" (501), never with an
// invented Ditto answer.
//
// A second speaker checks the emulator: Ditto's official JavaScript client
// (TestDittoJavaScriptClient, jsclient/), installed with
// `npm ci --prefix test/dittoemu/jsclient` (Node 20; node_modules is not
// committed); the test skips when node or the client is absent.
//
// Concurrency: one reader and one writer goroutine per socket; the reader
// never blocks on other sessions (frames go into each session's bounded
// queue, dropped above 200 as Ditto's gateway does). One mutex guards the
// emulator's session table; the store has its own.
package dittoemu

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Options configure an emulator.
type Options struct {
	// PreAuth accepts x-ditto-pre-authenticated (Ditto's
	// ENABLE_PRE_AUTHENTICATION). It is on when true or when JWT is nil, so
	// the zero Options are a pre-authenticating gateway.
	PreAuth bool
	// JWT, when set, authenticates "Authorization: Bearer <token>" upgrades:
	// it returns the subject ("issuer:claim") or ok=false (401).
	JWT func(token string) (subject string, ok bool)
	// JWTExpiry, when set, gives a token's expiry (zero: none): a JWT
	// session fails with gateway:websocket.session.expired when the last
	// token it presented (upgrade or JWT-TOKEN) expires.
	JWTExpiry func(token string) time.Time
	// SchemaDir holds Ditto's protocol-*.json schemas; "" means
	// ../shared/ditto-reference/jsonschema from the module root. When the
	// folder is absent validation is skipped (logged once).
	SchemaDir string
	// QueueSize is the outbound frame queue per session (Ditto: 200).
	QueueSize int
	// OnAnswer, when set, sees every answer to a command (response,
	// acknowledgements, error) as it is queued for its session: a
	// benchmark's count of what Ditto completed.
	OnAnswer func(m *protocol.Message)
}

// Emulator is a running Ditto gateway emulator.
type Emulator struct {
	t     testing.TB
	opts  Options
	store *store
	val   *validator

	mu           sync.Mutex
	addr         string
	srv          *http.Server
	sessions     map[*session]struct{}
	labels       map[string]*session
	refuse       int
	delay        time.Duration
	drop         bool
	violations   []string
	received     []protocol.Message
	acks         map[string]*aggregator
	nextID       int
	corrSeq      atomic.Int64
	jwtRefreshes []JWTRefresh
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// Start runs an emulator on 127.0.0.1 (a free port), stopped at t.Cleanup.
func Start(t testing.TB, opts Options) *Emulator {
	t.Helper()
	if opts.QueueSize == 0 {
		opts.QueueSize = 200
	}
	e := &Emulator{t: t, opts: opts, store: newStore(), sessions: map[*session]struct{}{},
		labels: map[string]*session{}, acks: map[string]*aggregator{}}
	e.val = newValidator(t, opts.SchemaDir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("dittoemu: listen: %v", err)
	}
	e.addr = ln.Addr().String()
	e.serve(ln)
	t.Cleanup(e.Stop)
	return e
}

func (e *Emulator) serve(ln net.Listener) {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws/2", e.upgrade)
	mux.HandleFunc("POST /api/2/things/{id}/inbox/messages/{subject...}", e.inboxMessage)
	mux.HandleFunc("GET /api/2/things/{id}", e.getThing)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	e.mu.Lock()
	e.srv = srv
	e.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

// URL is the WebSocket endpoint, ws://127.0.0.1:port/ws/2.
func (e *Emulator) URL() string { return "ws://" + e.addr + "/ws/2" }

// HTTPURL is the HTTP base, http://127.0.0.1:port.
func (e *Emulator) HTTPURL() string { return "http://" + e.addr }

// Stop closes the listener and every session. Restart serves again on the same address.
func (e *Emulator) Stop() {
	e.mu.Lock()
	srv := e.srv
	e.srv = nil
	e.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
	e.KillSessions()
}

// Restart listens again on the address of the first start (after Stop).
func (e *Emulator) Restart() {
	e.t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(5 * time.Second)
	for {
		if ln, err = net.Listen("tcp", e.addr); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the port is released asynchronously after Close
	}
	if err != nil {
		e.t.Fatalf("dittoemu: restart on %s: %v", e.addr, err)
	}
	e.serve(ln)
}

// KillSessions closes every socket abruptly (no close frame), as a crashed gateway would.
func (e *Emulator) KillSessions() {
	for _, s := range e.sessionList() {
		s.kill()
	}
}

// RefuseUpgrades makes upgrades fail with status (401 or 403, Ditto's error JSON); 0 accepts again.
func (e *Emulator) RefuseUpgrades(status int) {
	e.mu.Lock()
	e.refuse = status
	e.mu.Unlock()
}

// SetAnswerDelay delays every answer to a command sent on a session
// (responses, errors, aggregated acknowledgements).
func (e *Emulator) SetAnswerDelay(d time.Duration) {
	e.mu.Lock()
	e.delay = d
	e.mu.Unlock()
}

// DropAnswers drops every answer to a command sent on a session (events still flow).
func (e *Emulator) DropAnswers(on bool) {
	e.mu.Lock()
	e.drop = on
	e.mu.Unlock()
}

// Violations are the schema violations of frames sent or received so far.
func (e *Emulator) Violations() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.violations...)
}

// Received are the Ditto Protocol messages clients sent, in order.
func (e *Emulator) Received() []protocol.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocol.Message(nil), e.received...)
}

// Grant sets subject's permissions on a thing (existing or future: a creator
// gets READ+WRITE in addition).
func (e *Emulator) Grant(thingID, subject string, read, write bool) {
	e.store.grant(thingID, subject, read, write)
}

// Revoke removes subject from a thing's policy.
func (e *Emulator) Revoke(thingID, subject string) { e.store.revoke(thingID, subject) }

// Thing is the stored thing JSON.
func (e *Emulator) Thing(thingID string) (json.RawMessage, bool) { return e.store.get(thingID) }

// Apply runs a twin command as another client (subject, no session: its
// events reach every subscriber) and returns Ditto's answer: the response,
// error or aggregated acknowledgements; nil when none is required.
func (e *Emulator) Apply(subject string, cmd *protocol.Message) *protocol.Message {
	ch := make(chan *protocol.Message, 1)
	m := cloneMsg(cmd)
	e.ensureCorrelation(m)
	t, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		de, _ := ditto.As(err)
		return protocol.ErrorResponseFor(m.Topic, corrOnly(m), de)
	}
	if !e.signal(nil, []string{subject}, "", m, t, func(a *protocol.Message) { ch <- a }) {
		return nil
	}
	select {
	case a := <-ch:
		return a
	case <-time.After(65 * time.Second):
		return nil
	}
}

// SendLive sends a live message or live command as another client and waits
// up to wait for the answer (the subscriber's response, an error, 408, or
// the aggregated acknowledgements).
func (e *Emulator) SendLive(subject string, msg *protocol.Message, wait time.Duration) (*protocol.Message, error) {
	m := cloneMsg(msg)
	e.ensureCorrelation(m)
	if _, ok := m.Headers["timeout"]; !ok {
		m.Headers["timeout"] = fmt.Sprintf("%dms", wait.Milliseconds())
	}
	t, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		return nil, err
	}
	if t.Channel != protocol.ChannelLive {
		return nil, fmt.Errorf("dittoemu: SendLive needs a live topic, got %s", m.Topic)
	}
	ch := make(chan *protocol.Message, 1)
	if !e.signal(nil, []string{subject}, "", m, t, func(a *protocol.Message) { ch <- a }) {
		return nil, nil
	}
	select {
	case a := <-ch:
		return a, nil
	case <-time.After(wait + time.Second):
		return nil, errors.New("dittoemu: no answer in time")
	}
}

// SessionInfo describes one open session.
type SessionInfo struct {
	ID            int
	Subjects      []string
	Origin        string // x-correlation-id of the upgrade
	Query         string // the upgrade URL's raw query: tells apart clients sharing one emulator
	DeclaredAcks  []string
	Subscriptions []Subscription
	Dropped       int // frames dropped because the outbound queue was full
}

// Subscription is one active START-SEND-* of a session.
type Subscription struct {
	Type        string // EVENTS, MESSAGES, LIVE_COMMANDS, LIVE_EVENTS, POLICY_ANNOUNCEMENTS
	Namespaces  []string
	Filter      string
	ExtraFields string
}

// Sessions lists the open sessions.
func (e *Emulator) Sessions() []SessionInfo {
	var out []SessionInfo
	for _, s := range e.sessionList() {
		out = append(out, s.info())
	}
	return out
}

func (e *Emulator) sessionList() []*session {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]*session, 0, len(e.sessions))
	for s := range e.sessions {
		out = append(out, s)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].id < out[j-1].id; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

func (e *Emulator) violation(dir string, raw []byte, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.violations = append(e.violations, fmt.Sprintf("%s %s: %v", dir, clip(raw), err))
}

func clip(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "…"
	}
	return string(b)
}

func (e *Emulator) ensureCorrelation(m *protocol.Message) {
	if m.Headers == nil {
		m.Headers = map[string]string{}
	}
	if m.Headers["correlation-id"] == "" {
		m.Headers["correlation-id"] = fmt.Sprintf("dittoemu-%d", e.corrSeq.Add(1))
	}
}

func cloneMsg(m *protocol.Message) *protocol.Message {
	c := *m
	c.Headers = make(map[string]string, len(m.Headers)+2)
	for k, v := range m.Headers {
		c.Headers[strings.ToLower(k)] = v
	}
	return &c
}

func corrOnly(m *protocol.Message) map[string]string {
	h := map[string]string{}
	if c, ok := m.Headers["correlation-id"]; ok {
		h["correlation-id"] = c
	}
	return h
}

// writeError answers an HTTP request with Ditto's error JSON.
func writeError(w http.ResponseWriter, de *ditto.Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(de.Status)
	_, _ = w.Write(de.JSON())
}

// ackLabelRegex is AcknowledgementLabel's pattern (base/model acks).
var ackLabelRegex = regexp.MustCompile(`^[a-zA-Z0-9-_:]{3,165}$`)

func (e *Emulator) upgrade(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	refuse := e.refuse
	e.mu.Unlock()
	switch refuse {
	case 0:
	case http.StatusForbidden:
		writeError(w, errNamespaceNotAccessible())
		return
	default:
		writeError(w, errAuthFailed("Unauthorized."))
		return
	}
	subjects, de := e.authenticate(r)
	if de != nil {
		writeError(w, de)
		return
	}
	// Ditto reads declared-acks from the headers, the query parameters being
	// merged into them (WebSocketRoute.readDeclaredAcknowledgementLabels).
	declaredRaw := r.Header.Get("declared-acks")
	if q := r.URL.Query().Get("declared-acks"); q != "" {
		declaredRaw = q
	}
	declared := headerList(declaredRaw)
	for _, l := range declared {
		if !ackLabelRegex.MatchString(l) {
			writeError(w, ditto.AckLabelInvalid(l, ""))
			return
		}
	}
	origin := r.Header.Get("x-correlation-id")
	if origin == "" {
		origin = fmt.Sprintf("dittoemu-session-%d", e.corrSeq.Add(1))
	}
	// The session (and its labels) is registered before the upgrade
	// completes: a client that saw its upgrade succeed is known to every
	// later signal and owns its labels against every later session.
	s := newSession(e, nil, subjects, origin, declared)
	s.query = r.URL.RawQuery
	e.mu.Lock()
	conflict := false
	for _, l := range declared {
		if _, taken := e.labels[l]; taken {
			conflict = true
		}
	}
	if !conflict {
		for _, l := range declared {
			e.labels[l] = s
		}
	}
	e.nextID++
	s.id = e.nextID
	e.sessions[s] = struct{}{}
	e.mu.Unlock()
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		e.removeSession(s)
		return
	}
	s.mu.Lock()
	s.conn = conn
	s.mu.Unlock()
	select {
	case <-s.done: // killed during the upgrade
		_ = conn.Close()
		e.removeSession(s)
		return
	default:
	}
	go s.writeLoop()
	if auth := r.Header.Get("Authorization"); e.opts.JWT != nil && strings.HasPrefix(auth, "Bearer ") {
		s.startExpiry(strings.TrimPrefix(auth, "Bearer "))
	}
	if conflict {
		// StreamingSessionActor.declareAcknowledgementLabels: the failed
		// declaration is published as an error on the socket; the binding
		// page says the socket closes then, which the emulator does.
		// The exception carries no correlation-id; the emulator sets the
		// session's (x-correlation-id) since the error schema requires one.
		s.enqueue(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": origin}, errAckLabelNotUnique()))
		s.closeAfterFlush()
	}
	s.readLoop()
}

func (e *Emulator) authenticate(r *http.Request) ([]string, *ditto.Error) {
	if auth := r.Header.Get("Authorization"); e.opts.JWT != nil && strings.HasPrefix(auth, "Bearer ") {
		sub, ok := e.opts.JWT(strings.TrimPrefix(auth, "Bearer "))
		if !ok {
			return nil, errAuthFailed("The JWT could not be verified.")
		}
		return []string{sub}, nil
	}
	if e.opts.PreAuth || e.opts.JWT == nil {
		raw := r.Header.Get("x-ditto-pre-authenticated")
		if raw == "" {
			raw = r.URL.Query().Get("x-ditto-pre-authenticated")
		}
		var subjects []string
		for _, s := range strings.Split(raw, ",") {
			if s = strings.TrimSpace(s); s != "" {
				subjects = append(subjects, s)
			}
		}
		if len(subjects) > 0 {
			return subjects, nil
		}
		if e.opts.JWT == nil {
			return nil, errAuthFailed("No pre-authenticated subject was provided!")
		}
	}
	return nil, errAuthFailed("Unauthorized.")
}

func (e *Emulator) removeSession(s *session) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.sessions, s)
	for l, owner := range e.labels {
		if owner == s {
			delete(e.labels, l)
		}
	}
}

// getThing is GET /api/2/things/{id} for other clients (pre-authenticated).
func (e *Emulator) getThing(w http.ResponseWriter, r *http.Request) {
	subjects, de := e.authenticate(r)
	if de != nil {
		writeError(w, de)
		return
	}
	id := r.PathValue("id")
	raw, ok := e.store.get(id)
	if !ok || !e.store.allowed(id, subjects, false) {
		writeError(w, errThingNotFound(id))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(raw)
}

// inboxMessage is Ditto's HTTP message API: POST
// /api/2/things/{id}/inbox/messages/{subject}?timeout=..: the live message
// goes to the subscribed sessions and the HTTP response is the live response
// (its status, content-type and payload).
func (e *Emulator) inboxMessage(w http.ResponseWriter, r *http.Request) {
	subjects, de := e.authenticate(r)
	if de != nil {
		writeError(w, de)
		return
	}
	id, subject := r.PathValue("id"), r.PathValue("subject")
	ns, name, ok := strings.Cut(id, ":")
	if !ok {
		writeError(w, errThingNotFound(id))
		return
	}
	timeout := 10 * time.Second // Ditto's default message timeout
	if v := r.URL.Query().Get("timeout"); v != "" {
		d, ok := parseTimeout(v)
		if !ok {
			writeError(w, ditto.TimeoutValueInvalid(fmt.Sprintf("The value '%s' of the header 'timeout' is not a valid duration.", v)))
			return
		}
		timeout = d
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	var value json.RawMessage
	if strings.Contains(ct, "json") && json.Valid(body) {
		value = body
	} else {
		value, _ = json.Marshal(string(body))
	}
	m := &protocol.Message{
		Topic: ns + "/" + name + "/things/live/messages/" + subject,
		Headers: map[string]string{"content-type": ct, "timeout": fmt.Sprintf("%dms", timeout.Milliseconds()),
			"correlation-id": r.Header.Get("correlation-id")},
		Path:  "/inbox/messages/" + subject,
		Value: value,
	}
	if q := r.URL.Query().Get("response-required"); q != "" {
		m.Headers["response-required"] = q
	}
	e.ensureCorrelation(m)
	t, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		de, _ := ditto.As(err)
		writeError(w, de)
		return
	}
	ch := make(chan *protocol.Message, 1)
	if !e.signal(nil, subjects, "", m, t, func(a *protocol.Message) { ch <- a }) {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout+5*time.Second)
	defer cancel()
	var a *protocol.Message
	select {
	case a = <-ch:
	case <-ctx.Done():
		writeError(w, errAckTimeout(timeout))
		return
	}
	if a.Status == 0 {
		a.Status = http.StatusOK
	}
	if strings.HasSuffix(a.Topic, "/errors") || strings.Contains(a.Topic, "/acks") {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.Status)
		_, _ = w.Write(a.Value)
		return
	}
	if ct := a.Headers["content-type"]; ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(a.Status)
	var s string
	if len(a.Value) > 0 && a.Value[0] == '"' && json.Unmarshal(a.Value, &s) == nil && !strings.Contains(a.Headers["content-type"], "json") {
		_, _ = io.WriteString(w, s)
		return
	}
	_, _ = w.Write(a.Value)
}

// parseQuery reads the parameters of a control message (URL-encoded, & separated).
func parseQuery(s string) (url.Values, error) { return url.ParseQuery(s) }
