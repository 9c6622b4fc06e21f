package ojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// MaxDepth bounds the nesting of arrays and objects on every path that
// reads JSON. Payloads are attacker-controlled, and an unbounded recursion
// (here or in a later walker) overflows the goroutine stack, which Go
// cannot recover from.
const MaxDepth = 512

// ErrTooDeep: nesting beyond MaxDepth.
var ErrTooDeep = fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)

// ErrTrailing: more than one JSON value.
var ErrTrailing = errors.New("trailing data after JSON value")

// ErrNotObject: ParseObject got another kind of value.
var ErrNotObject = errors.New("JSON is not an object")

// Parse reads exactly one JSON value keeping object key order; string
// literals are re-rendered with e, so that writing the value back with e
// gives the same bytes as building it with e.
//
// Well-formed input is read by a byte scanner (the data plane's mappers
// spend most of their time here); anything it does not accept (invalid
// JSON, nesting beyond MaxDepth, trailing data) goes through encoding/json,
// which builds the same tree or gives the error.
func (e Escaping) Parse(data []byte) (any, error) {
	if v, ok := e.fastParse(data); ok {
		return v, nil
	}
	return e.slowParse(data)
}

// ParseObject is Parse for data that must be an object.
func (e Escaping) ParseObject(data []byte) (*Object, error) {
	v, err := e.Parse(data)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*Object)
	if !ok {
		return nil, ErrNotObject
	}
	return o, nil
}

// slowParse is Parse through encoding/json's tokens.
func (e Escaping) slowParse(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := e.decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, ErrTrailing
	}
	return v, nil
}

func (e Escaping) decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err // io.EOF for empty input
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return nil, ErrTooDeep
		}
		switch t {
		case '{':
			o := NewObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := e.decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.Set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := e.decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				arr = append(arr, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return arr, nil
		}
		return nil, fmt.Errorf("unexpected delimiter %v", t)
	case string:
		return e.Quote(t), nil
	case json.Number:
		return json.RawMessage(t.String()), nil
	case bool:
		if t {
			return json.RawMessage("true"), nil
		}
		return json.RawMessage("false"), nil
	case nil:
		return json.RawMessage("null"), nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// Depth is the maximum nesting of arrays and objects in JSON text, ignoring
// strings; a linear scan, so a caller can refuse deep input before a
// recursive reader sees it.
func Depth[T ~string | ~[]byte](data T) int {
	d, maxD := 0, 0
	inStr, esc := false, false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			d++
			if d > maxD {
				maxD = d
			}
		case c == '}' || c == ']':
			d--
		}
	}
	return maxD
}
