package mapping

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/actors/protocol"
)

// normalizedMapper is the outbound-only "Normalized" engine: thing change
// events become the changed part of the thing, with _context,
// _modified/_revision and (optionally) deletion markers.
type normalizedMapper struct {
	fields         [][]string // nil = all
	includeDeleted bool
}

func newNormalizedMapper(_ string, opts Options, _ Config) (Mapper, error) {
	m := &normalizedMapper{includeDeleted: opts.Bool("includeDeletedFields", false)}
	if f, ok := opts.String("fields"); ok {
		m.fields = parseFieldSelector(f)
	}
	return m, nil
}

func (*normalizedMapper) MapIncoming(protocol.External) ([]protocol.Message, error) { return nil, nil }

func (m *normalizedMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	t, err := parseTopic(msg.Topic)
	if err != nil {
		return nil, err
	}
	path := pointerKeys(msg.Path)
	thingDeleted := t.Action == "deleted" && len(path) == 0
	change := t.Action == "created" || t.Action == "modified" || t.Action == "merged" ||
		(m.includeDeleted && t.Action == "deleted") || thingDeleted
	if t.Group != "things" || t.Criterion != "events" || !change {
		return nil, nil
	}
	var value any
	hasValue := len(msg.Value) > 0
	if hasValue {
		if value, err = parseJSON(msg.Value); err != nil {
			return nil, mappingFailed("invalid value: %v", err)
		}
	}
	out := newObject()
	out.set("thingId", jsonString(t.entityID()))
	if len(path) == 0 && hasValue {
		obj, ok := value.(*object)
		if !ok {
			return nil, mappingFailed("got message with empty path and non-object value")
		}
		for _, k := range obj.keys {
			out.set(k, obj.vals[k])
		}
	} else if hasValue {
		out.setPointer(path, value)
	}
	if msg.Timestamp != "" {
		out.set("_modified", jsonString(msg.Timestamp))
	}
	if msg.Revision != 0 {
		out.set("_revision", json.RawMessage(strconv.FormatInt(msg.Revision, 10)))
	}
	if thingDeleted && msg.Timestamp != "" {
		out.set("_deleted", jsonString(msg.Timestamp))
	}
	if m.includeDeleted {
		if d := deletedFields(t, path, value, msg.Timestamp); d.len() > 0 {
			out.set("_deletedFields", d)
		}
	}
	ctx := newObject()
	ctx.set("topic", jsonString(msg.Topic))
	p := msg.Path
	if p == "" {
		p = "/"
	}
	ctx.set("path", jsonString(p))
	if hasValue {
		ctx.set("value", value)
	} else {
		ctx.set("value", json.RawMessage("null"))
	}
	if msg.Fields != "" {
		ctx.set("fields", jsonString(msg.Fields))
	}
	hdrs := newObject()
	for _, k := range sortedKeys(msg.Headers) {
		hdrs.set(k, jsonString(msg.Headers[k]))
	}
	ctx.set("headers", hdrs)
	out.set("_context", ctx)

	if len(msg.Extra) > 0 {
		if extra, err := parseObject(msg.Extra); err == nil {
			out = mergeObjects(out, extra)
		}
	}
	if m.fields != nil {
		out = selectFields(out, m.fields)
	}
	if t.Action == "merged" {
		out = withoutNulls(out)
	}
	return []protocol.External{{Headers: map[string]string{"content-type": ContentTypeJSON}, Text: string(marshal(out)), IsText: true}}, nil
}

// deletedFields mirrors the deleted paths with the event's timestamp.
func deletedFields(t topic, path []string, value any, ts string) *object {
	d := newObject()
	if ts == "" {
		return d
	}
	stamp := jsonString(ts)
	if t.Action == "deleted" && len(path) > 0 {
		d.setPointer(path, stamp)
		return d
	}
	if t.Action == "merged" && value != nil {
		if isJSONNull(value) && len(path) > 0 {
			d.setPointer(path, stamp)
		} else if obj, ok := value.(*object); ok {
			collectNulls(obj, path, d, stamp)
		}
	}
	return d
}

func collectNulls(o *object, base []string, d *object, stamp json.RawMessage) {
	for _, k := range o.keys {
		// regex deletions ({{ ~…~ }}) name no concrete field
		if strings.HasPrefix(k, "{{") && strings.HasSuffix(k, "}}") && (strings.Contains(k, "~") || strings.Contains(k, "/")) {
			continue
		}
		p := append(append([]string(nil), base...), k)
		switch v := o.vals[k].(type) {
		case *object:
			collectNulls(v, p, d, stamp)
		default:
			if isJSONNull(v) {
				d.setPointer(p, stamp)
			}
		}
	}
}

// mergeObjects merges b into a; a's values win, objects merge recursively
// (JsonFactory.mergeJsonValues).
func mergeObjects(a, b *object) *object {
	out := newObject()
	for _, k := range a.keys {
		av := a.vals[k]
		if ao, ok := av.(*object); ok {
			if bo, ok := b.vals[k].(*object); ok {
				out.set(k, mergeObjects(ao, bo))
				continue
			}
		}
		out.set(k, av)
	}
	for _, k := range b.keys {
		if _, ok := a.vals[k]; !ok {
			out.set(k, b.vals[k])
		}
	}
	return out
}

func withoutNulls(o *object) *object {
	out := newObject()
	for _, k := range o.keys {
		v := o.vals[k]
		if isJSONNull(v) {
			continue
		}
		if sub, ok := v.(*object); ok {
			sub = withoutNulls(sub)
			if sub.len() == 0 {
				continue
			}
			v = sub
		}
		out.set(k, v)
	}
	return out
}

// parseFieldSelector parses "a,b/c,features(x,y/z)" into pointers.
func parseFieldSelector(s string) [][]string {
	var out [][]string
	for _, part := range splitSelector(s, ',') {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		open := strings.IndexByte(part, '(')
		if open < 0 || !strings.HasSuffix(part, ")") {
			out = append(out, pointerKeys(part))
			continue
		}
		prefix := pointerKeys(part[:open])
		for _, sub := range parseFieldSelector(part[open+1 : len(part)-1]) {
			out = append(out, append(append([]string(nil), prefix...), sub...))
		}
	}
	return out
}

// selectFields is JsonObject.get(JsonFieldSelector).
func selectFields(o *object, fields [][]string) *object {
	out := newObject()
	for _, f := range fields {
		if len(f) == 0 {
			continue
		}
		if v, ok := o.getPointer(f); ok {
			out.setPointer(f, v)
		}
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	return keys
}

// splitSelector splits a field selector at sep outside parentheses and
// quotes.
func splitSelector(s string, sep byte) []string {
	var parts []string
	var quote byte
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '(':
			depth++
		case c == ')':
			depth--
		case c == sep && depth == 0:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}
