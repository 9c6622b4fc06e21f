package dataplane

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/placeholder"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Acknowledgements (Ditto's basic-acknowledgements): a source adds the
// labels it requests to the live commands and live messages it consumes and
// waits for them (an aggregation per correlation id, bounded in number and
// in time by the signal's timeout); targets of other connections answer
// with the label they issue once their broker confirmed the publish, or at
// once with a weak acknowledgement when their filter drops the signal; a
// live response answers live-response. Acknowledgements travel back on the
// requester's ResponseStream, like live responses, so they cross cluster
// members. When every label is answered or the timeout passed, the source
// publishes Ditto's answer to its reply target and settles the consumed
// broker message on it.

// maxPendingAcks bounds the aggregations one plane waits for; a message
// beyond it is settled for redelivery at once (the broker clients bound
// the unsettled messages per source well below it).
const maxPendingAcks = 10000

// settlement settles one consumed message once: when its inbound
// processing and every aggregation started for it have finished, with the
// worst outcome among them. Settling is counted and logged as the source's
// acknowledged metric, as Ditto's consumers count every settlement.
type settlement struct {
	settle func(client.Outcome)
	n      atomic.Int32 // 1 for the processing + 1 per aggregation
	worst  atomic.Int32
	// reason: why the worst outcome is not Accept (an answer's status), for
	// the log entry.
	reason atomic.Pointer[string]
	st     *steps
	info   monitor.Info
	now    func() time.Time
}

func newSettlement(settle func(client.Outcome), st *steps, info monitor.Info, now func() time.Time) *settlement {
	// Headers only: the payload would be held (and logged again) until the
	// message is settled.
	info.PayloadBytes = nil
	s := &settlement{settle: settle, st: st, info: info, now: now}
	s.n.Store(1)
	return s
}

func (s *settlement) add() { s.n.Add(1) }

// fail notes why a part is not accepted.
func (s *settlement) fail(reason string) { s.reason.Store(&reason) }

// done records o for one part; the last part settles.
func (s *settlement) done(o client.Outcome) {
	for {
		cur := client.Outcome(s.worst.Load())
		w := ack.Worse(cur, o)
		if w == cur || s.worst.CompareAndSwap(int32(cur), int32(w)) {
			break
		}
	}
	if s.n.Add(-1) != 0 {
		return
	}
	out := client.Outcome(s.worst.Load())
	if s.settle != nil {
		s.settle(out)
	}
	info := s.info
	now := s.now()
	info.Timestamp = now
	switch out {
	case client.Accept:
		s.st.c[monitor.Acknowledged].RecordAt(true, now)
		s.st.l[monitor.Acknowledged].SuccessMsg(info, "Sending success acknowledgement.")
	default:
		msg := "Sending negative acknowledgement without redelivery."
		if out == client.Redeliver {
			msg = "Unfulfilled acknowledgements are present: sending negative acknowledgement for redelivery."
		}
		if r := s.reason.Load(); r != nil {
			msg += " " + *r
		}
		s.st.c[monitor.Acknowledged].RecordAt(false, now)
		s.st.l[monitor.Acknowledged].FailureMsg(info, msg)
	}
}

// pendingAck is one signal waiting for its acknowledgements.
type pendingAck struct {
	agg     *ack.Aggregation
	topic   protocol.Topic
	headers map[string]string // the signal's Ditto headers
	source  *source
	idx     int
	timeout time.Duration
	reply   bool // response-required was not false
	set     *settlement
	timer   *time.Timer
	done    bool
}

// ackTable holds the pending aggregations by correlation id.
type ackTable struct {
	mu sync.Mutex
	m  map[string]*pendingAck
}

// ackRequests is a source's compiled acknowledgementRequests.
type ackRequests struct {
	includes []string
	filter   string // the filter pipeline, "" = none
	declared []string
}

func compileAckRequests(p *Plane, s *source) {
	src := s.src
	if ar := src.AcknowledgementRequests; ar != nil {
		for _, l := range ar.Includes {
			if ack.ValidLabel(l) {
				s.acks.includes = append(s.acks.includes, l)
			}
		}
		if ar.Filter != nil {
			s.acks.filter = *ar.Filter
		}
	}
	for _, l := range src.DeclaredAcks {
		if r, ok := template.ResolveConnectionID(l, p.id); ok {
			s.acks.declared = append(s.acks.declared, r)
			p.declaresAcks = true
		}
	}
}

// canRequestAcks: what Ditto requests acknowledgements for (twin commands,
// live commands, live messages; not responses, not events).
func canRequestAcks(t *protocol.Topic, m *protocol.Message) bool {
	return t.Group == protocol.GroupThings && m.Status == 0 &&
		(t.Criterion == protocol.CriterionCommands || t.Criterion == protocol.CriterionMessages)
}

