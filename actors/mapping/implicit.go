package mapping

import (
	"github.com/dittoconn/dittoconn/actors/placeholder/template"

	"encoding/json"
	"strings"

	"github.com/dittoconn/dittoconn/actors/protocol"
)

// implicitThingCreationMapper is the inbound "ImplicitThingCreation"
// engine: every message becomes a CreateThing from the thing template with
// header:, time: (and request:) placeholders resolved.
type implicitThingCreationMapper struct {
	thing              compiled // the thing JSON, in headerTimeScope, modeStrict
	commandHeaders     []namedTemplate
	allowPolicyLockout bool
	cfg                Config
}

func newImplicitThingCreationMapper(id string, opts Options, cfg Config) (Mapper, error) {
	v, ok := opts.raw("thing")
	if !ok {
		return nil, configInvalid("mapper <%s>: the property 'thing' is missing", id)
	}
	thing, ok := v.(*object)
	if !ok {
		return nil, configInvalid("mapper <%s>: the property 'thing' is not an object", id)
	}
	tid, ok := thing.get("thingId")
	tids, isStr := isJSONString(tid)
	if !ok || !isStr {
		return nil, configInvalid("mapper <%s>: the property 'thing/thingId' is missing", id)
	}
	if !template.HasPlaceholders(tids) && !validThingID(tids) {
		return nil, configInvalid("mapper <%s>: thing ID <%s> is not valid", id, tids)
	}
	if pid, ok := thing.get("policyId"); ok {
		if s, _ := isJSONString(pid); !template.HasPlaceholders(s) && !validThingID(s) {
			return nil, configInvalid("mapper <%s>: policy ID <%s> is not valid", id, s)
		}
	}
	m := &implicitThingCreationMapper{thing: compileIn(headerTimeScope, string(marshal(thing)), modeStrict), allowPolicyLockout: opts.Bool("allowPolicyLockout", true), cfg: cfg}
	if h, ok := opts.object("commandHeaders"); ok && h.len() > 0 {
		for _, k := range h.keys {
			m.commandHeaders = append(m.commandHeaders, namedTemplate{strings.ToLower(k),
				compileIn(headerTimeScope, formatAsString(h.vals[k]), modeOptional)})
		}
	} else {
		m.commandHeaders = []namedTemplate{{"if-none-match", compileIn(headerTimeScope, "*", modeOptional)}}
	}
	return m, nil
}

// headerTimeScope is header:, time: and request: for the inbound mappers;
// request:subjectId needs the source's authorization context, which the
// data plane will pass in later.
var headerTimeScope = template.Set{template.Header, template.Time, template.Request}

func headerTimeLookup(ext protocol.External, cfg Config) values {
	return values{now: cfg.now, lk: func(prefix, name string) (string, bool) {
		switch prefix {
		case "header":
			return headerIgnoreCase(ext.Headers, name)
		case "request":
			if name == "subjectId" {
				return headerIgnoreCase(ext.Headers, "ditto-auth-subject")
			}
		}
		return "", false
	}}
}

// thingFieldOrder is the order Thing.toJson writes.
var thingFieldOrder = []string{"thingId", "policyId", "definition", "attributes", "features"}

func (m *implicitThingCreationMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	lk := headerTimeLookup(ext, m.cfg)
	text, _, err := m.thing.resolve(lk)
	if err != nil {
		return nil, mappingFailed("thing template: %v", err)
	}
	thing, err := parseObject([]byte(text))
	if err != nil {
		return nil, mappingFailed("thing template is not JSON after placeholder resolution: %v", err)
	}
	tid, _ := thing.get("thingId")
	tids, _ := isJSONString(tid)
	ns, name, ok := strings.Cut(tids, ":")
	if !ok || !validThingID(tids) {
		return nil, mappingFailed("the thing ID <%s> is not valid", tids)
	}
	value := newObject()
	for _, k := range thingFieldOrder {
		if v, ok := thing.get(k); ok {
			value.set(k, v)
		}
	}
	for _, k := range thing.keys {
		if k != "_policy" && k != "_copyPolicyFrom" {
			if _, done := value.get(k); !done {
				value.set(k, thing.vals[k])
			}
		}
	}
	if p, ok := thing.get("_policy"); ok {
		if _, isObj := p.(*object); !isObj {
			return nil, mappingFailed("_policy is not an object")
		}
		value.set("_policy", p)
	}
	if c, ok := thing.get("_copyPolicyFrom"); ok {
		value.set("_copyPolicyFrom", c)
	}
	headers := map[string]string{}
	for _, kv := range m.commandHeaders {
		if v, ok, _ := kv.tmpl.resolve(lk); ok {
			headers[kv.name] = v
		}
	}
	headers["allow-policy-lockout"] = "false"
	if m.allowPolicyLockout {
		headers["allow-policy-lockout"] = "true"
	}
	return []protocol.Message{{Topic: ns + "/" + name + "/things/twin/commands/create", Headers: headers, Path: "/",
		Value: json.RawMessage(marshal(value))}}, nil
}

// MapOutgoing turns an error response to the created thing into a
// failure (Ditto rethrows it), anything else into nothing.
func (m *implicitThingCreationMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	t, err := parseTopic(msg.Topic)
	if err != nil || t.Criterion != "errors" || len(msg.Value) == 0 {
		return nil, nil
	}
	o, err := parseObject(msg.Value)
	if err != nil {
		return nil, nil
	}
	desc := ""
	if v, ok := o.get("message"); ok {
		desc = formatAsString(v)
	}
	code := ""
	if v, ok := o.get("error"); ok {
		code = formatAsString(v)
	}
	return nil, mappingFailed("thing creation failed: %s: %s", code, desc)
}
