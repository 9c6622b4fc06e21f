package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/model/rql"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/placeholder"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// target is one compiled target with its queue.
type target struct {
	p       *Plane
	t       *model.Target
	address string // the configured address: metrics and logs use it
	chain   mapping.Chain
	addr    *placeholder.Template
	headers []headerTemplate
	topics  []compiledTopic
	st      *steps
	streams []string // distinct bus streams subscribed
	// needsThing: some template reads thing-json:, so the thing document is
	// built per message.
	needsThing bool
	// needsSubject: some template reads request:, so the signal's
	// authorization context is decoded per message.
	needsSubject bool
	// queues: one per worker; a signal goes to the worker of its entity, so
	// signals of one thing keep their order while different things are
	// published in parallel.
	queues []chan *bus.Signal
	// issued: the resolved issuedAcknowledgementLabel ("" = none).
	issued string
	// subjects: the target's authorization context, compiled;
	// staticSubjects: the same when no subject has a placeholder, so the
	// common case compares strings without resolving (authorizes).
	subjects       []*placeholder.Template
	staticSubjects []string
	// authMemo: the last answer for staticSubjects (bus publishers of
	// several connections deliver concurrently).
	authMemo atomic.Pointer[authMemo]
}

func newTarget(p *Plane, t *model.Target, reg *mapping.Registry) (*target, error) {
	out := &target{p: p, t: t, address: t.Address, chain: reg.Chain(t.PayloadMapping),
		issued: issuedLabel(p, t.IssuedAcknowledgementLabel)}
	per := max(p.cfg.QueueSize/p.cfg.Workers, 16)
	for range p.cfg.Workers {
		out.queues = append(out.queues, make(chan *bus.Signal, per))
	}
	var err error
	if out.addr, err = placeholder.Compile(t.Address); err != nil {
		return nil, fmt.Errorf("%w: target address %q: %v", client.ErrConfig, t.Address, err)
	}
	if out.headers, err = compileHeaders(t.HeaderMapping, false); err != nil {
		return nil, err
	}
	constant := true
	for _, subj := range t.AuthorizationContext {
		tmpl, err := placeholder.Compile(subj)
		if err != nil {
			return nil, fmt.Errorf("%w: target authorization subject: %v", client.ErrConfig, err)
		}
		out.subjects = append(out.subjects, tmpl)
		constant = constant && tmpl.IsConstant()
	}
	if constant {
		out.staticSubjects = slices.Clone(t.AuthorizationContext)
	}
	out.needsThing = strings.Contains(t.Address, "thing-json:")
	out.needsSubject = strings.Contains(t.Address, "request:")
	for _, v := range t.HeaderMapping {
		out.needsThing = out.needsThing || strings.Contains(v, "thing-json:")
		out.needsSubject = out.needsSubject || strings.Contains(v, "request:")
	}
	for _, ft := range t.Topics {
		if ft.Topic == model.TopicConnectionAnnouncements {
			continue // sent by the client runner itself
		}
		ct := compiledTopic{stream: ft.Topic, namespaces: ft.Namespaces}
		if ft.ExtraFields != "" {
			if template.HasPlaceholders(ft.ExtraFields) {
				if ct.extraTmpl, err = placeholder.Compile(ft.ExtraFields); err != nil {
					return nil, fmt.Errorf("%w: target extraFields %q: %v", client.ErrConfig, ft.ExtraFields, err)
				}
			} else {
				ct.extra = mapping.ParseFieldSelector(ft.ExtraFields)
			}
		}
		if ft.Filter != "" {
			if ct.filter, err = rql.CompileString(ft.Filter); err != nil {
				return nil, fmt.Errorf("%w: target filter %q: %v", client.ErrConfig, ft.Filter, err)
			}
		}
		out.topics = append(out.topics, ct)
		if !slices.Contains(out.streams, ft.Topic) {
			out.streams = append(out.streams, ft.Topic)
		}
	}
	return out, nil
}

// deliver runs on the bus publisher's goroutine: standalone authorization
// (authorizes), Ditto's signal filter (dispatched, then namespaces and RQL
// filter), then the target's queue.
func (t *target) deliver(s *bus.Signal) {
	p := t.p
	orig := s
	if s.Origin == p.id {
		return // Ditto: a connection never receives the signals it sent itself
	}
	if s.Reply == nil && !t.authorizes(s) {
		// Ditto: a subscriber whose subjects may not read the signal never
		// sees it, so it neither counts it nor answers its requested label.
		return
	}
	now := p.now()
	logOn := p.logs.Enabled()
	var info monitor.Info
	if logOn {
		info = p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
	}
	t.st.c[monitor.Dispatched].RecordAt(true, now)
	if logOn {
		t.st.l[monitor.Dispatched].Success(info)
	}
	matched := false
	for i := range t.topics {
		ct := &t.topics[i]
		if ct.stream != s.Stream {
			continue
		}
		if s.Reply != nil { // delivered by Ditto (matchDitto)
			if matched = ct.matchDitto(s); matched {
				break
			}
			continue
		}
		var extra json.RawMessage
		if matched, extra = ct.match(s); matched {
			if extra != nil { // this target's copy carries its extra fields
				m := *s.Message
				m.Extra = extra
				enriched := *s
				enriched.Message = &m
				s = &enriched
			}
			break
		}
	}
	if !matched {
		t.weakAck(s) // Ditto: a filtered-out subscriber does not keep the requester waiting
		return
	}
	t.st.c[monitor.Filtered].RecordAt(true, now)
	if logOn {
		t.st.l[monitor.Filtered].Success(info)
	}
	t.enqueue(s, orig, now)
}

