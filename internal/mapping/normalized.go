package mapping

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
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
		// Ditto parses the selector when it configures the mapper; a JSON
		// error there refuses the connection.
		if e := model.FieldSelectorErr(f); e != nil {
			return nil, &configFailure{message: e.Message, description: e.Description}
		}
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
		if value, err = gojson.Parse(msg.Value); err != nil {
			return nil, mappingFailed("invalid value: %v", err)
		}
	}
	out := ojson.NewObject()
	out.Set("thingId", gojson.Quote(t.entityID()))
	if len(path) == 0 && hasValue {
		obj, ok := value.(*ojson.Object)
		if !ok {
			return nil, mappingFailed("got message with empty path and non-object value")
		}
		for _, k := range obj.Keys() {
			out.Set(k, obj.Value(k))
		}
	} else if hasValue {
		out.SetPointer(path, value)
	}
	if msg.Timestamp != "" {
		out.Set("_modified", gojson.Quote(msg.Timestamp))
	}
	if msg.Revision != 0 {
		out.Set("_revision", json.RawMessage(strconv.FormatInt(msg.Revision, 10)))
	}
	if thingDeleted && msg.Timestamp != "" {
		out.Set("_deleted", gojson.Quote(msg.Timestamp))
	}
	if m.includeDeleted {
		if d := deletedFields(t, path, value, msg.Timestamp); d.Len() > 0 {
			out.Set("_deletedFields", d)
		}
	}
	ctx := ojson.NewObject()
	ctx.Set("topic", gojson.Quote(msg.Topic))
	p := msg.Path
	if p == "" {
		p = "/"
	}
	ctx.Set("path", gojson.Quote(p))
	if hasValue {
		ctx.Set("value", value)
	} else {
		ctx.Set("value", json.RawMessage("null"))
	}
	if msg.Fields != "" {
		ctx.Set("fields", gojson.Quote(msg.Fields))
	}
	hdrs := ojson.NewObject()
	for _, k := range sortedKeys(msg.Headers) {
		hdrs.Set(k, gojson.Quote(msg.Headers[k]))
	}
	ctx.Set("headers", hdrs)
	out.Set("_context", ctx)

	if len(msg.Extra) > 0 {
		if extra, err := gojson.ParseObject(msg.Extra); err == nil {
			out = mergeObjects(out, extra)
		}
	}
	if m.fields != nil {
		out = selectFields(out, m.fields)
	}
	if t.Action == "merged" {
		out = withoutNulls(out)
	}
	return []protocol.External{{Headers: map[string]string{"content-type": ContentTypeJSON}, Text: string(gojson.Marshal(out)), IsText: true}}, nil
}

// deletedFields mirrors the deleted paths with the event's timestamp.
func deletedFields(t topic, path []string, value any, ts string) *ojson.Object {
	d := ojson.NewObject()
	if ts == "" {
		return d
	}
	stamp := gojson.Quote(ts)
	if t.Action == "deleted" && len(path) > 0 {
		d.SetPointer(path, stamp)
		return d
	}
	if t.Action == "merged" && value != nil {
		if ojson.IsNull(value) && len(path) > 0 {
			d.SetPointer(path, stamp)
		} else if obj, ok := value.(*ojson.Object); ok {
			collectNulls(obj, path, d, stamp)
		}
	}
	return d
}

func collectNulls(o *ojson.Object, base []string, d *ojson.Object, stamp json.RawMessage) {
	for _, k := range o.Keys() {
		// regex deletions ({{ ~…~ }}) name no concrete field
		if strings.HasPrefix(k, "{{") && strings.HasSuffix(k, "}}") && (strings.Contains(k, "~") || strings.Contains(k, "/")) {
			continue
		}
		p := append(append([]string(nil), base...), k)
		switch v := o.Value(k).(type) {
		case *ojson.Object:
			collectNulls(v, p, d, stamp)
		default:
			if ojson.IsNull(v) {
				d.SetPointer(p, stamp)
			}
		}
	}
}

// mergeObjects merges b into a; a's values win, objects merge recursively
// (JsonFactory.mergeJsonValues).
func mergeObjects(a, b *ojson.Object) *ojson.Object {
	out := ojson.NewObject()
	for _, k := range a.Keys() {
		av := a.Value(k)
		if ao, ok := av.(*ojson.Object); ok {
			if bo, ok := b.Value(k).(*ojson.Object); ok {
				out.Set(k, mergeObjects(ao, bo))
				continue
			}
		}
		out.Set(k, av)
	}
	for _, k := range b.Keys() {
		if !a.Has(k) {
			out.Set(k, b.Value(k))
		}
	}
	return out
}

func withoutNulls(o *ojson.Object) *ojson.Object {
	out := ojson.NewObject()
	for _, k := range o.Keys() {
		v := o.Value(k)
		if ojson.IsNull(v) {
			continue
		}
		if sub, ok := v.(*ojson.Object); ok {
			sub = withoutNulls(sub)
			if sub.Len() == 0 {
				continue
			}
			v = sub
		}
		out.Set(k, v)
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

// selectFields is JsonObject.Get(JsonFieldSelector).
func selectFields(o *ojson.Object, fields [][]string) *ojson.Object {
	out := ojson.NewObject()
	for _, f := range fields {
		if len(f) == 0 {
			continue
		}
		if v, ok := o.GetPointer(f); ok {
			out.SetPointer(f, v)
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
