package dataplane

import (
	"context"
	"fmt"
	"mime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/placeholder"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// source is one compiled source of the connection.
type source struct {
	p       *Plane
	src     *model.Source
	chain   mapping.Chain
	headers []headerTemplate

	// subjects is the authorization context, its header: placeholders
	// resolved per message (request:subjectId, ditto-auth-context).
	subjects []*placeholder.Template
	// static is the context when no subject has a placeholder (the usual
	// case), with its header value: no work per message.
	static       []string
	staticHeader string

	enforceInput   *placeholder.Template // nil: no enforcement
	enforceFilters []*placeholder.Template

	replyAddress     *placeholder.Template // nil: no reply target
	replyHeaders     []headerTemplate
	replyToErrors    bool
	replyToResponses bool
	replyToNacks     bool

	acks ackRequests
}

func newSource(p *Plane, s *model.Source, reg *mapping.Registry) (*source, error) {
	out := &source{p: p, src: s, chain: reg.Chain(s.PayloadMapping)}
	var err error
	if out.headers, err = compileHeaders(s.HeaderMapping, true); err != nil {
		return nil, err
	}
	constant := true
	for _, subj := range s.AuthorizationContext {
		t, err := placeholder.Compile(subj)
		if err != nil {
			return nil, fmt.Errorf("%w: authorization subject: %v", client.ErrConfig, err)
		}
		out.subjects = append(out.subjects, t)
		constant = constant && t.IsConstant()
	}
	if constant && len(out.subjects) > 0 {
		out.static = slices.Clone(s.AuthorizationContext)
		out.staticHeader = encodeAuthContext(out.static)
	}
	if e := s.Enforcement; e != nil && e.Input != "" {
		if out.enforceInput, err = placeholder.Compile(e.Input); err != nil {
			return nil, fmt.Errorf("%w: enforcement input: %v", client.ErrConfig, err)
		}
		for _, f := range e.Filters {
			t, err := placeholder.Compile(f)
			if err != nil {
				return nil, fmt.Errorf("%w: enforcement filter: %v", client.ErrConfig, err)
			}
			out.enforceFilters = append(out.enforceFilters, t)
		}
	}
	if rt := s.ReplyTarget; rt != nil && s.ReplyTargetEnabled && rt.Address != "" {
		if out.replyAddress, err = placeholder.Compile(rt.Address); err != nil {
			return nil, fmt.Errorf("%w: reply target address: %v", client.ErrConfig, err)
		}
		if out.replyHeaders, err = compileHeaders(rt.HeaderMapping, false); err != nil {
			return nil, err
		}
		types := rt.ExpectedResponseTypes
		if types == nil {
			types = []string{"response", "error"}
		}
		out.replyToErrors = slices.Contains(types, "error")
		out.replyToResponses = slices.Contains(types, "response")
		out.replyToNacks = slices.Contains(types, "nack")
	}
	compileAckRequests(p, out)
	return out, nil
}

// external turns a consumed message into the mappers' input: text when
// the content type says so (or, without one, when the bytes are UTF-8, as
// MQTT payloads usually are), bytes otherwise.
func external(m *client.Message) protocol.External {
	ext := protocol.External{Address: m.Address, Headers: m.Headers}
	ct := headerValue(m.Headers, "content-type")
	if isText(ct, m.Payload) {
		ext.Text, ext.IsText = string(m.Payload), true
	} else {
		ext.Bytes = m.Payload
	}
	return ext
}

func isText(contentType string, payload []byte) bool {
	if contentType == "" {
		return utf8.Valid(payload)
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		mt = strings.ToLower(strings.TrimSpace(strings.SplitN(contentType, ";", 2)[0]))
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/javascript" || mt == "application/xml"
}

// inbound processes one consumed message on the consuming client's
// goroutine, or hands it to the mapping stage when the connection maps
// several at once (processorPoolSize, parallel.go). The message is settled
// once (m.Settle), when its processing and the acknowledgements its
// signals requested have finished: at once when nothing was requested,
// later otherwise (see settlement).
func (p *Plane) inbound(idx int, m client.Message) {
	if p.par != nil {
		p.par.submit(idx, m)
		return
	}
	p.process(idx, m, p.now(), nil)
}

// sourceFor is the source that consumed from addr.
func (p *Plane) sourceFor(addr string) *source {
	if s := p.byAddr[addr]; s != nil {
		return s
	}
	if len(p.sources) == 0 {
		return nil
	}
	return p.sources[0]
}

// mapInput is m as the mappers see it, and its authorization subjects.
func (s *source) mapInput(m *client.Message) (protocol.External, []string) {
	ext := external(m)
	subjects := s.authContext(m.Headers)
	if len(subjects) > 0 {
		ext.AuthSubject = subjects[0]
	}
	return ext, subjects
}

// process is inbound's work for m, consumed at now; mapped holds the
// chain's outcomes and m's subjects when the mapping stage mapped m
// already (not built again here: the stage's lanes process one at a time).
func (p *Plane) process(idx int, m client.Message, now time.Time, mapped *mappedIn) {
	s := p.sourceFor(m.Address)
	if s == nil {
		m.Done(client.Accept)
		return
	}
	addr := m.Address
	st := p.sourceSteps(addr)
	info := p.info(m.Headers, m.Payload, nil, now)
	set := newSettlement(m.Settle, st, info, p.now)
	outcome := client.Accept
	defer func() { set.done(outcome) }()
	st.c[monitor.Consumed].RecordAt(true, now)
	st.l[monitor.Consumed].Success(info)
	if m.Expired {
		// Ditto counts an expired message as consumed and then drops it
		// without a further metric; the broker still settles it.
		return
	}

	var outcomes []mapping.Outcome[protocol.Message]
	var subjects []string
	if mapped != nil {
		outcomes, subjects = mapped.outcomes, mapped.subjects
	} else {
		var ext protocol.External
		ext, subjects = s.mapInput(&m)
		outcomes = s.chain.MapIncoming(ext)
	}
	for _, oc := range outcomes {
		switch {
		case oc.Err != nil:
			reason := oc.Err.Error()
			st.c[monitor.Mapped].RecordAt(false, now)
			st.l[monitor.Mapped].Failure(info, reason)
			s.replyError(idx, "", lowerHeaders(m.Headers), mappingFailed(headerValue(m.Headers, "content-type"), reason))
			outcome = ack.Worse(outcome, client.Reject) // Ditto rejects what it cannot map
		case len(oc.Messages) == 0:
			st.c[monitor.Dropped].RecordAt(true, now)
			st.l[monitor.Dropped].Success(info)
		default:
			for i := range oc.Messages {
				outcome = ack.Worse(outcome, s.route(idx, &m, &oc.Messages[i], subjects, info, st, set))
			}
		}
	}
}

// route applies header mapping and enforcement to one mapped message and
// publishes it on the bus. It returns how the consumed message is to be
// settled as far as this signal is concerned now; a signal that requested
// acknowledgements settles its part later, through set.
func (s *source) route(idx int, m *client.Message, msg *protocol.Message, subjects []string, info monitor.Info, st *steps, set *settlement) client.Outcome {
	p, addr, now := s.p, m.Address, info.Timestamp
	topic, stream, err := protocol.Classify(msg)
	if err != nil {
		reason := err.Error()
		if de, ok := ditto.As(err); ok {
			reason = de.Message
		}
		st.c[monitor.Mapped].RecordAt(false, now)
		st.l[monitor.Mapped].Failure(info, reason)
		s.replyError(idx, msg.Topic, msg.Headers, protocol.TopicError(msg.Topic))
		return client.Reject
	}
	// header mapping: external headers (and the signal) → Ditto headers
	h := make(map[string]string, len(msg.Headers)+len(s.headers)+1)
	for k, v := range msg.Headers {
		if k == mapping.HeaderInboundPayloadMapper {
			continue // internal in Ditto: never written to an external message
		}
		h[k] = v
	}
	vals := &placeholder.Values{Headers: m.Headers, Topic: &topic, Path: msg.Path, ConnectionID: p.id,
		SourceAddress: addr}
	if len(subjects) > 0 {
		vals.SubjectID = subjects[0]
	}
	applyHeaders(h, s.headers, vals)
	// The context travels with the signal as Ditto's internal header (never
	// published, see protocol.ExternalHeaders); what a sender or the header
	// mapping wrote there is not trusted, as Ditto does not read it from
	// external headers.
	if s.static != nil {
		setAuthHeader(h, s.staticHeader)
	} else {
		setAuthHeader(h, encodeAuthContext(subjects))
	}
	if h["correlation-id"] == "" {
		h["correlation-id"] = uuid.NewString()
	}
	msg.Headers = h
	info.CorrelationID = h["correlation-id"]
	info.EntityType, info.EntityID = entity(&topic)
	st.c[monitor.Mapped].RecordAt(true, now)
	st.l[monitor.Mapped].Success(info)

	if s.enforceInput != nil {
		input, ok := s.enforce(vals)
		if !ok {
			de := enforcementFailed(input)
			st.c[monitor.Enforced].RecordAt(false, now)
			st.l[monitor.Enforced].Failure(info, de.Message)
			s.replyError(idx, msg.Topic, h, de)
			return client.Reject
		}
		st.c[monitor.Enforced].RecordAt(true, now)
		st.l[monitor.Enforced].Success(info)
	}

	if ack.IsAck(&topic) {
		return s.routeAck(idx, msg, &topic, info, st)
	}
	labels := s.requestedAcks(&topic, msg, h, m)
	if isLiveResponse(&topic, msg) {
		if r, ok := p.requests.take(h["correlation-id"], now); ok {
			p.answer(r, msg, topic)
			return client.Accept
		}
	}
	if p.ditto != nil {
		if zeroTimeout(labels, h, st, info) {
			return client.Reject
		}
		return s.up(idx, msg, &topic, h, labels, subjects, set)
	}
	if topic.Group == protocol.GroupThings && topic.Channel == protocol.ChannelTwin &&
		topic.Criterion == protocol.CriterionCommands && msg.Status == 0 {
		de := twinUnsupported(msg.Topic)
		st.c[monitor.Dropped].RecordAt(false, now)
		st.l[monitor.Dropped].FailureMsg(info, "Twin command dropped: "+de.Message)
		s.replyError(idx, msg.Topic, h, de)
		if len(labels) > 0 {
			// It can never succeed here: redelivering it would loop.
			return client.Reject
		}
		return client.Accept
	}
	if stream == "" {
		st.c[monitor.Dropped].RecordAt(true, now)
		st.l[monitor.Dropped].SuccessMsg(info,
			fmt.Sprintf("Signal with topic '%s' dropped: no target topic routes it.", msg.Topic))
		return client.Accept
	}
	if zeroTimeout(labels, h, st, info) {
		return client.Reject
	}
	if len(labels) > 0 {
		pa := &pendingAck{agg: ack.NewAggregation(labels), topic: topic, headers: h, source: s, idx: idx,
			timeout: ack.ParseTimeout(h[ack.HeaderTimeout]),
			reply:   h[ack.HeaderResponseRequired] != "false", set: set}
		if !p.await(pa) {
			set.fail("Too many signals wait for acknowledgements.")
			return client.Redeliver
		}
	} else if s.replyToResponses && isLiveRequest(&topic, msg) {
		// its response, consumed by another connection, comes back here
		p.awaiting.put(h["correlation-id"], pendingReply{source: s, idx: idx, headers: h}, now)
	}
	sig := &bus.Signal{Message: msg, Topic: topic, Stream: stream, Origin: p.id}
	p.cfg.Bus.Publish(sig)
	if tookWait(sig) {
		st.c[monitor.Throttled].RecordAt(false, now)
		st.l[monitor.Throttled].FailureMsg(info, throttledMessage)
	}
	return client.Accept
}

// zeroTimeout drops a signal that requested acknowledgements with a
// timeout of zero. Ditto: a client error, settled negatively (waiting for
// nothing and redelivering would loop).
func zeroTimeout(labels []string, h map[string]string, st *steps, info monitor.Info) bool {
	if len(labels) == 0 || ack.ParseTimeout(h[ack.HeaderTimeout]) != 0 {
		return false
	}
	st.c[monitor.Dropped].RecordAt(false, info.Timestamp)
	st.l[monitor.Dropped].FailureMsg(info, "Signal dropped: acknowledgements requested with a timeout of zero.")
	return true
}

// routeAck forwards an acknowledgement a device sent through this source
// (a label it declared) to the connection that requested it; an undeclared
// label is refused as Ditto refuses it.
func (s *source) routeAck(idx int, msg *protocol.Message, topic *protocol.Topic, info monitor.Info, st *steps) client.Outcome {
	p, now := s.p, info.Timestamp
	label := topic.Action
	if !slices.Contains(s.acks.declared, label) {
		de := ack.LabelNotDeclared(label)
		st.c[monitor.Dropped].RecordAt(false, now)
		st.l[monitor.Dropped].FailureMsg(info, de.Message)
		s.replyError(idx, msg.Topic, msg.Headers, de)
		return client.Reject
	}
	if msg.Status == 0 {
		st.c[monitor.Dropped].RecordAt(false, now)
		st.l[monitor.Dropped].FailureMsg(info, "Acknowledgement <"+label+"> dropped: it has no status.")
		return client.Reject
	}
	r, ok := p.requests.get(msg.Headers["correlation-id"], now)
	if !ok {
		st.c[monitor.Dropped].RecordAt(true, now)
		st.l[monitor.Dropped].SuccessMsg(info, "Acknowledgement <"+label+"> dropped: no request waits for it.")
		return client.Accept
	}
	p.answer(r, msg, *topic)
	return client.Accept
}

// throttledMessage is the log entry of a consumption slowed down by
// back-pressure.
const throttledMessage = "Consumption was throttled: a target's queue was full and the signal waited for room."

// waited holds the signals whose delivery had to wait for room in a full
// target queue, until the source that published them looks (the local bus
// delivers on the publisher's goroutine, so it looks right after Publish):
// the source counts a throttled failure, Ditto's metric of a source whose
// consumption was slowed down. Only the slow path writes here; the fast
// path reads one atomic.
var waited struct {
	n atomic.Int64
	m sync.Map // *bus.Signal → struct{}
}

// maxWaited bounds the entries nobody collects (signals published on this
// node by others than its sources, e.g. a cluster bus): beyond it the
// table starts afresh, at worst forgetting a few throttled marks.
const maxWaited = 10_000

func noteWait(s *bus.Signal) {
	if waited.n.Load() >= maxWaited {
		waited.m.Clear()
		waited.n.Store(0)
	}
	if _, loaded := waited.m.LoadOrStore(s, struct{}{}); !loaded {
		waited.n.Add(1)
	}
}

func tookWait(s *bus.Signal) bool {
	if waited.n.Load() <= 0 {
		return false
	}
	if _, ok := waited.m.LoadAndDelete(s); ok {
		waited.n.Add(-1)
		return true
	}
	return false
}

// authContext is the source's authorization context for a consumed
// message, its header: placeholders resolved from the message as Ditto
// resolves it; its first subject is request:subjectId. nil when the source
// has none or a subject does not resolve (Ditto fails such a message; here
// it travels without a context).
func (s *source) authContext(headers map[string]string) []string {
	if s.static != nil || len(s.subjects) == 0 {
		return s.static
	}
	vals := &placeholder.Values{Headers: headers}
	out := make([]string, len(s.subjects))
	for i, t := range s.subjects {
		v, err := t.Resolve(vals)
		if err != nil {
			return nil
		}
		out[i] = v
	}
	return out
}

// enforce resolves the enforcement input against the consumed message and
// the filters against the signal; the input must equal one filter.
func (s *source) enforce(vals *placeholder.Values) (string, bool) {
	input, err := s.enforceInput.Resolve(vals)
	if err != nil {
		return s.enforceInput.String(), false
	}
	for _, f := range s.enforceFilters {
		vs, err := f.ResolveAll(vals)
		if err != nil {
			continue
		}
		if slices.Contains(vs, input) {
			return input, true
		}
	}
	return input, false
}

func lowerHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		out[strings.ToLower(k)] = v
	}
	return out
}

