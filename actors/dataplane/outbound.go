package dataplane

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/actors/bus"
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/mapping"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/actors/model/rql"
	"github.com/dittoconn/dittoconn/actors/monitor"
	"github.com/dittoconn/dittoconn/actors/placeholder"
	"github.com/dittoconn/dittoconn/actors/protocol"
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
	streams []string // distinct bus streams subscribed
	// needsThing: some template reads thing-json:, so the thing document is
	// built per message.
	needsThing bool
	// queues: one per worker; a signal goes to the worker of its entity, so
	// signals of one thing keep their order while different things are
	// published in parallel.
	queues []chan *bus.Signal
}

func newTarget(p *Plane, t *model.Target, reg *mapping.Registry) (*target, error) {
	out := &target{p: p, t: t, address: t.Address, chain: reg.Chain(t.PayloadMapping)}
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
	out.needsThing = strings.Contains(t.Address, "thing-json:")
	for _, v := range t.HeaderMapping {
		out.needsThing = out.needsThing || strings.Contains(v, "thing-json:")
	}
	for _, ft := range t.Topics {
		if ft.Topic == model.TopicConnectionAnnouncements {
			continue // sent by the client runner itself
		}
		ct := compiledTopic{stream: ft.Topic, namespaces: ft.Namespaces}
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

// deliver runs on the bus publisher's goroutine: Ditto's signal filter
// (dispatched, then namespaces and RQL filter), then the target's queue.
func (t *target) deliver(s *bus.Signal) {
	p := t.p
	if s.Origin == p.id {
		return // Ditto: a connection never receives the signals it sent itself
	}
	now := p.now()
	reg := p.metrics
	logOn := p.logs.Enabled()
	var info monitor.Info
	if logOn {
		info = p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
	}
	reg.Outbound(monitor.Dispatched, t.address).RecordAt(true, now)
	if logOn {
		p.logs.Target(monitor.Dispatched, t.address).Success(info)
	}
	matched := false
	for i := range t.topics {
		if ct := &t.topics[i]; ct.stream == s.Stream && ct.matches(s) {
			matched = true
			break
		}
	}
	if !matched {
		return
	}
	reg.Outbound(monitor.Filtered, t.address).RecordAt(true, now)
	if logOn {
		p.logs.Target(monitor.Filtered, t.address).Success(info)
	}
	q := t.queues[0]
	if len(t.queues) > 1 {
		q = t.queues[shard(s.Topic.EntityID(), len(t.queues))]
	}
	select {
	case q <- s:
		return
	default:
	}
	timer := time.NewTimer(p.cfg.EnqueueWait)
	defer timer.Stop()
	select {
	case q <- s:
	case <-timer.C:
		reg.Outbound(monitor.Dropped, t.address).RecordAt(false, p.now())
		p.logs.Target(monitor.Dropped, t.address).FailureMsg(p.info(s.Message.Headers, s.Message.Value, &s.Topic, now),
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

// work publishes the signals of one queue in order until the plane closes.
func (t *target) work(q chan *bus.Signal) {
	defer t.p.wg.Done()
	for {
		select {
		case s := <-q:
			t.publish(s)
		case <-t.p.ctx.Done():
			return
		}
	}
}

// publish maps one signal with the target's chain, resolves address and
// header mapping and publishes the result through one connected client.
func (t *target) publish(s *bus.Signal) {
	p, reg := t.p, t.p.metrics
	now := p.now()
	info := p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
	vals := placeholder.ForMessage(s.Message, p.id)
	if t.needsThing {
		if doc, ok := protocol.ThingDoc(s.Topic, s.Message); ok {
			vals.Thing = doc
		}
	}
	vals.Time = now
	for _, oc := range t.chain.MapOutgoing(*s.Message) {
		switch {
		case oc.Err != nil:
			reg.Outbound(monitor.Mapped, t.address).RecordAt(false, now)
			p.logs.Target(monitor.Mapped, t.address).Failure(info, oc.Err.Error())
			continue
		case len(oc.Messages) == 0:
			reg.Outbound(monitor.Dropped, t.address).RecordAt(true, now)
			p.logs.Target(monitor.Dropped, t.address).Success(info)
			continue
		}
		for i := range oc.Messages {
			ext := &oc.Messages[i]
			reg.Outbound(monitor.Mapped, t.address).RecordAt(true, now)
			p.logs.Target(monitor.Mapped, t.address).Success(info)
			address, err := t.addr.Resolve(vals)
			if err != nil {
				reg.Outbound(monitor.Dropped, t.address).RecordAt(true, now)
				p.logs.Target(monitor.Dropped, t.address).SuccessMsg(info,
					"Signal dropped, target address unresolved: "+t.address)
				continue
			}
			h := make(map[string]string, len(ext.Headers)+len(t.headers))
			for k, v := range ext.Headers {
				h[k] = v
			}
			applyHeaders(h, t.headers, vals)
			cl := p.pick(s.Topic.EntityID())
			if cl == nil {
				reg.Outbound(monitor.Published, t.address).RecordAt(false, p.now())
				p.logs.Target(monitor.Published, t.address).Failure(info, "no connected client")
				continue
			}
			if s.Origin != "" && isLiveRequest(&s.Topic, s.Message) {
				p.requests.put(s.Message.Headers["correlation-id"], s.Origin, now)
			}
			ctx, cancel := context.WithTimeout(p.ctx, p.cfg.PublishTimeout)
			err = cl.Publish(ctx, client.Message{Address: address, Headers: h, Payload: payloadOf(ext), QoS: t.t.QoS})
			cancel()
			if err != nil {
				reg.Outbound(monitor.Published, t.address).RecordAt(false, p.now())
				p.logs.Target(monitor.Published, t.address).Failure(info, err.Error())
				continue
			}
			reg.Outbound(monitor.Published, t.address).RecordAt(true, p.now())
			p.logs.Target(monitor.Published, t.address).Success(info)
		}
	}
}
