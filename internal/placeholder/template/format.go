package template

import (
	"bytes"
	"encoding/json"
	"strings"
)

// fn:format('<template>') (Ditto 3.9) renders each pipeline value, a JSON
// object, through a small template: {field}, {/json/pointer}, sections
// {#array}...{/array} iterating an array ({.} is the current element),
// \{ and \} for literal braces. Missing or null fields render as "", arrays
// of primitives outside a section expand into several values. Values that
// are not JSON objects are skipped.

type fmtPart struct {
	static  string
	field   string // "" for static text
	section []fmtPart
	isSect  bool
}

const maxFormatResults = 1000 // bounds the cartesian product of array fields

func parseFormat(tpl string) ([]fmtPart, bool) {
	parts, rest, ok := parseFormatUntil(tpl, "", 0)
	return parts, ok && rest == ""
}

// parseFormatUntil parses until the closing tag {/closing} (or the end when
// closing is ""), returning the unparsed remainder after the closing tag.
func parseFormatUntil(s, closing string, depth int) ([]fmtPart, string, bool) {
	if depth > 32 {
		return nil, "", false
	}
	var parts []fmtPart
	var static strings.Builder
	flush := func() {
		if static.Len() > 0 {
			parts = append(parts, fmtPart{static: static.String()})
			static.Reset()
		}
	}
	for len(s) > 0 {
		c := s[0]
		switch {
		case c == '\\' && len(s) > 1 && (s[1] == '{' || s[1] == '}'):
			static.WriteByte(s[1])
			s = s[2:]
		case c == '{':
			end := strings.IndexByte(s, '}')
			if end < 0 {
				static.WriteString(s)
				s = ""
				continue
			}
			tag := s[1:end]
			switch {
			case strings.HasPrefix(tag, "#") && len(tag) > 1:
				flush()
				inner, rest, ok := parseFormatUntil(s[end+1:], tag[1:], depth+1)
				if !ok {
					return nil, "", false // unclosed section
				}
				parts = append(parts, fmtPart{field: tag[1:], section: inner, isSect: true})
				s = rest
			case strings.HasPrefix(tag, "/") && !strings.Contains(tag[1:], "/"):
				if closing != "" && tag[1:] == closing {
					flush()
					return parts, s[end+1:], true
				}
				// a closing tag nobody opened stays text, as in Ditto
				static.WriteString(s[:end+1])
				s = s[end+1:]
			case tag == "":
				static.WriteString("{}")
				s = s[end+1:]
			default:
				flush()
				parts = append(parts, fmtPart{field: tag})
				s = s[end+1:]
			}
		default:
			static.WriteByte(c)
			s = s[1:]
		}
	}
	flush()
	return parts, "", closing == ""
}

func applyFormat(parts []fmtPart, el element) element {
	if el.state != stResolved {
		return el
	}
	var all []string
	for _, v := range el.vals {
		dec := json.NewDecoder(strings.NewReader(v))
		dec.UseNumber()
		var obj any
		if dec.Decode(&obj) != nil {
			continue
		}
		if _, isObj := obj.(map[string]any); !isObj {
			continue
		}
		all = append(all, renderFormat(parts, obj)...)
		if len(all) > maxFormatResults {
			all = all[:maxFormatResults]
			break
		}
	}
	if len(all) == 0 {
		return resolved("")
	}
	return resolved(all...)
}

func renderFormat(parts []fmtPart, ctx any) []string {
	out := []string{""}
	for _, p := range parts {
		var vals []string
		switch {
		case p.field == "":
			vals = []string{p.static}
		case p.isSect:
			vals = renderSection(p, ctx)
		default:
			vals = fieldValues(ctx, p.field)
		}
		next := make([]string, 0, len(out)*len(vals))
		for _, o := range out {
			for _, v := range vals {
				next = append(next, o+v)
				if len(next) >= maxFormatResults {
					break
				}
			}
		}
		out = next
	}
	return out
}

func renderSection(p fmtPart, ctx any) []string {
	v, ok := lookupField(ctx, p.field)
	if !ok || v == nil {
		return []string{""}
	}
	arr, isArr := v.([]any)
	if !isArr {
		return renderFormat(p.section, v)
	}
	if len(arr) == 0 {
		return []string{""}
	}
	var out []string
	for _, e := range arr {
		out = append(out, renderFormat(p.section, e)...)
		if len(out) >= maxFormatResults {
			break
		}
	}
	return out
}

func fieldValues(ctx any, field string) []string {
	v, ok := lookupField(ctx, field)
	if !ok || v == nil {
		return []string{""}
	}
	if arr, isArr := v.([]any); isArr {
		if len(arr) == 0 {
			return []string{""}
		}
		out := make([]string, 0, len(arr))
		for _, e := range arr {
			out = append(out, jsonText(e))
		}
		return out
	}
	return []string{jsonText(v)}
}

func lookupField(ctx any, field string) (any, bool) {
	if field == "." {
		return ctx, true
	}
	obj, ok := ctx.(map[string]any)
	if !ok {
		return nil, false
	}
	if !strings.HasPrefix(field, "/") {
		v, ok := obj[field]
		return v, ok
	}
	var cur any = obj
	for _, seg := range strings.Split(strings.Trim(field, "/"), "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// jsonText is a string's content or any other value's JSON.
func jsonText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(v) != nil {
		return ""
	}
	return strings.TrimRight(b.String(), "\n")
}
