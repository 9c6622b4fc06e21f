package mapping

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/actors/protocol"
)

// A byte scanner for the ordered JSON tree of ojson.go. It builds exactly
// what decodeValue builds (objects with set, []any arrays, literals as
// json.RawMessage: numbers as written, strings re-rendered by jsonString)
// for well-formed input, and gives up on anything else (invalid JSON, very
// deep nesting, trailing data): parseJSON then takes the encoding/json path,
// which produces the same tree or the error. The per-message Ditto mapper
// spends most of its time here, so it avoids encoding/json's token API.

// fastMaxDepth: deeper input is left to the slow path, which refuses it.
const fastMaxDepth = protocol.MaxDepth

type fastParser struct {
	data  []byte // a private copy: literals are slices of it (capacity capped)
	i     int
	depth int
}

// fastParse parses data as parseJSON does; ok false: not handled here.
func fastParse(data []byte) (v any, ok bool) {
	p := fastParser{data: bytes.Clone(data)}
	p.ws()
	v, ok = p.value()
	if !ok {
		return nil, false
	}
	p.ws()
	if p.i != len(p.data) {
		return nil, false
	}
	return v, true
}

func (p *fastParser) ws() {
	for p.i < len(p.data) {
		switch p.data[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *fastParser) value() (any, bool) {
	if p.i >= len(p.data) {
		return nil, false
	}
	switch c := p.data[p.i]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		lit, plain, ok := p.stringLiteral()
		if !ok {
			return nil, false
		}
		if plain {
			return json.RawMessage(lit), true
		}
		var s string
		if json.Unmarshal(lit, &s) != nil {
			return nil, false
		}
		return jsonString(s), true
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.keyword("true")
	case c == 'f':
		return p.keyword("false")
	case c == 'n':
		return p.keyword("null")
	}
	return nil, false
}

func (p *fastParser) keyword(w string) (any, bool) {
	end := p.i + len(w)
	if end > len(p.data) || string(p.data[p.i:end]) != w {
		return nil, false
	}
	lit := p.data[p.i:end:end]
	p.i = end
	return json.RawMessage(lit), true
}

func (p *fastParser) digits() int {
	start := p.i
	for p.i < len(p.data) && p.data[p.i] >= '0' && p.data[p.i] <= '9' {
		p.i++
	}
	return p.i - start
}

// number scans a JSON number; its literal is kept as written (json.Number).
func (p *fastParser) number() (any, bool) {
	start := p.i
	if p.data[p.i] == '-' {
		p.i++
	}
	if p.i < len(p.data) && p.data[p.i] == '0' {
		p.i++
	} else if p.digits() == 0 {
		return nil, false
	}
	if p.i < len(p.data) && p.data[p.i] == '.' {
		p.i++
		if p.digits() == 0 {
			return nil, false
		}
	}
	if p.i < len(p.data) && (p.data[p.i] == 'e' || p.data[p.i] == 'E') {
		p.i++
		if p.i < len(p.data) && (p.data[p.i] == '+' || p.data[p.i] == '-') {
			p.i++
		}
		if p.digits() == 0 {
			return nil, false
		}
	}
	return json.RawMessage(p.data[start:p.i:p.i]), true
}

// stringLiteral scans a string literal, quotes included. plain: it is
// exactly what jsonString writes for its decoded text (no escapes, valid
// UTF-8, no U+2028/U+2029), so it can be used as it is.
func (p *fastParser) stringLiteral() (lit []byte, plain, ok bool) {
	start := p.i
	p.i++
	plain = true
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c == '"':
			p.i++
			return p.data[start:p.i:p.i], plain, true
		case c == '\\':
			plain = false
			p.i += 2
		case c < 0x20:
			return nil, false, false // not JSON
		case c < utf8.RuneSelf:
			p.i++
		default:
			r, size := utf8.DecodeRune(p.data[p.i:])
			if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
				plain = false
			}
			p.i += size
		}
	}
	return nil, false, false
}

func (p *fastParser) key() (string, bool) {
	lit, plain, ok := p.stringLiteral()
	if !ok {
		return "", false
	}
	if plain {
		return string(lit[1 : len(lit)-1]), true
	}
	var s string
	if json.Unmarshal(lit, &s) != nil {
		return "", false
	}
	return s, true
}

func (p *fastParser) object() (any, bool) {
	if p.depth++; p.depth > fastMaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++ // {
	o := newObject()
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == '}' {
		p.i++
		return o, true
	}
	for {
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != '"' {
			return nil, false
		}
		k, ok := p.key()
		if !ok {
			return nil, false
		}
		p.ws()
		if p.i >= len(p.data) || p.data[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.ws()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		o.set(k, v)
		p.ws()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return o, true
		default:
			return nil, false
		}
	}
}

func (p *fastParser) array() (any, bool) {
	if p.depth++; p.depth > fastMaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++ // [
	arr := []any{}
	p.ws()
	if p.i < len(p.data) && p.data[p.i] == ']' {
		p.i++
		return arr, true
	}
	for {
		p.ws()
		v, ok := p.value()
		if !ok {
			return nil, false
		}
		arr = append(arr, v)
		p.ws()
		if p.i >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return arr, true
		default:
			return nil, false
		}
	}
}

// plainString reports whether jsonString(s) is s in quotes.
func plainString(s string) bool {
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
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return true
}

// appendJSONString writes jsonString(s) to b.
func appendJSONString(b *bytes.Buffer, s string) {
	if plainString(s) {
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	b.Write(slowJSONString(s))
}