// requestedAcks applies the source's acknowledgementRequests (includes,
// then filter) and Ditto's rules of the live channel to the signal's
// headers h, and returns the labels the signal requests. Ditto appends the
// source's labels after payload mapping; a signal whose header explicitly
// requests nothing ([]) keeps requesting nothing.
func (s *source) requestedAcks(t *protocol.Topic, m *protocol.Message, h map[string]string, ext *client.Message) []string {
	if !canRequestAcks(t, m) {
		return nil
	}
	raw, present := h[ack.HeaderRequestedAcks]
	labels := ack.ParseRequested(raw)
	explicitNone := present && len(labels) == 0
	if len(s.acks.includes) > 0 && !explicitNone {
		for _, l := range s.acks.includes {
			if !slices.Contains(labels, l) {
				labels = append(labels, l)
			}
		}
		present = true
	}
	if s.acks.filter != "" {
		labels, present = s.filterAcks(labels, present, h, ext, t)
	}
	if t.Channel == protocol.ChannelLive {
		// Ditto's live ack-request setter: live-response follows
		// response-required, the twin's labels do not apply.
		respReq := h[ack.HeaderResponseRequired] != "false"
		if !present {
			if respReq && ack.ParseTimeout(h[ack.HeaderTimeout]) > 0 {
				labels = []string{ack.LiveResponse}
			}
		} else if respReq && len(labels) > 0 {
			if !slices.Contains(labels, ack.LiveResponse) {
				labels = append(labels, ack.LiveResponse)
			}
		} else if !respReq {
			labels = slices.DeleteFunc(labels, func(l string) bool { return l == ack.LiveResponse })
		}
		labels = slices.DeleteFunc(labels, func(l string) bool {
			return l == ack.TwinPersisted || l == ack.SearchPersisted
		})
		present = true
	}
	if present {
		h[ack.HeaderRequestedAcks] = ack.FormatRequested(labels)
	}
	return labels
}

// filterAcks is Ditto's RequestedAcksFilter: the filter runs as a pipeline
// behind fn:default('<requested>'); a deleted or unresolved result requests
// nothing, otherwise the result is the header.
func (s *source) filterAcks(labels []string, present bool, h map[string]string, ext *client.Message, t *protocol.Topic) ([]string, bool) {
	def := "[]"
	if present {
		if v := ack.FormatRequested(labels); !strings.Contains(v, "'") {
			def = v
		}
	}
	tmpl, err := placeholder.Compile("{{ fn:default('" + def + "') | " + s.acks.filter + " }}")
	if err != nil {
		return nil, true
	}
	vals := &placeholder.Values{Headers: ext.Headers, Topic: t, ConnectionID: s.p.id, SourceAddress: ext.Address}
	v, err := tmpl.Resolve(vals)
	if err != nil {
		return nil, true
	}
	if present {
		return ack.ParseRequested(v), true
	}
	// the header was not set: the filter alone decides
	if only, err := placeholder.Compile("{{ " + s.acks.filter + " }}"); err == nil {
		if v, err := only.Resolve(vals); err == nil {
			return ack.ParseRequested(v), true
		}
	}
	return labels, false
}

// await registers the aggregation of a signal before it is published (the
// local bus delivers synchronously: a weak acknowledgement can arrive
// before Publish returns). A correlation id already waited for gets a
// suffix, as Ditto's aggregator starter gives a conflicting signal a new
// one. false: no room; the message is then settled for redelivery.
func (p *Plane) await(pa *pendingAck) bool {
	cid := pa.headers[ack.HeaderCorrelationID]
	p.acks.mu.Lock()
	defer p.acks.mu.Unlock()
	if p.acks.m == nil {
		p.acks.m = map[string]*pendingAck{}
	}
	if len(p.acks.m) >= maxPendingAcks {
		return false
	}
	if _, dup := p.acks.m[cid]; dup {
		cid += "-" + uuid.NewString()
		pa.headers[ack.HeaderCorrelationID] = cid
	}
	p.acks.m[cid] = pa
	pa.set.add()
	pa.timer = time.AfterFunc(pa.timeout, func() { p.finishAck(cid, pa) })
	return true
}

// abandonAcks settles every waiting message for redelivery when the plane
// closes: nobody will answer it here any more, and its timer need not keep
// the plane alive.
func (p *Plane) abandonAcks() {
	p.acks.mu.Lock()
	var open []*pendingAck
	for cid, pa := range p.acks.m {
		if !pa.done {
			pa.done = true
			pa.timer.Stop()
			open = append(open, pa)
		}
		delete(p.acks.m, cid)
	}
	p.acks.mu.Unlock()
	for _, pa := range open {
		pa.set.fail("The connection closed before its acknowledgements arrived.")
		pa.set.done(client.Redeliver)
	}
}

// onAck feeds an acknowledgement or live response that arrived on the
// response stream to its aggregation; false: nobody waits for it.
func (p *Plane) onAck(cid string, add func(*ack.Aggregation) bool) bool {
	p.acks.mu.Lock()
	pa := p.acks.m[cid]
	if pa == nil {
		p.acks.mu.Unlock()
		return false
	}
	accepted := add(pa.agg)
	complete := pa.agg.Done()
	p.acks.mu.Unlock()
	if complete {
		p.finishAck(cid, pa)
	}
	return accepted
}

