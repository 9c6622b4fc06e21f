package dataplane

import (
	"sync"
	"time"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Responses to live commands and live messages go back to the connection
// that sent the request, never to subscribers: the connection whose target
// published the request remembers its origin by correlation id; when its
// source consumes the response, the response travels on the bus stream of
// the origin, whose source publishes it to its reply target.

// ResponseStream is the bus stream of the responses for connection id.
func ResponseStream(id string) string { return "_responses/" + id }

const (
	// pendingTTL is how long a request waits for its response (Ditto's
	// default command timeout is 10 s, its maximum 60 s).
	pendingTTL = 60 * time.Second
	// pendingMax bounds the waiting requests per connection.
	pendingMax = 10000
)

func isLive(t *protocol.Topic) bool {
	return t.Group == protocol.GroupThings && t.Channel == protocol.ChannelLive &&
		(t.Criterion == protocol.CriterionCommands || t.Criterion == protocol.CriterionMessages)
}

// isLiveRequest: a live command or live message that expects a response.
func isLiveRequest(t *protocol.Topic, m *protocol.Message) bool {
	return isLive(t) && m.Status == 0 && m.Headers["response-required"] != "false"
}

// isLiveResponse: the response to a live command or live message.
func isLiveResponse(t *protocol.Topic, m *protocol.Message) bool { return isLive(t) && m.Status != 0 }

// pendingTable maps correlation ids to what waits for them, bounded in
// size and time.
type pendingTable[V any] struct {
	mu    sync.Mutex
	m     map[string]pendingEntry[V]
	swept time.Time
}

// sweepEvery bounds how often a full pendingTable looks for expired entries.
const sweepEvery = 100 * time.Millisecond

type pendingEntry[V any] struct {
	v       V
	expires time.Time
}

func (pt *pendingTable[V]) put(key string, v V, now time.Time) {
	if key == "" {
		return
	}
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if pt.m == nil {
		pt.m = map[string]pendingEntry[V]{}
	}
	if len(pt.m) >= pendingMax {
		// Sweeping is O(n): at most every sweepEvery, so that a full
		// table does not cost a scan per request.
		if now.Sub(pt.swept) >= sweepEvery {
			pt.swept = now
			for k, e := range pt.m {
				if now.After(e.expires) {
					delete(pt.m, k)
				}
			}
		}
		if len(pt.m) >= pendingMax {
			return // too many open requests: this one gets no response
		}
	}
	pt.m[key] = pendingEntry[V]{v: v, expires: now.Add(pendingTTL)}
}

func (pt *pendingTable[V]) take(key string, now time.Time) (V, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	e, ok := pt.m[key]
	if ok {
		delete(pt.m, key)
	}
	if !ok || now.After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// get is take without removing: several acknowledgements may answer one
// request.
func (pt *pendingTable[V]) get(key string, now time.Time) (V, bool) {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	e, ok := pt.m[key]
	if !ok || now.After(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// pendingReply is a request consumed by one of this connection's sources.
type pendingReply struct {
	source  *source
	idx     int
	headers map[string]string // the request's Ditto headers (reply-to, correlation-id…)
}

// deliverResponse runs on the bus for responses to this connection's
// requests: it publishes them to the reply target of the source that
// consumed the request.
func (p *Plane) deliverResponse(s *bus.Signal) {
	now := p.now()
	cid := s.Message.Headers["correlation-id"]
	if ack.IsAck(&s.Topic) {
		if a, ok := ack.FromMessage(s.Message, &s.Topic); ok && p.onAck(cid, func(g *ack.Aggregation) bool { return g.Add(a) }) {
			return
		}
		info := p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
		p.metrics.Response(monitor.Dropped).RecordAt(true, now)
		p.resp.l[monitor.Dropped].SuccessMsg(info, "Acknowledgement dropped: no request waits for it any more.")
		return
	}
	if p.onAck(cid, func(g *ack.Aggregation) bool { return g.AddResponse(s.Message) }) {
		return
	}
	pr, ok := p.awaiting.take(cid, now)
	if !ok {
		info := p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
		p.metrics.Response(monitor.Dropped).RecordAt(true, now)
		p.resp.l[monitor.Dropped].SuccessMsg(info, "Response dropped: no request waits for it any more.")
		return
	}
	pr.source.reply(pr.idx, s.Message, mergeHeaders(pr.headers, s.Message.Headers), "")
}

// mergeHeaders are the request's headers overlaid with the answer's: the
// reply target's placeholders see both.
func mergeHeaders(req, answer map[string]string) map[string]string {
	headers := make(map[string]string, len(req)+len(answer))
	for k, v := range req {
		headers[k] = v
	}
	for k, v := range answer {
		headers[k] = v
	}
	return headers
}
