package ojson

import "encoding/json"

// Marshal renders v compactly, keys escaped by e.
func (e Escaping) Marshal(v any) []byte { return e.AppendValue(make([]byte, 0, 64), v) }

// AppendValue appends v rendered compactly. Keys are escaped by e; values
// are literals already. Anything that is not a value of this package is
// written as null.
func (e Escaping) AppendValue(dst []byte, v any) []byte {
	switch t := v.(type) {
	case *Object:
		dst = append(dst, '{')
		for i, k := range t.keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.AppendString(dst, k)
			dst = append(dst, ':')
			dst = e.AppendValue(dst, t.vals[k])
		}
		return append(dst, '}')
	case []any:
		dst = append(dst, '[')
		for i, x := range t {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = e.AppendValue(dst, x)
		}
		return append(dst, ']')
	case json.RawMessage:
		if len(t) == 0 {
			return append(dst, "null"...)
		}
		return append(dst, t...)
	default:
		return append(dst, "null"...)
	}
}

// IsNull reports whether v is the null literal.
func IsNull(v any) bool {
	r, ok := v.(json.RawMessage)
	return ok && string(r) == "null"
}

// FormatAsString is Ditto's JsonValue.formatAsString: a string's text,
// anything else as compact JSON.
func (e Escaping) FormatAsString(v any) string {
	if s, ok := Unquote(v); ok {
		return s
	}
	return string(e.Marshal(v))
}