// finishAck answers the requester and settles once, on completion or at
// the timeout.
func (p *Plane) finishAck(cid string, pa *pendingAck) {
	p.acks.mu.Lock()
	if pa.done {
		p.acks.mu.Unlock()
		return
	}
	pa.done = true
	if p.acks.m[cid] == pa {
		delete(p.acks.m, cid)
	}
	pa.timer.Stop()
	outcome := pa.agg.Outcome()
	var answer *protocol.Message
	if pa.reply && pa.source.replyAddress != nil || outcome != client.Accept {
		answer, _ = pa.agg.Answer(pa.topic, answerHeaders(pa.headers), pa.timeout)
	}
	p.acks.mu.Unlock()

	if outcome != client.Accept {
		pa.set.fail(fmt.Sprintf("The requested acknowledgements of <%s> were answered with status <%d>.",
			pa.headers[ack.HeaderCorrelationID], answer.Status))
	}
	if pa.reply && answer != nil && pa.source.replyAddress != nil {
		// The last acknowledgement arrives on another connection's target
		// worker (or the timer): publishing the answer must not hold it up.
		// The message is settled once the answer is out.
		go func() {
			pa.source.replyAnswer(pa.idx, answer, mergeHeaders(pa.headers, answer.Headers))
			pa.set.done(outcome)
		}()
		return
	}
	pa.set.done(outcome)
}

// answerHeaders are the headers of the answer to a signal: its correlation
// id and Ditto Protocol content type.
func answerHeaders(h map[string]string) map[string]string {
	out := map[string]string{ack.HeaderCorrelationID: h[ack.HeaderCorrelationID],
		"content-type": "application/vnd.eclipse.ditto+json"}
	return out
}

// replyAnswer publishes the answer to the source's reply target when its
// expected response types want it: a response (a plain response, or
// acknowledgements that all succeeded), a nack (acknowledgements with a
// failure) or an error (an error response).
func (s *source) replyAnswer(idx int, answer *protocol.Message, headers map[string]string) {
	if s.replyAddress == nil {
		return
	}
	t, _ := protocol.ParseTopic(answer.Topic)
	want := s.replyToResponses
	switch {
	case t.Criterion == protocol.CriterionErrors:
		want = s.replyToErrors
	case t.Criterion == protocol.CriterionAcks && (answer.Status < 200 || answer.Status >= 300):
		want = s.replyToNacks
	}
	if want {
		s.reply(idx, answer, headers, "")
	}
}

// issuedLabel resolves a target's issuedAcknowledgementLabel
// ({{connection:id}}); "" when it has none or it does not resolve.
func issuedLabel(p *Plane, label string) string {
	if label == "" {
		return ""
	}
	r, ok := template.ResolveConnectionID(label, p.id)
	if !ok || !ack.ValidLabel(r) {
		return ""
	}
	return r
}

// requestsAny reports whether signal s requested some label.
func requestsAny(s *bus.Signal) bool {
	v := s.Message.Headers[ack.HeaderRequestedAcks]
	return v != "" && v != "[]"
}

// requests reports whether signal s requested label.
func requests(s *bus.Signal, label string) bool {
	if label == "" {
		return false
	}
	v, ok := s.Message.Headers[ack.HeaderRequestedAcks]
	if !ok || !strings.Contains(v, label) {
		return false
	}
	if strings.Contains(v, `"`+label+`"`) {
		return true // the JSON array sources write (labels need no escaping)
	}
	return slices.Contains(ack.ParseRequested(v), label)
}

// issue sends a to the connection that requested it (the signal's origin),
// counting it as the target's acknowledged metric.
func (t *target) issue(s *bus.Signal, a ack.Ack, info monitor.Info, count bool) {
	p := t.p
	if !routeOf(s).ok() {
		return
	}
	now := p.now()
	switch {
	case !count: // weak acknowledgements are no broker's confirmation
	case a.Success():
		t.st.c[monitor.Acknowledged].RecordAt(true, now)
		t.st.l[monitor.Acknowledged].Success(info)
	default:
		t.st.c[monitor.Acknowledged].RecordAt(false, now)
		t.st.l[monitor.Acknowledged].Failure(info, fmt.Sprintf("<%s> answered with status <%d>", a.Label, a.Status))
	}
	m := a.Message(s.Topic)
	at := protocol.Topic{Namespace: s.Topic.Namespace, EntityName: s.Topic.EntityName, Group: protocol.GroupThings,
		Channel: s.Topic.Channel, Criterion: protocol.CriterionAcks, Action: a.Label}
	p.answer(routeOf(s), m, at)
}

// weakAck answers the issued label of a target whose namespaces or filter
// dropped a signal that requested it.
func (t *target) weakAck(s *bus.Signal) {
	if requests(s, t.issued) {
		info := t.p.info(s.Message.Headers, nil, &s.Topic, t.p.now())
		t.issue(s, ack.NewWeak(t.issued, s.Message.Headers[ack.HeaderCorrelationID]), info, false)
	}
}
