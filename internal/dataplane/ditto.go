package dataplane

import (
	"fmt"
	"slices"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Working next to Ditto (Config.Ditto set; the design is
// ../shared/spec/ditto-bridge-and-acknowledgements.md): what a source
// consumes and maps goes up to Ditto's gateway on a session with the
// source's authorization context, and Ditto's answer comes back to the
// source's reply target and settles the consumed message; each target
// subscribes at Ditto under its own context, and what Ditto delivers is
// published as a bus signal would be, its answers (issued
// acknowledgements, live responses the connection's sources consume) going
// back on the session that delivered it (bus.Signal.Reply). Twin and live
// signals then never travel on the local bus: Ditto enforces its policies
// on them and delivers them to every subscriber, dittoconn's own
// connections included, so routing them locally as well would deliver
// them twice.

// DittoLink is one connection's sessions with Ditto's gateway
// (*bridge.Link). Its methods are safe for concurrent use and
// never block for long: answers and deliveries come on the link's own
// goroutines.
type DittoLink interface {
	// Target subscribes a target at Ditto under its subjects, declaring
	// the labels it issues; deliver receives what Ditto sends for subs.
	Target(subjects, declared []string, subs []bridge.Subscription, deliver func(bridge.Delivery))
	// Send sends msg under subjects, waiting (bounded by msg's timeout)
	// until it is written. answer, when not nil, is called once with
	// Ditto's answer carrying msg's correlation id (a response, an error
	// response, aggregated acknowledgements), with Ditto's 408 or 503 error
	// when none came, or with nil: written, and Ditto sends no answer. It
	// may run on the link's socket reader, so it must not block.
	Send(subjects []string, msg *protocol.Message, answer func(*protocol.Message))
	// Status is one entry per session.
	Status() []client.ResourceStatus
	Close()
}

// dittoFilters reports whether Ditto's WebSocket applies a target topic's
// RQL filter itself; live messages and live commands take none there.
func dittoFilters(stream string) bool {
	return stream != model.TopicLiveMessages && stream != model.TopicLiveCommands
}

// subscribeAtDitto registers every target with a topic at Ditto. A target
// whose authorization context holds placeholders cannot: a session's
// context is fixed at its upgrade (New refuses such a target).
//
// The labels the sources declare (devices' acknowledgements) are declared
// by the first subscribing target's session: Ditto wants each label
// declared by one session only, and takes an acknowledgement only on the
// session that delivered its signal, so a device's acknowledgement of a
// signal another target delivered is refused there
// (acknowledgement:label.not.declared; docs/COMPATIBILITY.md).
func (p *Plane) subscribeAtDitto() {
	var sourceLabels []string
	for _, s := range p.sources {
		for _, l := range s.acks.declared {
			if !slices.Contains(sourceLabels, l) {
				sourceLabels = append(sourceLabels, l)
			}
		}
	}
	for _, t := range p.targets {
		if len(t.streams) == 0 {
			continue
		}
		var subs []bridge.Subscription
		for _, ft := range t.t.Topics {
			if ft.Topic == model.TopicConnectionAnnouncements {
				continue
			}
			sub := bridge.Subscription{Stream: ft.Topic, Namespaces: ft.Namespaces, ExtraFields: ft.ExtraFields}
			if dittoFilters(ft.Topic) {
				sub.Filter = ft.Filter
			}
			subs = append(subs, sub)
		}
		var declared []string
		if t.issued != "" && t.issued != ack.LiveResponse {
			declared = []string{t.issued}
		}
		for _, l := range sourceLabels {
			if !slices.Contains(declared, l) {
				declared = append(declared, l)
			}
		}
		sourceLabels = nil
		p.ditto.Target(t.staticSubjects, declared, subs, t.fromDitto)
	}
}

// fromDitto hands a signal Ditto delivered to the target's queue.
func (t *target) fromDitto(d bridge.Delivery) {
	topic, err := protocol.ParseTopic(d.Message.Topic)
	if err != nil {
		t.p.log.Warn().Str("topic", d.Message.Topic).Msg("signal from Ditto with an unknown topic dropped")
		return
	}
	if d.Message.Headers == nil {
		d.Message.Headers = map[string]string{}
	}
	t.deliver(&bus.Signal{Message: d.Message, Topic: topic, Stream: d.Stream, Reply: d.Reply})
}

// matchDitto is match for a signal Ditto delivered: Ditto applied the
// namespaces, the filter and the extra fields of what it filters; live
// messages and live commands get their RQL filter here.
func (ct *compiledTopic) matchDitto(s *bus.Signal) bool {
	if len(ct.namespaces) > 0 && !slices.Contains(ct.namespaces, s.Topic.Namespace) {
		return false
	}
	if ct.filter == nil || dittoFilters(ct.stream) {
		return true
	}
	var doc any = emptyThing
	if s.Message.Extra != nil {
		doc = withExtra(doc, s.Message.Extra)
	}
	return ct.filter.Match(doc, nil)
}

// route is where the answers to a signal a target published go: the
// response stream of the connection that consumed it, or the Ditto session
// that delivered it.
type route struct {
	origin string
	reply  func(*protocol.Message)
}

func routeOf(s *bus.Signal) route { return route{origin: s.Origin, reply: s.Reply} }

func (r route) ok() bool { return r.origin != "" || r.reply != nil }

// answer sends m (an acknowledgement or live response to the signal of r)
// back where the signal came from.
func (p *Plane) answer(r route, m *protocol.Message, t protocol.Topic) {
	if r.reply != nil {
		r.reply(m)
		return
	}
	p.cfg.Bus.Publish(&bus.Signal{Message: m, Topic: t, Stream: ResponseStream(r.origin), Origin: p.id})
}

// upHeaders are the headers a signal goes up to Ditto with: without the
// ones dittoconn keeps for itself (the authorization context travels as
// the session's, the diversion and reply-target headers are the
// connection's business), keeping the conditional and metadata headers
// Ditto's protocol reads from a command.
func upHeaders(h map[string]string) map[string]string {
	out := make(map[string]string, len(h))
	for k, v := range h {
		if protocol.IsInternalHeader(k) && !keptUp[k] {
			continue
		}
		out[k] = v
	}
	return out
}

var keptUp = map[string]bool{
	"if-match": true, "if-none-match": true, "if-equal": true, "condition": true, "live-channel-condition": true,
	"put-metadata": true, "get-metadata": true, "delete-metadata": true, "allow-policy-lockout": true,
	"at-historical-revision": true, "at-historical-timestamp": true, "live-channel-timeout-strategy": true,
}

// up sends one signal a source consumed to Ditto. A request (a command, a
// live message) that requested acknowledgements or wants a response waits
// for Ditto's answer: it goes to the reply target, and with requested
// labels it settles the consumed message on its status (ack.Outcome, as
// Ditto's consumers settle on the aggregated acknowledgements).
func (s *source) up(idx int, msg *protocol.Message, topic *protocol.Topic, h map[string]string,
	labels, subjects []string, set *settlement) client.Outcome {
	p := s.p
	out := *msg
	out.Headers = upHeaders(h)
	request := msg.Status == 0 && (topic.Criterion == protocol.CriterionCommands || topic.Criterion == protocol.CriterionMessages)
	wantsReply := request && h[ack.HeaderResponseRequired] != "false" && s.replyAddress != nil
	waits := len(labels) > 0
	if waits {
		// Ditto's WebSocket refuses requested acknowledgements without a
		// response; the answer is dropped here when nobody wants it.
		out.Headers[ack.HeaderResponseRequired] = "true"
	}
	if !request || (!waits && !wantsReply) {
		p.ditto.Send(subjects, &out, nil)
		return client.Accept
	}
	if waits {
		set.add()
	}
	// The answer function runs on the bridge's socket reader and must not
	// block: settling only queues (client.Message.Settle never blocks on
	// I/O), the reply is published on a goroutine of its own.
	p.ditto.Send(subjects, &out, func(ans *protocol.Message) {
		outcome := client.Accept
		if ans != nil && waits {
			if outcome = ack.Outcome(ans.Status); outcome != client.Accept {
				set.fail(fmt.Sprintf("Ditto answered <%s> with status <%d>.", h[ack.HeaderCorrelationID], ans.Status))
			}
		}
		if ans == nil || !wantsReply { // nil: written, and Ditto answers nothing
			if waits {
				set.done(outcome)
			}
			return
		}
		// not on the link's reader: publishing the answer may take a while
		go func() {
			s.replyAnswer(idx, ans, mergeHeaders(h, ans.Headers))
			if waits {
				set.done(outcome)
			}
		}()
	})
	return client.Accept
}

var _ DittoLink = (*bridge.Link)(nil)
