package dittoemu

import (
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/dittoconn/dittoconn/internal/model/rql"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Streaming types as Ditto names them (gateway StreamingType) and the
// control message that starts each.
var streamTypes = map[string]string{
	"START-SEND-EVENTS":               "EVENTS",
	"START-SEND-MESSAGES":             "MESSAGES",
	"START-SEND-LIVE-COMMANDS":        "LIVE_COMMANDS",
	"START-SEND-LIVE-EVENTS":          "LIVE_EVENTS",
	"START-SEND-POLICY-ANNOUNCEMENTS": "POLICY_ANNOUNCEMENTS",
}

type subscription struct {
	Subscription
	pred *rql.Predicate
}

type session struct {
	e        *Emulator
	id       int
	conn     *websocket.Conn
	subjects []string
	origin   string
	query    string
	declared []string

	out       chan []byte
	closeReq  chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	subs      map[string]*subscription
	forwarded map[string]bool // correlation-ids of signals with requested acks delivered here
	dropped   int
	expiry    *time.Timer // JWT sessions with Options.JWTExpiry
}

func newSession(e *Emulator, conn *websocket.Conn, subjects []string, origin string, declared []string) *session {
	return &session{e: e, conn: conn, subjects: subjects, origin: origin, declared: declared,
		out: make(chan []byte, e.opts.QueueSize), closeReq: make(chan struct{}, 1), done: make(chan struct{}),
		subs: map[string]*subscription{}, forwarded: map[string]bool{}}
}

func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := SessionInfo{ID: s.id, Subjects: append([]string(nil), s.subjects...), Origin: s.origin, Query: s.query,
		DeclaredAcks: append([]string(nil), s.declared...), Dropped: s.dropped}
	for _, k := range []string{"EVENTS", "MESSAGES", "LIVE_COMMANDS", "LIVE_EVENTS", "POLICY_ANNOUNCEMENTS"} {
		if sub := s.subs[k]; sub != nil {
			i.Subscriptions = append(i.Subscriptions, sub.Subscription)
		}
	}
	return i
}

func (s *session) kill() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.mu.Lock()
		if s.expiry != nil {
			s.expiry.Stop()
		}
		conn := s.conn
		s.mu.Unlock()
		if conn != nil {
			_ = conn.Close()
		}
	})
}

// closeAfterFlush sends a close frame once the queued frames are written.
func (s *session) closeAfterFlush() {
	select {
	case s.closeReq <- struct{}{}:
	default:
	}
}

// enqueue queues a frame; above the queue size it is dropped, as Ditto's
// gateway drops above its 200-frame outbound buffer.
func (s *session) enqueue(m *protocol.Message) {
	b := encode(m)
	s.e.val.check(s.e, "sent", b)
	s.enqueueRaw(b)
}

func (s *session) enqueueRaw(b []byte) {
	select {
	case s.out <- b:
	default:
		s.mu.Lock()
		s.dropped++
		s.mu.Unlock()
	}
}

// answer sends the answer to a command of this session, subject to the
// injected delay and drop.
func (s *session) answer(m *protocol.Message) {
	s.e.mu.Lock()
	delay, drop := s.e.delay, s.e.drop
	s.e.mu.Unlock()
	if drop {
		return
	}
	if s.e.opts.OnAnswer != nil {
		s.e.opts.OnAnswer(m)
	}
	if delay > 0 {
		time.AfterFunc(delay, func() { s.enqueue(m) })
		return
	}
	s.enqueue(m)
}

