package ojson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The byte scanner behind Parse. It builds exactly what decodeValue builds
// (objects with Set, []any arrays, literals as json.RawMessage: numbers as
// written, strings as Quote renders them) for well-formed input nested at
// most MaxDepth deep, and gives up on anything else, which then takes the
// encoding/json path. It avoids encoding/json's token API, which allocates
// per token.

type fastParser struct {
	esc   Escaping
	data  []byte // a private copy: literals are slices of it (capacity capped)
	i     int
	depth int
}

// fastParse parses data as Parse does; ok false: not handled here.
func (e Escaping) fastParse(data []byte) (v any, ok bool) {
	p := fastParser{esc: e, data: bytes.Clone(data)}
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
		return p.esc.Quote(s), true
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
// exactly what Quote writes for its decoded text (no escapes, valid UTF-8,
// and with GoJSON no U+2028/U+2029), so it can be used as it is.
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
			if (r == utf8.RuneError && size == 1) || (p.esc == GoJSON && (r == '\u2028' || r == '\u2029')) {
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
	if p.depth++; p.depth > MaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	p.i++ // {
	o := NewObject()
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
		o.Set(k, v)
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
	if p.depth++; p.depth > MaxDepth {
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
