package dataplane

import (
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Response diversion, as Ditto's ResponseDiversionInterceptor does it: a
// response that would go to the reply target of a diversion source's
// source (is-diversion-source, header divert-response-to-connection: C,
// set by the header mapping or a payload mapper) goes instead to connection
// C, which publishes it on one of its own targets when C is a diversion
// target (is-diversion-target) that authorizes the source
// (authorized-connections-as-sources). The response then carries
// diverted-response-from-connection. Only the types in
// divert-expected-response-types (default response,error) are diverted;
// preserve-normal-response-via-source keeps the normal reply as well.
//
// The response reaches this point only when the source's reply target
// expects its type (Ditto drops the others before its interceptor sees
// them), so a source without a reply target diverts nothing, as in Ditto.
// Diverted responses travel on the bus stream DivertStream(C); C subscribes
// to it while it has a connected client. Costs: one header lookup per
// response of a diversion source; nothing for other connections.

// Ditto's header names (DittoHeaderDefinition) and specificConfig keys.
const (
	HeaderDivertTo        = "divert-response-to-connection"
	HeaderDivertTypes     = "divert-expected-response-types"
	HeaderDivertedFrom    = "diverted-response-from-connection"
	headerReplyTarget     = "ditto-reply-target"
	configDiversionSource = "is-diversion-source"
	configDiversionTarget = "is-diversion-target"
	configAuthorized      = "authorized-connections-as-sources"
	configPreserve        = "preserve-normal-response-via-source"
)

// DivertStream is the bus stream of the responses diverted to connection id.
func DivertStream(id string) string { return "_diverted/" + id }

// diversion is a connection's diversion configuration.
type diversion struct {
	// enabled: is-diversion-source or is-diversion-target (Ditto builds its
	// interceptor for either).
	enabled bool
	// target: is-diversion-target; the plane subscribes to DivertStream.
	target     bool
	preserve   bool
	authorized map[string]struct{}
}

func newDiversion(c *model.Connection) diversion {
	d := diversion{
		target:   javaBool(c.SpecificConfig[configDiversionTarget]),
		preserve: javaBool(strings.TrimSpace(c.SpecificConfig[configPreserve])),
	}
	d.enabled = d.target || javaBool(c.SpecificConfig[configDiversionSource])
	for _, id := range strings.Split(c.SpecificConfig[configAuthorized], ",") {
		if id = strings.TrimSpace(id); id != "" {
			if d.authorized == nil {
				d.authorized = map[string]struct{}{}
			}
			d.authorized[id] = struct{}{}
		}
	}
	return d
}

// javaBool is Java's Boolean.parseBoolean, which Ditto reads these keys with.
func javaBool(v string) bool { return strings.EqualFold(v, "true") }

func (d *diversion) authorizes(from string) bool {
	_, ok := d.authorized[strings.TrimSpace(from)]
	return ok
}

// responseType is Ditto's ResponseType of a response: error for error
// responses, nack for acknowledgements with a failure, response otherwise.
func responseType(resp *protocol.Message, t *protocol.Topic) string {
	switch {
	case t.Criterion == protocol.CriterionErrors:
		return "error"
	case t.Criterion == protocol.CriterionAcks && (resp.Status < 200 || resp.Status >= 300):
		return "nack"
	}
	return "response"
}

// divertTypes are the response types divert-expected-response-types
// names: response,error when it is absent or blank; unknown names are
// ignored, and when none is left every type is diverted (nil).
func divertTypes(v string) map[string]bool {
	if strings.TrimSpace(v) == "" {
		return map[string]bool{"response": true, "error": true}
	}
	var out map[string]bool
	for _, t := range strings.Split(v, ",") {
		switch t = strings.TrimSpace(t); t {
		case "response", "error", "nack":
			if out == nil {
				out = map[string]bool{}
			}
			out[t] = true
		}
	}
	return out
}

// divert applies the diversion rules to a response bound for the source's
// reply target (headers: the request's headers overlaid with the
// response's). It reports whether the normal reply must not be published:
// the response was diverted (and is not to be preserved), or it claims to
// be diverted from a connection this one does not authorize.
func (s *source) divert(resp *protocol.Message, t *protocol.Topic, headers map[string]string, info monitor.Info) bool {
	p := s.p
	d := &p.diversion
	if !d.enabled {
		return false
	}
	if from, ok := headers[HeaderDivertedFrom]; ok {
		if d.authorizes(from) {
			return false
		}
		p.log.Warn().Str("correlationId", info.CorrelationID).Str("from", from).
			Msg("Response was diverted but not authorized, dropping it.")
		return true
	}
	to, ok := headers[HeaderDivertTo]
	if !ok {
		return false
	}
	if types := divertTypes(headers[HeaderDivertTypes]); types != nil && !types[responseType(resp, t)] {
		return false
	}
	to = strings.TrimSpace(to)
	if !model.ValidID(to) || to == p.id {
		// Ditto: an invalid or own id fails the diversion; the response
		// takes its normal way.
		return false
	}
	h := make(map[string]string, len(resp.Headers)+4)
	for k, v := range resp.Headers {
		h[k] = v
	}
	h[HeaderDivertTo] = to
	if v, ok := headers[HeaderDivertTypes]; ok {
		h[HeaderDivertTypes] = v
	}
	h[HeaderDivertedFrom] = p.id
	// The index of the source: the diversion target publishes on its target
	// of the same index when it has several (internal, never published).
	for i, src := range p.sources {
		if src == s {
			h[headerReplyTarget] = strconv.Itoa(i)
			break
		}
	}
	out := *resp
	out.Headers = h
	if p.cfg.Bus.Publish(&bus.Signal{Message: &out, Topic: *t, Stream: DivertStream(to), Origin: p.id}) == 0 {
		p.log.Warn().Str("correlationId", info.CorrelationID).Str("to", to).
			Msg("Diverted response lost: the diversion target connection is not open here.")
	}
	return !d.preserve
}

// deliverDiverted runs on the bus for responses another connection diverted
// to this one: an authorized one is published on the target of the source's
// index (the only target when there is one), through its payload and
// header mapping; the target's topics and authorization play no part.
func (p *Plane) deliverDiverted(s *bus.Signal) {
	from := s.Message.Headers[HeaderDivertedFrom]
	if !p.diversion.authorizes(from) {
		p.log.Warn().Str("correlationId", s.Message.Headers["correlation-id"]).Str("from", from).
			Msg("Response was diverted but not authorized, dropping it.")
		return
	}
	var t *target
	switch {
	case len(p.targets) == 1:
		t = p.targets[0]
	case len(p.targets) > 1:
		if i, err := strconv.Atoi(s.Message.Headers[headerReplyTarget]); err == nil && i >= 0 && i < len(p.targets) {
			t = p.targets[i]
		}
	}
	if t == nil {
		p.log.Warn().Str("correlationId", s.Message.Headers["correlation-id"]).Str("from", from).
			Msg("No target for the diverted response.")
		return
	}
	// Origin "": the response requests nothing of this connection (no
	// acknowledgement, no live answer).
	sig := &bus.Signal{Message: s.Message, Topic: s.Topic, Stream: s.Stream}
	now := p.now()
	t.st.c[monitor.Dispatched].RecordAt(true, now)
	info := p.info(s.Message.Headers, s.Message.Value, &s.Topic, now)
	t.st.l[monitor.Dispatched].Success(info)
	t.enqueue(sig, nil, now) // no source of this connection to throttle
}