func (s *session) writeLoop() {
	for {
		select {
		case <-s.done:
			return
		case b := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if err := s.conn.WriteMessage(websocket.TextMessage, b); err != nil {
				s.kill()
				return
			}
		case <-s.closeReq:
			for len(s.out) > 0 {
				_ = s.conn.WriteMessage(websocket.TextMessage, <-s.out)
			}
			_ = s.conn.WriteControl(websocket.CloseMessage,
				websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
			time.AfterFunc(time.Second, s.kill) // the peer's close frame or not
			return
		}
	}
}

func (s *session) readLoop() {
	defer func() {
		s.kill()
		s.e.removeSession(s)
	}()
	// gorilla's default ping handler answers pings with pongs.
	for {
		typ, data, err := s.conn.ReadMessage()
		if err != nil {
			return
		}
		if typ != websocket.TextMessage {
			continue
		}
		s.handleText(string(data))
	}
}

func (s *session) handleText(text string) {
	trimmed := strings.TrimSpace(text)
	switch {
	case strings.HasPrefix(trimmed, "START-SEND-"), strings.HasPrefix(trimmed, "STOP-SEND-"):
		s.control(trimmed)
		return
	case strings.HasPrefix(trimmed, "JWT-TOKEN"):
		s.refreshJWT(trimmed)
		return
	}
	raw := []byte(text)
	s.e.val.check(s.e, "received", raw)
	m, err := protocol.Decode(raw)
	if err != nil {
		de, _ := ditto.As(err)
		s.answer(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": s.origin}, de))
		return
	}
	s.e.mu.Lock()
	s.e.received = append(s.e.received, *m)
	s.e.mu.Unlock()
	t, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		de, _ := ditto.As(err)
		s.answer(protocol.ErrorResponseFor(m.Topic, corrOnly(m), de))
		return
	}
	s.e.ensureCorrelation(m)
	switch {
	case t.Criterion == protocol.CriterionAcks && t.Action != "":
		s.acknowledgement(m, t)
	case m.Status != 0 && t.Channel == protocol.ChannelLive &&
		(t.Criterion == protocol.CriterionCommands || t.Criterion == protocol.CriterionMessages):
		s.e.liveResponse(m)
	case m.Status != 0:
		// responses to twin signals from a client have nowhere to go in Ditto either
	default:
		s.e.signal(s, s.subjects, s.origin, m, t, s.answer)
	}
}

// control handles START-SEND-*/STOP-SEND-* (StreamingSessionActor StartStreaming/StopStreaming).
func (s *session) control(text string) {
	name, query, _ := strings.Cut(text, "?")
	if strings.HasPrefix(name, "STOP-SEND-") {
		typ, ok := streamTypes["START-"+strings.TrimPrefix(name, "STOP-")]
		if !ok {
			s.unknownText(text)
			return
		}
		s.mu.Lock()
		delete(s.subs, typ)
		s.mu.Unlock()
		s.enqueueRaw([]byte(name + ":ACK"))
		return
	}
	typ, ok := streamTypes[name]
	if !ok {
		s.unknownText(text)
		return
	}
	params, err := parseQuery(query)
	if err != nil {
		s.unknownText(text)
		return
	}
	sub := &subscription{Subscription: Subscription{Type: typ, Filter: params.Get("filter"), ExtraFields: params.Get("extraFields")}}
	for _, ns := range strings.Split(params.Get("namespaces"), ",") {
		if ns = strings.TrimSpace(ns); ns != "" {
			sub.Namespaces = append(sub.Namespaces, ns)
		}
	}
	if sub.Filter != "" {
		p, err := rql.CompileString(sub.Filter)
		if err != nil {
			// Ditto publishes the parse error and keeps the previous subscription, no :ACK
			s.enqueue(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": s.origin},
				ditto.RQLInvalid(err.Error())))
			return
		}
		sub.pred = p
	}
	s.mu.Lock()
	s.subs[typ] = sub // a second START of the same type replaces the first
	s.mu.Unlock()
	s.enqueueRaw([]byte(name + ":ACK"))
}

// unknownText: Ditto parses any other text as a Ditto Protocol JSON message.
func (s *session) unknownText(text string) {
	s.enqueue(protocol.ErrorResponse(protocol.Topic{}, map[string]string{"correlation-id": s.origin},
		ditto.JSONParseFailed(text)))
}

func (s *session) declares(label string) bool {
	for _, l := range s.declared {
		if l == label {
			return true
		}
	}
	return false
}

// acknowledgement is an ack a subscriber issues (StreamingSessionActor:
// weak acks for built-in labels dropped, undeclared labels refused, the ack
// taken only by the forwarder of the session that delivered the signal).
func (s *session) acknowledgement(m *protocol.Message, t protocol.Topic) {
	label := t.Action
	if m.Headers["ditto-weak-ack"] == "true" && builtinLabels[label] {
		return
	}
	if !s.declares(label) {
		s.answer(protocol.ErrorResponse(t, corrOnly(m), errAckLabelNotDeclared(label)))
		return
	}
	corr := m.Headers["correlation-id"]
	s.mu.Lock()
	delivered := s.forwarded[corr]
	s.mu.Unlock()
	if !delivered {
		return // no forwarder on this session: Ditto hands it to the command router, which drops it
	}
	if a := s.e.aggregatorFor(corr); a != nil {
		a.add(label, ackEntry{status: m.Status, payload: m.Value, headers: m.Headers}, nil)
	}
}

