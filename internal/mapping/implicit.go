package mapping

import (
	"github.com/dittoconn/dittoconn/internal/placeholder/template"

	"encoding/json"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
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
	thing, ok := v.(*ojson.Object)
	if !ok {
		return nil, configInvalid("mapper <%s>: the property 'thing' is not an object", id)
	}
	tid, ok := thing.Get("thingId")
	tids, isStr := ojson.Unquote(tid)
	if !ok || !isStr {
		return nil, configInvalid("mapper <%s>: the property 'thing/thingId' is missing", id)
	}
	if !template.HasPlaceholders(tids) && !validThingID(tids) {
		return nil, configInvalid("mapper <%s>: thing ID <%s> is not valid", id, tids)
	}
	if pid, ok := thing.Get("policyId"); ok {
		if s, _ := ojson.Unquote(pid); !template.HasPlaceholders(s) && !validThingID(s) {
			return nil, configInvalid("mapper <%s>: policy ID <%s> is not valid", id, s)
		}
	}
	m := &implicitThingCreationMapper{thing: compileIn(headerTimeScope, string(gojson.Marshal(thing)), modeStrict), allowPolicyLockout: opts.Bool("allowPolicyLockout", true), cfg: cfg}
	if h, ok := opts.object("commandHeaders"); ok && h.Len() > 0 {
		for _, k := range h.Keys() {
			m.commandHeaders = append(m.commandHeaders, namedTemplate{strings.ToLower(k),
				compileIn(headerTimeScope, gojson.FormatAsString(h.Value(k)), modeOptional)})
		}
	} else {
		m.commandHeaders = []namedTemplate{{"if-none-match", compileIn(headerTimeScope, "*", modeOptional)}}
	}
	return m, nil
}

// headerTimeScope is header:, time: and request: for the inbound mappers;
// request:subjectId is the source's authorization subject the data plane
// passes in External.AuthSubject.
var headerTimeScope = template.Set{template.Header, template.Time, template.Request}

func headerTimeLookup(ext protocol.External, cfg Config) values {
	return values{now: cfg.now, lk: func(prefix, name string) (string, bool) {
		switch prefix {
		case "header":
			return headerIgnoreCase(ext.Headers, name)
		case "request":
			if name == "subjectId" && ext.AuthSubject != "" {
				return ext.AuthSubject, true
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
	thing, err := gojson.ParseObject([]byte(text))
	if err != nil {
		return nil, mappingFailed("thing template is not JSON after placeholder resolution: %v", err)
	}
	tid, _ := thing.Get("thingId")
	tids, _ := ojson.Unquote(tid)
	ns, name, ok := strings.Cut(tids, ":")
	if !ok || !validThingID(tids) {
		return nil, mappingFailed("the thing ID <%s> is not valid", tids)
	}
	value := ojson.NewObject()
	for _, k := range thingFieldOrder {
		if v, ok := thing.Get(k); ok {
			value.Set(k, v)
		}
	}
	for _, k := range thing.Keys() {
		if k != "_policy" && k != "_copyPolicyFrom" {
			if _, done := value.Get(k); !done {
				value.Set(k, thing.Value(k))
			}
		}
	}
	if p, ok := thing.Get("_policy"); ok {
		if _, isObj := p.(*ojson.Object); !isObj {
			return nil, mappingFailed("_policy is not an object")
		}
		value.Set("_policy", p)
	}
	if c, ok := thing.Get("_copyPolicyFrom"); ok {
		value.Set("_copyPolicyFrom", c)
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
		Value: json.RawMessage(gojson.Marshal(value))}}, nil
}

// MapOutgoing turns an error response to the created thing into a
// failure (Ditto rethrows it), anything else into nothing.
func (m *implicitThingCreationMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	t, err := parseTopic(msg.Topic)
	if err != nil || t.Criterion != "errors" || len(msg.Value) == 0 {
		return nil, nil
	}
	o, err := gojson.ParseObject(msg.Value)
	if err != nil {
		return nil, nil
	}
	desc := ""
	if v, ok := o.Get("message"); ok {
		desc = gojson.FormatAsString(v)
	}
	code := ""
	if v, ok := o.Get("error"); ok {
		code = gojson.FormatAsString(v)
	}
	return nil, mappingFailed("thing creation failed: %s: %s", code, desc)
}
