package mapping

import (
	"errors"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"

	"fmt"
	"sort"
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// DefaultMapperID is the id of the mapper used when a payloadMapping is
// empty or names nothing known (Ditto's registry "default" mapper).
const DefaultMapperID = "default"

// HeaderInboundPayloadMapper is set on every inbound message to the id of
// the mapper that produced it.
const HeaderInboundPayloadMapper = "ditto-inbound-payload-mapper"

// Configured is one instantiated mapping definition: an engine's mapper
// with the definition's conditions, content-type blocklist and message
// limits around it.
type Configured struct {
	ID     string // mapping definition id, alias, or DefaultMapperID
	Engine string // alias of the engine
	Mapper Mapper

	incomingConditions []*template.Template // see compileConditions
	outgoingConditions []*template.Template
	blocklist          []string
	cfg                Config
}

// Outcome is what one mapper of a chain made of one message. No messages,
// no error = dropped; Skipped = dropped because the conditions did not hold
// or the content type is blocked.
type Outcome[T any] struct {
	Mapper   string
	Messages []T
	Skipped  bool
	Err      error
}

// MapIncoming runs the mapper on ext if its content type is not blocked and
// its incomingConditions hold.
func (c *Configured) MapIncoming(ext protocol.External) Outcome[protocol.Message] {
	out := Outcome[protocol.Message]{Mapper: c.ID}
	if ct, ok := headerIgnoreCase(ext.Headers, "content-type"); ok && contains(c.blocklist, ct) {
		out.Skipped = true
		return out
	}
	if len(c.incomingConditions) > 0 && !c.conditionsHold(c.incomingConditions, externalLookup(ext, c.cfg)) {
		out.Skipped = true
		return out
	}
	if limit := c.cfg.MaxInboundPayloadBytes; limit > 0 && len(ext.Text)+len(ext.Bytes) > limit {
		out.Err = mappingFailed("the payload of %d bytes exceeds the limit of %d bytes", len(ext.Text)+len(ext.Bytes), limit)
		return out
	}
	msgs, err := safeIncoming(c.Mapper, ext)
	if err != nil {
		out.Err = fmt.Errorf("mapper <%s>: %w", c.ID, err)
		return out
	}
	if limit := c.cfg.MaxMappedInboundMessages; limit > 0 && len(msgs) > limit {
		out.Err = tooManyMessages(c.ID, len(msgs), limit)
		return out
	}
	for i := range msgs {
		h := make(map[string]string, len(msgs[i].Headers)+1)
		for k, v := range msgs[i].Headers {
			h[k] = v
		}
		h[HeaderInboundPayloadMapper] = c.ID
		msgs[i].Headers = h
	}
	out.Messages = msgs
	return out
}

// MapOutgoing runs the mapper on msg if its outgoingConditions hold.
func (c *Configured) MapOutgoing(msg protocol.Message) Outcome[protocol.External] {
	out := Outcome[protocol.External]{Mapper: c.ID}
	if len(c.outgoingConditions) > 0 && !c.conditionsHold(c.outgoingConditions, signalLookup(msg, c.cfg)) {
		out.Skipped = true
		return out
	}
	exts, err := safeOutgoing(c.Mapper, msg)
	if err != nil {
		out.Err = fmt.Errorf("mapper <%s>: %w", c.ID, err)
		return out
	}
	if limit := c.cfg.MaxMappedOutboundMessages; limit > 0 && len(exts) > limit {
		out.Err = tooManyMessages(c.ID, len(exts), limit)
		return out
	}
	out.Messages = exts
	return out
}

// compileConditions compiles mapping conditions once, as Ditto evaluates
// them: the template "{{ fn:default('true') | <condition> }}" must resolve
// to something. A nil entry does not compile in its Set and never holds.
func compileConditions(conds []string, set template.Set) []*template.Template {
	out := make([]*template.Template, 0, len(conds))
	for _, c := range conds {
		t, err := set.Compile("{{ fn:default('true') | " + c + " }}")
		if err != nil {
			t = nil
		}
		out = append(out, t)
	}
	return out
}

func (c *Configured) conditionsHold(conds []*template.Template, sc values) bool {
	for _, cond := range conds {
		if cond == nil {
			return false
		}
		if _, err := cond.Resolve(sc); err != nil {
			return false
		}
	}
	return true
}

// safeIncoming turns a panicking mapper into an error: a mapper must never
// take the connection down.
func safeIncoming(m Mapper, ext protocol.External) (msgs []protocol.Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msgs, err = nil, mappingFailed("mapper panicked: %v", r)
		}
	}()
	return m.MapIncoming(ext)
}

