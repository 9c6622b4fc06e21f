package mapping

import (
	"strconv"

	"github.com/dop251/goja"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// parseJSON builds what goja's JSON.parse builds for well-formed text
// nested at most ojson.MaxDepth deep, reading it with ojson's byte scanner
// instead of encoding/json's token API, which allocates per token and was
// a sixth of a typical incoming script's cost. ok false: not handled here
// (malformed or too deep text, a number out of float64's range, which
// goja's JSON.parse refuses); the caller then runs goja's own JSON.parse,
// which gives its exact error.
func parseJSON(vm *goja.Runtime, text string) (v goja.Value, ok bool) {
	p := jsonBuilder{vm: vm, Scanner: ojson.Scanner{Data: []byte(text)}}
	p.SkipSpace()
	if v, ok = p.value(); !ok {
		return nil, false
	}
	p.SkipSpace()
	return v, p.I == len(p.Data)
}

type jsonBuilder struct {
	ojson.Scanner
	vm    *goja.Runtime
	depth int
}

func (p *jsonBuilder) value() (goja.Value, bool) {
	c, ok := p.Next()
	if !ok {
		return nil, false
	}
	switch {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		lit, plain, ok := p.String(ojson.Ditto)
		if !ok {
			return nil, false
		}
		s, ok := ojson.Text(lit, plain)
		if !ok {
			return nil, false
		}
		return p.vm.ToValue(s), true
	case c == '-' || (c >= '0' && c <= '9'):
		lit, ok := p.Number()
		if !ok {
			return nil, false
		}
		f, err := strconv.ParseFloat(string(lit), 64)
		if err != nil {
			return nil, false
		}
		return p.vm.ToValue(f), true
	case c == 't':
		_, ok := p.Keyword("true")
		return p.vm.ToValue(true), ok
	case c == 'f':
		_, ok := p.Keyword("false")
		return p.vm.ToValue(false), ok
	case c == 'n':
		_, ok := p.Keyword("null")
		return goja.Null(), ok
	}
	return nil, false
}

func (p *jsonBuilder) object() (goja.Value, bool) {
	if p.depth++; p.depth > ojson.MaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	o := p.vm.NewObject()
	ok := p.Object(ojson.Ditto, func(k string) bool {
		v, ok := p.value()
		// A data property, as JSON.parse creates it: Set would call a
		// setter on the prototype chain ("__proto__" among them).
		return ok && o.DefineDataProperty(k, v, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_TRUE) == nil
	})
	return o, ok
}

func (p *jsonBuilder) array() (goja.Value, bool) {
	if p.depth++; p.depth > ojson.MaxDepth {
		return nil, false
	}
	defer func() { p.depth-- }()
	var items []any
	ok := p.Array(func() bool {
		v, ok := p.value()
		items = append(items, v)
		return ok
	})
	return p.vm.NewArray(items...), ok
}