// enqueue puts s on the queue of its entity, waiting up to EnqueueWait for
// room before dropping it. publisher, when not nil, is the signal as its
// source published it: that source is throttled by the wait (noteWait).
func (t *target) enqueue(s, publisher *bus.Signal, now time.Time) {
	p := t.p
	q := t.queues[0]
	if len(t.queues) > 1 {
		q = t.queues[shard(s.Topic.EntityID(), len(t.queues))]
	}
	select {
	case q <- s:
		return
	default:
	}
	if publisher != nil {
		noteWait(publisher)
	}
	timer := time.NewTimer(p.cfg.EnqueueWait)
	defer timer.Stop()
	select {
	case q <- s:
	case <-timer.C:
		t.st.c[monitor.Dropped].RecordAt(false, p.now())
		t.st.l[monitor.Dropped].FailureMsg(p.info(s.Message.Headers, s.Message.Value, &s.Topic, now),
			"Signal dropped: the target's queue is full.")
	case <-p.ctx.Done():
	}
}

// shard is the worker (or client) index of an entity.
func shard(entity string, n int) int {
	h := uint32(2166136261) // FNV-1a, without allocating
	for i := 0; i < len(entity); i++ {
		h ^= uint32(entity[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// maxInFlight bounds the publishes of one worker that wait for the broker
// (clients that publish asynchronously, client.AsyncPublisher).
const maxInFlight = 128

// worker is one publishing goroutine of a target.
type worker struct {
	// ctx: a child of the plane's, so that the timeouts of the workers'
	// publishes do not all register with one parent context.
	ctx      context.Context
	inflight chan inflight
}

// inflight is a publish handed to an asynchronous client.
type inflight struct {
	pd       client.Pending
	info     monitor.Info
	deadline time.Time
	sig      *bus.Signal // its acknowledgement is issued on the outcome
}

// work publishes the signals of one queue in order until the plane closes.
// Asynchronous publishes are awaited in order by a second goroutine, which
// counts them; at most maxInFlight wait at a time.
func (t *target) work(q chan *bus.Signal) {
	defer t.p.wg.Done()
	ctx, cancel := context.WithCancel(t.p.ctx)
	defer cancel()
	w := &worker{ctx: ctx, inflight: make(chan inflight, maxInFlight)}
	done := make(chan struct{})
	go t.complete(w, done)
	defer func() {
		close(w.inflight)
		<-done
	}()
	for {
		select {
		case s := <-q:
			t.publish(w, s)
		case <-ctx.Done():
			return
		}
	}
}

// requestBounded is a client whose requests carry their own time bound
// (HTTP push's request-timeout): a publish to it gets that bound instead of
// Config.PublishTimeout, so a slow endpoint is given the time the setting
// promises.
type requestBounded interface {
	RequestTimeout() time.Duration
}

func (p *Plane) publishTimeout(cl client.Client) time.Duration {
	if rb, ok := cl.(requestBounded); ok && rb.RequestTimeout() > 0 {
		return rb.RequestTimeout()
	}
	return p.cfg.PublishTimeout
}

// complete waits for the outcome of each asynchronous publish, in order,
// at most PublishTimeout after it was started, and counts and logs it as
// a synchronous publish would have been.
func (t *target) complete(w *worker, done chan<- struct{}) {
	defer close(done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for f := range w.inflight {
		var err error
		select {
		case <-f.pd.Done():
			err = f.pd.Err()
		default:
			timer.Reset(time.Until(f.deadline))
			select {
			case <-f.pd.Done():
				err = f.pd.Err()
			case <-timer.C:
				err = fmt.Errorf("%w: %v", client.ErrTimeout, context.DeadlineExceeded)
			case <-w.ctx.Done():
				err = fmt.Errorf("%w: %v", client.ErrTimeout, context.Canceled)
			}
			timer.Stop()
		}
		t.published(f.sig, f.info, err)
	}
}

// published counts the outcome of one publish and issues the target's
// acknowledgement of it when the signal requested it.
func (t *target) published(s *bus.Signal, info monitor.Info, err error) {
	t.publishedResult(s, info, err, client.Result{})
}

// countPublished counts the outcome of one publish on the target.
func (t *target) countPublished(info monitor.Info, err error) {
	t.st.c[monitor.Published].RecordAt(err == nil, t.p.now())
	if err != nil {
		t.st.l[monitor.Published].Failure(info, err.Error())
	} else {
		t.st.l[monitor.Published].Success(info)
	}
}

// publishedResult is published with what the broker reported: a non-zero
// res.Status replaces the default issued acknowledgement's status and
// payload (client.ResultPublisher).
func (t *target) publishedResult(s *bus.Signal, info monitor.Info, err error, res client.Result) {
	t.countPublished(info, err)
	if t.issued == "" || t.issued == ack.LiveResponse || !requests(s, t.issued) {
		return
	}
	cid := s.Message.Headers[ack.HeaderCorrelationID]
	if err != nil {
		t.issue(s, ack.NewSendingFailed(t.issued, cid, err), info, true)
	} else {
		a := ack.NewIssued(t.issued, cid)
		if res.Status != 0 {
			a.Status, a.Payload = res.Status, res.Payload
		}
		t.issue(s, a, info, true)
	}
}

// publish maps one signal with the target's chain, resolves address and
// header mapping and publishes the result through one connected client.
func (t *target) publish(w *worker, s *bus.Signal) {
	p := t.p
	now := p.now()
	info := p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
	vals := placeholder.ForMessage(s.Message, p.id)
	if t.needsThing {
		if doc, ok := protocol.ThingDoc(s.Topic, s.Message); ok {
			vals.Thing = doc
		}
	}
	vals.Time = now
	if t.needsSubject {
		vals.SubjectID = firstAuthSubject(s.Message.Headers)
	}
	// The mappers see the Ditto Protocol message Ditto would publish, without
	// its internal headers; placeholders (vals) still see every header, as
	// Ditto's outbound resolver does.
	out := *s.Message
	out.Headers = protocol.ExternalHeaders(out.Headers)
	t.mapOut(out, vals, info, now, func() {
		t.weakAck(s) // dropped by the mapping: nothing will confirm it
	}, func(ext *protocol.External, address string, h map[string]string) {
		cl := p.pick(s.Topic.EntityID())
		if cl == nil {
			t.st.c[monitor.Published].RecordAt(false, p.now())
			t.st.l[monitor.Published].Failure(info, "no connected client")
			return
		}
		if r := routeOf(s); r.ok() && (isLiveRequest(&s.Topic, s.Message) || (p.declaresAcks && requestsAny(s))) {
			p.requests.put(s.Message.Headers["correlation-id"], r, now)
		}
		msg := client.Message{Address: address, Headers: h, Payload: payloadOf(ext), QoS: t.t.QoS}
		if ex, ok := cl.(exchanger); ok && t.answersWithResponse(s) {
			t.exchange(w, ex, s, msg, info)
			return
		}
		if rp, ok := cl.(client.ResultPublisher); ok && t.issued != "" && t.issued != ack.LiveResponse && requests(s, t.issued) {
			ctx, cancel := context.WithTimeout(w.ctx, p.publishTimeout(cl))
			res, err := rp.PublishResult(ctx, msg)
			cancel()
			t.publishedResult(s, info, err, res)
			return
		}
		if ap, ok := cl.(client.AsyncPublisher); ok {
			f := inflight{pd: ap.PublishAsync(msg), info: info, deadline: time.Now().Add(p.cfg.PublishTimeout), sig: s}
			select {
			case w.inflight <- f:
			case <-w.ctx.Done():
			}
			return
		}
		ctx, cancel := context.WithTimeout(w.ctx, p.publishTimeout(cl))
		err := cl.Publish(ctx, msg)
		cancel()
		t.published(s, info, err)
	})
}

// mapOut maps out with the target's payload mapping and, per external
// message, resolves the target address and header mapping against vals,
// counting mapped and dropped as Ditto does; emit publishes one message.
// dropped is called when the mapping dropped the signal.
func (t *target) mapOut(out protocol.Message, vals *placeholder.Values, info monitor.Info, now time.Time,
	dropped func(), emit func(ext *protocol.External, address string, h map[string]string)) {
	for _, oc := range t.chain.MapOutgoing(out) {
		switch {
		case oc.Err != nil:
			t.st.c[monitor.Mapped].RecordAt(false, now)
			t.st.l[monitor.Mapped].Failure(info, oc.Err.Error())
			continue
		case len(oc.Messages) == 0:
			t.st.c[monitor.Dropped].RecordAt(true, now)
			t.st.l[monitor.Dropped].Success(info)
			if dropped != nil {
				dropped()
			}
			continue
		}
		for i := range oc.Messages {
			ext := &oc.Messages[i]
			t.st.c[monitor.Mapped].RecordAt(true, now)
			t.st.l[monitor.Mapped].Success(info)
			address, err := t.addr.Resolve(vals)
			if err != nil {
				t.st.c[monitor.Dropped].RecordAt(true, now)
				t.st.l[monitor.Dropped].SuccessMsg(info,
					"Signal dropped, target address unresolved: "+t.address)
				continue
			}
			h := make(map[string]string, len(ext.Headers)+len(t.headers))
			for k, v := range ext.Headers {
				h[k] = v
			}
			applyHeaders(h, t.headers, vals)
			emit(ext, address, h)
		}
	}
}