func safeOutgoing(m Mapper, msg protocol.Message) (exts []protocol.External, err error) {
	defer func() {
		if r := recover(); r != nil {
			exts, err = nil, mappingFailed("mapper panicked: %v", r)
		}
	}()
	return m.MapOutgoing(msg)
}

// tooManyMessages is the failure of a mapper that produced more than
// mapper-limits allows.
func tooManyMessages[N int | int64](id string, n N, limit int) error {
	return mappingFailed("the payload mapping '%s' produced %d messages, which exceeds the limit of %d", id, n, limit)
}

// Chain is the list of mappers of one source or target.
type Chain []*Configured

// MapIncoming runs every mapper of the chain on ext (each sees the same
// message) and returns one outcome per mapper, in chain order.
func (ch Chain) MapIncoming(ext protocol.External) []Outcome[protocol.Message] {
	out := make([]Outcome[protocol.Message], 0, len(ch))
	for _, c := range ch {
		out = append(out, c.MapIncoming(ext))
	}
	return out
}

// MapOutgoing runs every mapper of the chain on msg.
func (ch Chain) MapOutgoing(msg protocol.Message) []Outcome[protocol.External] {
	out := make([]Outcome[protocol.External], 0, len(ch))
	for _, c := range ch {
		out = append(out, c.MapOutgoing(msg))
	}
	return out
}

// Registry holds a connection's instantiated mappers: its mapping
// definitions, the built-in aliases usable without options, and the
// default mapper.
type Registry struct {
	defaultMapper *Configured
	custom        map[string]*Configured
	fallback      map[string]*Configured
}

// NewRegistry instantiates every mapping definition of a connection. A
// definition whose configuration fails (ErrConfigurationFailed) fails the
// registry; one of an unknown engine or with invalid options is left out,
// as Ditto's factory leaves it out (validation refuses a payloadMapping
// naming it, so no chain reaches for it).
func NewRegistry(defs map[string]model.MappingDefinition, cfg Config) (*Registry, error) {
	r := &Registry{custom: map[string]*Configured{}, fallback: map[string]*Configured{}}
	var err error
	if r.defaultMapper, err = New(DefaultMapperID, model.MappingDefinition{MappingEngine: "Ditto"}, cfg); err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(defs))
	for id := range defs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		c, err := New(id, defs[id], cfg)
		if errors.Is(err, ErrConfigurationFailed) {
			return nil, err
		}
		if err != nil {
			continue
		}
		r.custom[id] = c
	}
	for alias, e := range engines {
		if e.mandatory {
			continue
		}
		c, err := New(alias, model.MappingDefinition{MappingEngine: alias}, cfg)
		if err != nil {
			return nil, err
		}
		r.fallback[alias] = c
	}
	return r, nil
}

// ForConnection builds the registry of a connection.
func ForConnection(c *model.Connection, cfg Config) (*Registry, error) {
	if cfg.ConnectionID == "" {
		cfg.ConnectionID = c.ID
	}
	cfg.PoolSize = PoolSize(c.ProcessorPoolSize, cfg)
	return NewRegistry(c.MappingDefinitions, cfg)
}