func (s *session) markForwarded(corr string) {
	s.mu.Lock()
	s.forwarded[corr] = true
	s.mu.Unlock()
}

func (s *session) sub(typ string) *subscription {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.subs[typ]
}

func (s *session) canRead(readers map[string]bool) bool {
	for _, sub := range s.subjects {
		if readers[sub] {
			return true
		}
	}
	return false
}

func (sub *subscription) namespaceMatches(ns string) bool {
	if len(sub.Namespaces) == 0 {
		return true
	}
	for _, n := range sub.Namespaces {
		if n == ns {
			return true
		}
	}
	return false
}

// signal handles a signal from a session (s != nil) or from another client:
// twin commands, live commands and messages, live events. answer receives
// what Ditto answers; it reports whether an answer will come.
func (e *Emulator) signal(s *session, subjects []string, origin string, m *protocol.Message, t protocol.Topic,
	answer func(*protocol.Message)) bool {
	timeout := 60 * time.Second
	if v, ok := m.Headers["timeout"]; ok {
		d, ok := parseTimeout(v)
		if !ok {
			answer(protocol.ErrorResponse(t, corrOnly(m),
				ditto.TimeoutValueInvalid("The value '"+v+"' of the header 'timeout' is not a valid duration.")))
			return true
		}
		if d > 60*time.Second {
			answer(protocol.ErrorResponse(t, corrOnly(m), ditto.GatewayTimeoutInvalid(d.Milliseconds(), 60000)))
			return true
		}
		timeout = d
	}
	live := t.Channel == protocol.ChannelLive
	switch {
	case t.Group != protocol.GroupThings:
		answer(protocol.ErrorResponse(t, corrOnly(m), errUnsupported("signals of the group "+t.Group)))
		return true
	case live && t.Criterion == protocol.CriterionEvents:
		e.publish(m, "LIVE_EVENTS", origin, t, e.store.readers(t.EntityID()), nil, nil, subjects)
		return false
	case t.Criterion != protocol.CriterionCommands && t.Criterion != protocol.CriterionMessages:
		answer(protocol.ErrorResponse(t, corrOnly(m), errUnsupported("the criterion "+t.Criterion)))
		return true
	}
	// AbstractCommandAckRequestSetter: without the header, a response is
	// required unless the timeout is zero; a zero timeout requests no
	// implicit acknowledgement.
	rr, set := m.Headers["response-required"]
	respReq := rr != "false"
	if !set {
		respReq = timeout != 0
	}
	labels := requestedLabels(m, t, respReq, timeout == 0)
	if timeout == 0 && (respReq || len(labels) > 0) {
		// AcknowledgementAggregatorActorStarter.getDittoHeaderInvalidException
		answer(errHeaderInvalid(t, m, "timeout",
			"The value of the header 'timeout' must not be zero if response or acknowledgements are requested.",
			"Please provide a positive timeout."))
		return true
	}
	if s != nil && !respReq && len(labels) > 0 {
		answer(errAcksWithoutResponse(t, m))
		return true
	}
	if live {
		return e.liveRequest(subjects, origin, m, t, respReq, labels, timeout, answer)
	}
	return e.twinCommand(subjects, origin, m, t, respReq, labels, timeout, answer)
}

var builtinLabels = map[string]bool{"twin-persisted": true, "live-response": true, "search-persisted": true}

