package dittoemu

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

type ackEntry struct {
	status  int
	payload json.RawMessage
	headers map[string]string
}

func weakAck(corr string) ackEntry {
	p, _ := json.Marshal("Acknowledgement was issued automatically as weak ack, because the signal is not relevant " +
		"for the subscriber. Possible reasons are: the subscriber did not subscribe for the signal type, or the " +
		"signal was dropped by a configured RQL filter.")
	return ackEntry{status: 200, payload: p, headers: map[string]string{"correlation-id": corr, "ditto-weak-ack": "true"}}
}

// aggregator collects the requested acknowledgements of one signal, as
// Ditto's AcknowledgementAggregatorActor: it answers when every label is
// in or the timeout passed (missing labels become 408
// acknowledgement:request.timeout). The answer is the plain response when
// only the channel's own label (twin-persisted / live-response) was
// requested, else the aggregated acks message with the combined status
// (Acknowledgements.getCombinedHttpStatus: one ack → its status; all 2xx →
// 200; else 424).
type aggregator struct {
	e       *Emulator
	t       protocol.Topic
	corr    string
	labels  []string
	primary string
	timeout time.Duration
	answer  func(*protocol.Message)

	mu    sync.Mutex
	got   map[string]ackEntry
	plain *protocol.Message
	done  bool
	timer *time.Timer
}

func (e *Emulator) newAggregator(t protocol.Topic, corr string, labels []string, primary string, timeout time.Duration,
	answer func(*protocol.Message)) *aggregator {
	a := &aggregator{e: e, t: t, corr: corr, labels: labels, primary: primary, timeout: timeout, answer: answer,
		got: map[string]ackEntry{}}
	e.mu.Lock()
	e.acks[corr] = a
	e.mu.Unlock()
	return a
}

func (e *Emulator) aggregatorFor(corr string) *aggregator {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.acks[corr]
}

func (a *aggregator) start() {
	a.mu.Lock()
	if !a.done {
		a.timer = time.AfterFunc(a.timeout, a.expire)
	}
	a.mu.Unlock()
	a.check()
}

func (a *aggregator) add(label string, entry ackEntry, plain *protocol.Message) {
	a.mu.Lock()
	if a.done || !contains(a.labels, label) {
		a.mu.Unlock()
		return
	}
	if _, dup := a.got[label]; dup {
		a.mu.Unlock()
		return
	}
	a.got[label] = entry
	if plain != nil && label == a.primary {
		a.plain = plain
	}
	a.mu.Unlock()
	a.check()
}

func (a *aggregator) check() {
	a.mu.Lock()
	if a.done || len(a.got) < len(a.labels) || a.timer == nil {
		a.mu.Unlock()
		return
	}
	a.finishLocked()
}

func (a *aggregator) expire() {
	a.mu.Lock()
	if a.done {
		a.mu.Unlock()
		return
	}
	for _, l := range a.labels {
		if _, ok := a.got[l]; !ok {
			a.got[l] = ackEntry{status: 408, payload: errAckTimeout(a.timeout).JSON(),
				headers: map[string]string{"correlation-id": a.corr}}
		}
	}
	a.finishLocked()
}

// finishLocked answers and unlocks.
func (a *aggregator) finishLocked() {
	a.done = true
	if a.timer != nil {
		a.timer.Stop()
	}
	msg := a.build()
	a.mu.Unlock()
	a.e.mu.Lock()
	if a.e.acks[a.corr] == a {
		delete(a.e.acks, a.corr)
	}
	a.e.mu.Unlock()
	a.answer(msg)
}

func (a *aggregator) build() *protocol.Message {
	h := map[string]string{"correlation-id": a.corr}
	if len(a.labels) == 1 && a.labels[0] == a.primary {
		if a.plain != nil {
			p := cloneMsg(a.plain)
			p.Headers["correlation-id"] = a.corr
			for k := range p.Headers {
				if k == "requested-acks" || protocol.IsInternalHeader(k) {
					delete(p.Headers, k)
				}
			}
			return p
		}
		return protocol.ErrorResponse(a.t, h, errAckTimeout(a.timeout))
	}
	value := map[string]json.RawMessage{}
	allOK := true
	status := 0
	for _, l := range a.labels {
		en := a.got[l]
		status = en.status
		if en.status < 200 || en.status > 299 {
			allOK = false
		}
		obj := map[string]json.RawMessage{}
		obj["status"], _ = json.Marshal(en.status)
		if len(en.payload) > 0 {
			obj["payload"] = en.payload
		}
		obj["headers"] = headersJSON(en.headers)
		value[l], _ = json.Marshal(obj)
	}
	switch {
	case len(a.labels) == 1:
	case allOK:
		status = 200
	default:
		status = 424
	}
	v, _ := json.Marshal(value)
	t := protocol.Topic{Namespace: a.t.Namespace, EntityName: a.t.EntityName, Group: protocol.GroupThings,
		Channel: a.t.Channel, Criterion: protocol.CriterionAcks}
	h["content-type"] = "application/json"
	return &protocol.Message{Topic: t.String(), Headers: h, Path: "/", Value: v, Status: status}
}

// headersJSON writes headers with Ditto's JSON types (ditto-weak-ack a boolean ...).
func headersJSON(h map[string]string) json.RawMessage {
	out := map[string]json.RawMessage{}
	for k, v := range h {
		if protocol.IsInternalHeader(k) {
			continue
		}
		if ok := typedHeaders[k]; ok != nil && json.Valid([]byte(v)) && ok(json.RawMessage(v)) {
			out[k] = json.RawMessage(v)
			continue
		}
		out[k], _ = json.Marshal(v)
	}
	b, _ := json.Marshal(out)
	return b
}