// replyError sends a Ditto error response for a failed inbound message to
// the source's reply target, when the source expects errors there.
func (s *source) replyError(idx int, topic string, headers map[string]string, de *ditto.Error) {
	if s.replyAddress == nil || !s.replyToErrors {
		return
	}
	rh := map[string]string{}
	for _, k := range []string{"correlation-id", "reply-to", "content-type"} {
		if v, ok := headers[k]; ok {
			rh[k] = v
		}
	}
	s.reply(idx, protocol.ErrorResponseFor(topic, rh, de), headers, de.Message)
}

// reply publishes a response (failure: the reason of an error response) to
// the source's reply target through client idx; headers resolve the reply
// target's placeholders.
func (s *source) reply(idx int, resp *protocol.Message, headers map[string]string, failure string) {
	p, now := s.p, s.p.now()
	t, _ := protocol.ParseTopic(resp.Topic)
	info := p.info(resp.Headers, resp.Value, &t, now)
	if failure != "" {
		p.resp.c[monitor.Dispatched].RecordAt(false, now)
		p.resp.l[monitor.Dispatched].Failure(info, failure)
	} else {
		p.resp.c[monitor.Dispatched].RecordAt(true, now)
		p.resp.l[monitor.Dispatched].Success(info)
	}
	if s.divert(resp, &t, headers, info) {
		return
	}

	vals := &placeholder.Values{Headers: headers, Topic: &t, Path: resp.Path, ConnectionID: p.id}
	address, err := s.replyAddress.Resolve(vals)
	if err != nil {
		p.resp.c[monitor.Dropped].RecordAt(false, now)
		p.resp.l[monitor.Dropped].Failure(info, "")
		return
	}
	clp := p.slots[min(max(idx, 0), len(p.slots)-1)].Load()
	if clp == nil {
		p.resp.c[monitor.Published].RecordAt(false, now)
		p.resp.l[monitor.Published].Failure(info, "no client to publish the response")
		return
	}
	out := *resp
	out.Headers = protocol.ExternalHeaders(out.Headers)
	for _, oc := range s.chain.MapOutgoing(out) {
		if oc.Err != nil {
			p.resp.c[monitor.Mapped].RecordAt(false, now)
			p.resp.l[monitor.Mapped].Failure(info, oc.Err.Error())
			continue
		}
		for _, ext := range oc.Messages {
			p.resp.c[monitor.Mapped].RecordAt(true, now)
			p.resp.l[monitor.Mapped].Success(info)
			eh := make(map[string]string, len(ext.Headers)+len(s.replyHeaders))
			for k, v := range ext.Headers {
				eh[k] = v
			}
			applyHeaders(eh, s.replyHeaders, vals)
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.PublishTimeout)
			err := (*clp).Publish(ctx, client.Message{Address: address, Headers: eh, Payload: payloadOf(&ext)})
			cancel()
			if err != nil {
				p.resp.c[monitor.Published].RecordAt(false, p.now())
				p.resp.l[monitor.Published].Failure(info, err.Error())
				continue
			}
			p.resp.c[monitor.Published].RecordAt(true, p.now())
			p.resp.l[monitor.Published].Success(info)
		}
	}
}

func payloadOf(ext *protocol.External) []byte {
	if ext.IsText {
		return []byte(ext.Text)
	}
	return ext.Bytes
}
