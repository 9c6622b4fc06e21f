package ojson

import (
	"encoding/json"
	"unicode/utf8"
)

// Escaping says how strings are written. Both escape '"', '\\' and control
// characters (\b \f \n \r \t short, others as \u00xx) and write invalid
// UTF-8 as \ufffd; neither escapes '<', '>', '&' or other non-ASCII text.
type Escaping uint8

const (
	// Ditto is Ditto's JSON writer.
	Ditto Escaping = iota
	// GoJSON is Ditto plus U+2028 and U+2029 as \u2028 and \u2029, which is
	// encoding/json with HTML escaping off. The mappers' outputs and the
	// encrypted fields have always been written this way; keeping it keeps
	// their bytes.
	GoJSON
)

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal.
func (e Escaping) AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case e == GoJSON && (r == '\u2028' || r == '\u2029'):
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// Quote returns s as a JSON string literal.
func (e Escaping) Quote(s string) json.RawMessage {
	if e.plain(s) {
		b := make([]byte, len(s)+2)
		b[0] = '"'
		copy(b[1:], s)
		b[len(b)-1] = '"'
		return b
	}
	return e.AppendString(make([]byte, 0, len(s)+8), s)
}

// plain reports whether the literal of s is s in quotes.
func (e Escaping) plain(s string) bool {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || (e == GoJSON && (r == '\u2028' || r == '\u2029')) {
			return false
		}
		i += size
	}
	return true
}

// Unquote returns the text of a string literal; ok is false for any other
// value.
func Unquote(v any) (string, bool) {
	r, isRaw := v.(json.RawMessage)
	if !isRaw || len(r) < 2 || r[0] != '"' {
		return "", false
	}
	if r[len(r)-1] == '"' {
		inner := r[1 : len(r)-1]
		if noEscapes(inner) {
			return string(inner), true
		}
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		return "", false
	}
	return s, true
}

// noEscapes: the literal's inside is its text (valid UTF-8, no backslash,
// quote or control character).
func noEscapes(b []byte) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size == 1 {
			return false
		}
		i += size
	}
	return true
}