// Chain resolves a source's or target's payloadMapping: definition ids
// first, then built-in aliases, else the default mapper; an empty list is
// the default mapper alone.
func (r *Registry) Chain(payloadMapping []string) Chain {
	if len(payloadMapping) == 0 {
		return Chain{r.defaultMapper}
	}
	ch := make(Chain, 0, len(payloadMapping))
	for _, name := range payloadMapping {
		switch {
		case r.custom[name] != nil:
			ch = append(ch, r.custom[name])
		case r.fallback[name] != nil:
			ch = append(ch, r.fallback[name])
		default:
			ch = append(ch, r.defaultMapper)
		}
	}
	return ch
}

// Known reports whether name resolves to a definition or a usable alias
// (DefaultMessageMapperRegistry.validatePayloadMapping).
func (r *Registry) Known(name string) bool {
	return r.custom[name] != nil || r.fallback[name] != nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func headerIgnoreCase(h map[string]string, key string) (string, bool) {
	if v, ok := h[key]; ok {
		return v, true
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return "", false
}

// externalScope is the placeholders of incoming conditions
// (Resolvers.forExternalMessage, reduced to header:, connection:, time:,
// source:).
var externalScope = template.Set{template.Header, template.Connection, template.Time, template.Source}

func externalLookup(ext protocol.External, cfg Config) values {
	return values{now: cfg.now, lk: func(prefix, name string) (string, bool) {
		switch prefix {
		case "header":
			return headerIgnoreCase(ext.Headers, name)
		case "connection":
			if name == "id" && cfg.ConnectionID != "" {
				return cfg.ConnectionID, true
			}
		case "source":
			if name == "address" && ext.Address != "" {
				return ext.Address, true
			}
		}
		return "", false
	}}
}

// signalScope is the placeholders of outgoing conditions
// (Resolvers.forOutboundSignal, reduced to header:, topic:, thing:,
// policy:, entity:, feature:, resource:, connection:, time:).
var signalScope = template.Set{template.Header, template.Topic, template.Thing, template.Policy, template.Entity,
	template.Feature, template.Resource, template.Connection, template.Time}

func signalLookup(msg protocol.Message, cfg Config) values {
	t, terr := parseTopic(msg.Topic)
	return values{now: cfg.now, lk: func(prefix, name string) (string, bool) {
		switch prefix {
		case "header":
			return headerIgnoreCase(msg.Headers, name)
		case "connection":
			if name == "id" && cfg.ConnectionID != "" {
				return cfg.ConnectionID, true
			}
			return "", false
		}
		if terr != nil {
			return "", false
		}
		switch prefix {
		case "topic":
			return topicField(t, msg.Topic, name)
		case "thing", "policy":
			if (prefix == "thing") != (t.Group == "things") || (prefix == "policy") != (t.Group == "policies") {
				return "", false
			}
			return entityField(t, name)
		case "entity":
			return entityField(t, name)
		case "feature":
			keys := pointerKeys(msg.Path)
			if name == "id" && t.Group == "things" && len(keys) >= 2 && keys[0] == "features" {
				return keys[1], true
			}
		case "resource":
			switch name {
			case "type":
				return strings.TrimSuffix(t.Group, "s"), true
			case "path":
				if msg.Path == "" {
					return "/", true
				}
				return msg.Path, true
			}
		}
		return "", false
	}}
}

func entityField(t topic, name string) (string, bool) {
	switch name {
	case "id":
		return t.entityID(), true
	case "namespace":
		return t.Namespace, true
	case "name":
		return t.Name, true
	}
	return "", false
}

func topicField(t topic, full, name string) (string, bool) {
	var v string
	switch name {
	case "full":
		v = full
	case "namespace":
		v = t.Namespace
	case "entityName":
		v = t.Name
	case "group":
		v = t.Group
	case "channel":
		v = t.Channel
	case "criterion":
		v = t.Criterion
	case "action":
		v = t.Action
	case "subject":
		v = t.Subject
	case "action-subject":
		v = t.Action
		if v == "" {
			v = t.Subject
		}
	}
	return v, v != ""
}
