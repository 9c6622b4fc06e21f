package ojson

import (
	"bytes"
	"encoding/json"
)

// The byte scanner behind Parse. It builds exactly what decodeValue builds
// (objects with Set, []any arrays, literals as json.RawMessage: numbers as
// written, strings as Quote renders them) for well-formed input nested at
// most MaxDepth deep, and gives up on anything else, which then takes the
// encoding/json path. It avoids encoding/json's token API, which allocates
// per token.

type fastParser struct {
	Scanner // Data is a private copy: literals are slices of it (capacity capped)
	esc     Escaping
	depth   int
}

// fastParse parses data as Parse does; ok false: not handled here.
func (e Escaping) fastParse(data []byte) (v any, ok bool) {
	p := fastParser{Scanner: Scanner{Data: bytes.Clone(data)}, esc: e}
	p.SkipSpace()
	v, ok = p.value()
	if !ok {
		return nil, false
	}
	p.SkipSpace()
	if p.I != len(p.Data) {
		return nil, false
	}
	return v, true
}

func (p *fastParser) value() (any, bool) {
	c, ok := p.Next()
	if !ok {
		return nil, false
	}
	var lit []byte
	switch {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		var plain bool
		if lit, plain, ok = p.String(p.esc); !ok {
			return nil, false
		}
		if !plain {
			s, ok := Text(lit, false)
			if !ok {
				return nil, false
			}
			return p.esc.Quote(s), true
		}
	case c == '-' || (c >= '0' && c <= '9'):
		lit, ok = p.Number()
	case c == 't':
		lit, ok = p.Keyword("true")
	case c == 'f':
		lit, ok = p.Keyword("false")
	case c == 'n':
		lit, ok = p.Keyword("null")
	default:
		return nil, false
	}
	if !ok {
		return nil, false
	}
	return json.RawMessage(lit), true
}

func (p *fastParser) object() (any, bool) {
	if p.depth++; p.depth > MaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	o := NewObject()
	ok := p.Object(p.esc, func(k string) bool {
		v, ok := p.value()
		o.Set(k, v)
		return ok
	})
	return o, ok
}

func (p *fastParser) array() (any, bool) {
	if p.depth++; p.depth > MaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	arr := []any{}
	ok := p.Array(func() bool {
		v, ok := p.value()
		arr = append(arr, v)
		return ok
	})
	return arr, ok
}