// requestedLabels applies Ditto's ack request setters
// (ThingModifyCommandAckRequestSetter, ThingLiveCommandAckRequestSetter,
// MessageCommandAckRequestSetter): twin modify commands default to
// twin-persisted when a response is required; live signals get live-response
// added when a response is required (unless requested-acks was set empty)
// and removed when not; labels of the other channel are ignored.
func requestedLabels(m *protocol.Message, t protocol.Topic, respReq, timeoutZero bool) []string {
	raw, explicit := m.Headers["requested-acks"]
	labels := headerList(raw)
	live := t.Channel == protocol.ChannelLive
	modify := t.Criterion == protocol.CriterionCommands && t.Action != "retrieve"
	if !live && !modify {
		return nil // retrieve commands request no acknowledgements
	}
	own, other := "twin-persisted", "live-response"
	if live {
		own, other = "live-response", "twin-persisted"
	}
	if !explicit {
		if respReq && !timeoutZero {
			return []string{own}
		}
		return nil
	}
	var out []string
	for _, l := range labels {
		// the other channel's built-in labels are dropped (for live also search-persisted)
		if l != other && !(live && l == "search-persisted") && !contains(out, l) {
			out = append(out, l)
		}
	}
	if live && !respReq {
		out = slices.DeleteFunc(out, func(l string) bool { return l == own })
	} else if live && len(labels) > 0 && !contains(out, own) {
		out = append(out, own)
	}
	return out
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

func (e *Emulator) twinCommand(subjects []string, origin string, m *protocol.Message, t protocol.Topic,
	respReq bool, labels []string, timeout time.Duration, answer func(*protocol.Message)) bool {
	res, de := e.store.apply(subjects, t, m)
	if de != nil {
		if respReq {
			answer(protocol.ErrorResponse(t, corrOnly(m), de))
		}
		return respReq
	}
	var agg *aggregator
	if respReq && len(labels) > 0 {
		agg = e.newAggregator(t, m.Headers["correlation-id"], labels, "twin-persisted", timeout, answer)
		if contains(labels, "twin-persisted") {
			agg.add("twin-persisted", ackEntry{status: res.resp.Status, payload: res.resp.Value, headers: corrOnly(m)}, res.resp)
		}
	}
	if res.event != nil {
		e.publish(res.event, "EVENTS", origin, t, res.readers, customLabels(labels), agg, subjects)
	}
	if agg == nil {
		if respReq {
			answer(res.resp)
		}
		return respReq
	}
	agg.start()
	return true
}

func customLabels(labels []string) []string {
	var out []string
	for _, l := range labels {
		if !builtinLabels[l] {
			out = append(out, l)
		}
	}
	return out
}

func (e *Emulator) liveRequest(subjects []string, origin string, m *protocol.Message, t protocol.Topic,
	respReq bool, labels []string, timeout time.Duration, answer func(*protocol.Message)) bool {
	id := t.EntityID()
	write := !(t.Criterion == protocol.CriterionCommands && t.Action == "retrieve")
	if !e.store.allowed(id, subjects, write) {
		var de *ditto.Error
		switch {
		case t.Criterion == protocol.CriterionMessages:
			de = errSendNotAllowed(id)
		case !e.store.allowed(id, subjects, false):
			de = errThingNotFound(id)
		default:
			de = errThingNotModifiable(id)
		}
		if respReq {
			answer(protocol.ErrorResponse(t, corrOnly(m), de))
		}
		return respReq
	}
	var agg *aggregator
	if respReq {
		if len(labels) == 0 {
			labels = []string{"live-response"} // requested-acks [] with a response: the response is still routed back
		}
		agg = e.newAggregator(t, m.Headers["correlation-id"], labels, "live-response", timeout, answer)
	}
	stream := "LIVE_COMMANDS"
	if t.Criterion == protocol.CriterionMessages {
		stream = "MESSAGES"
	}
	e.publish(m, stream, origin, t, e.store.readers(id), customLabels(labels), agg, subjects)
	if agg != nil {
		agg.start()
	}
	return respReq
}

// liveResponse routes a subscriber's response to a live command or message
// back to the requester (as the live-response acknowledgement).
func (e *Emulator) liveResponse(m *protocol.Message) {
	if a := e.aggregatorFor(m.Headers["correlation-id"]); a != nil && a.primary == "live-response" {
		a.add("live-response", ackEntry{status: m.Status, payload: m.Value, headers: m.Headers}, m)
	}
}

// publish delivers a signal to every session subscribed to stream that may
// receive it: another origin (Ditto never returns a session's own signals),
// READ on the thing, a matching namespace and RQL filter (evaluated on the
// thing the signal implies, merged with the subscription's extra fields, as
// WebSocketRoute.matchesFilter does). A session that declared one of the
// custom labels but does not receive the signal answers it with a weak
// acknowledgement (WebSocketRoute.issuePotentialWeakAcknowledgements,
// pubsub Publisher for subscribers without authorization); a same-origin
// session does not (its forwarder starts, nothing answers: 408).
func (e *Emulator) publish(m *protocol.Message, stream, origin string, t protocol.Topic, readers map[string]bool,
	custom []string, agg *aggregator, senders []string) {
	corr := m.Headers["correlation-id"]
	ns := t.Namespace
	for _, s := range e.sessionList() {
		var declared []string
		for _, l := range custom {
			if s.declares(l) {
				declared = append(declared, l)
			}
		}
		if origin != "" && s.origin == origin {
			if len(declared) > 0 {
				s.markForwarded(corr)
			}
			continue
		}
		sub := s.sub(stream)
		ok := sub != nil && s.canRead(readers) && sub.namespaceMatches(ns)
		var extra json.RawMessage
		if ok && sub.ExtraFields != "" {
			if snap, found := e.store.snapshot(t.EntityID()); found {
				if sel, isObj := selectFields(snap, sub.ExtraFields).(map[string]any); isObj && len(sel) > 0 {
					extra, _ = json.Marshal(sel)
				}
			}
		}
		if ok && sub.pred != nil && (stream == "EVENTS" || stream == "LIVE_EVENTS") {
			doc, _ := protocol.ThingDoc(t, m)
			if doc == nil {
				doc = map[string]any{}
			}
			if len(extra) > 0 {
				if ev, err := decodeJSON(extra); err == nil {
					doc = mergeUnder(ev.(map[string]any), doc)
				}
			}
			ok = sub.pred.Match(doc, topicResolver{t: t, path: m.Path, headers: m.Headers})
		}
		if !ok {
			if agg != nil {
				for _, l := range declared {
					agg.add(l, weakAck(corr), nil)
				}
			}
			continue
		}
		out := cloneMsg(m)
		out.Topic = m.Topic
		delete(out.Headers, "requested-acks")
		if len(declared) > 0 {
			out.Headers["requested-acks"] = listHeader(declared)
			s.markForwarded(corr)
		}
		if len(senders) > 0 {
			out.Headers["ditto-originator"] = senders[0]
		}
		for k := range out.Headers {
			if protocol.IsInternalHeader(k) || k == "timeout" && t.Channel == protocol.ChannelTwin {
				delete(out.Headers, k)
			}
		}
		if len(out.Value) > 0 && out.Headers["content-type"] == "" {
			out.Headers["content-type"] = "application/json"
		}
		out.Extra = extra
		s.enqueue(out)
	}
}

// mergeUnder merges b over a (b wins), recursively for objects.
func mergeUnder(a, b map[string]any) map[string]any {
	for k, v := range b {
		if bo, ok := v.(map[string]any); ok {
			if ao, ok := a[k].(map[string]any); ok {
				a[k] = mergeUnder(ao, bo)
				continue
			}
		}
		a[k] = v
	}
	return a
}

// topicResolver resolves the placeholders Ditto's WebSocket filters know
// (topic:, thing:, resource:, header:).
type topicResolver struct {
	t       protocol.Topic
	path    string
	headers map[string]string
}

func (r topicResolver) Lookup(prefix, name string) (string, bool) {
	switch prefix {
	case "topic":
		switch name {
		case "namespace":
			return r.t.Namespace, true
		case "entityName":
			return r.t.EntityName, true
		case "group":
			return r.t.Group, true
		case "channel":
			return r.t.Channel, true
		case "criterion":
			return r.t.Criterion, true
		case "action":
			return r.t.Action, r.t.Action != ""
		case "subject":
			return r.t.Subject, r.t.Subject != ""
		case "action-subject":
			return r.t.ActionOrSubject(), true
		case "full":
			return r.t.String(), true
		}
	case "thing":
		switch name {
		case "id":
			return r.t.EntityID(), true
		case "namespace":
			return r.t.Namespace, true
		case "name":
			return r.t.EntityName, true
		}
	case "resource":
		switch name {
		case "path":
			return r.path, true
		case "type":
			return protocol.ResourceType(r.t), true
		}
	case "header":
		v, ok := r.headers[strings.ToLower(name)]
		return v, ok
	}
	return "", false
}
