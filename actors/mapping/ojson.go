package mapping

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/dittoconn/dittoconn/actors/protocol"
)

// Ditto writes JSON objects in insertion order and the mappers' outputs are
// compared byte for byte with Ditto's, so objects are kept ordered here
// instead of going through map[string]any.

// object is an ordered JSON object; values are *object, []any or
// json.RawMessage (a scalar literal).
type object struct {
	keys []string
	vals map[string]any
}

func newObject() *object { return &object{vals: map[string]any{}} }

func (o *object) get(k string) (any, bool) {
	v, ok := o.vals[k]
	return v, ok
}

// set replaces the value of k in place or appends k.
func (o *object) set(k string, v any) {
	if _, ok := o.vals[k]; !ok {
		o.keys = append(o.keys, k)
	}
	o.vals[k] = v
}

func (o *object) remove(k string) {
	if _, ok := o.vals[k]; !ok {
		return
	}
	delete(o.vals, k)
	for i, key := range o.keys {
		if key == k {
			o.keys = append(o.keys[:i:i], o.keys[i+1:]...)
			break
		}
	}
}

func (o *object) len() int { return len(o.keys) }

// setPointer sets v at a JSON pointer (given as keys), creating or
// replacing intermediate objects as Ditto's JsonObject.set(pointer) does.
func (o *object) setPointer(keys []string, v any) {
	if len(keys) == 0 {
		return
	}
	cur := o
	for _, k := range keys[:len(keys)-1] {
		next, ok := cur.vals[k].(*object)
		if !ok {
			next = newObject()
			cur.set(k, next)
		}
		cur = next
	}
	cur.set(keys[len(keys)-1], v)
}

// getPointer returns the value at keys.
func (o *object) getPointer(keys []string) (any, bool) {
	var cur any = o
	for _, k := range keys {
		obj, ok := cur.(*object)
		if !ok {
			return nil, false
		}
		if cur, ok = obj.vals[k]; !ok {
			return nil, false
		}
	}
	return cur, true
}

var errTrailingJSON = errors.New("trailing data after JSON value")

// parseJSON parses one JSON value keeping object key order.
func parseJSON(data []byte) (any, error) {
	if v, ok := fastParse(data); ok {
		return v, nil
	}
	return slowParseJSON(data)
}

// slowParseJSON is parseJSON through encoding/json's tokens.
func slowParseJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errTrailingJSON
	}
	return v, nil
}

// parseObject parses data that must be a JSON object.
func parseObject(data []byte) (*object, error) {
	v, err := parseJSON(data)
	if err != nil {
		return nil, err
	}
	o, ok := v.(*object)
	if !ok {
		return nil, errors.New("JSON is not an object")
	}
	return o, nil
}

// errTooDeep: nesting beyond protocol.MaxDepth. Broker payloads are
// attacker-controlled, and an unbounded recursion here overflows the
// goroutine stack, which Go cannot recover from.
var errTooDeep = fmt.Errorf("JSON nested deeper than %d levels", protocol.MaxDepth)

func decodeValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= protocol.MaxDepth {
			return nil, errTooDeep
		}
		switch t {
		case '{':
			o := newObject()
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				k, _ := kt.(string)
				v, err := decodeValue(dec, depth+1)
				if err != nil {
					return nil, err
				}
				o.set(k, v)
			}
			if _, err := dec.Token(); err != nil {
				return nil, err
			}
			return o, nil
		case '[':
			arr := []any{}
			for dec.More() {
				v, err := decodeValue(dec, depth+1)
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
		return jsonString(t), nil
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

// jsonString renders s as a JSON string literal without HTML escaping
// (Ditto's writer leaves <, > and & alone).
func jsonString(s string) json.RawMessage {
	if plainString(s) {
		b := make([]byte, len(s)+2)
		b[0] = '"'
		copy(b[1:], s)
		b[len(b)-1] = '"'
		return b
	}
	return slowJSONString(s)
}

// slowJSONString is jsonString through encoding/json (strings that need
// escaping).
func slowJSONString(s string) json.RawMessage {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimRight(b.Bytes(), "\n")
}

// marshal renders v compactly.
func marshal(v any) []byte {
	var b bytes.Buffer
	writeJSON(&b, v)
	return b.Bytes()
}

func writeJSON(b *bytes.Buffer, v any) {
	switch t := v.(type) {
	case *object:
		b.WriteByte('{')
		for i, k := range t.keys {
			if i > 0 {
				b.WriteByte(',')
			}
			appendJSONString(b, k)
			b.WriteByte(':')
			writeJSON(b, t.vals[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(b, e)
		}
		b.WriteByte(']')
	case json.RawMessage:
		if len(t) == 0 {
			b.WriteString("null")
			return
		}
		b.Write(t)
	case nil:
		b.WriteString("null")
	default:
		b.WriteString("null")
	}
}

// isJSONString reports whether v is a JSON string literal and returns it.
func isJSONString(v any) (string, bool) {
	r, ok := v.(json.RawMessage)
	if !ok || len(r) < 2 || r[0] != '"' {
		return "", false
	}
	if r[len(r)-1] == '"' {
		if s := string(r[1 : len(r)-1]); plainString(s) {
			return s, true // no escapes: the text is the literal's inside
		}
	}
	var s string
	if json.Unmarshal(r, &s) != nil {
		return "", false
	}
	return s, true
}

func isJSONNull(v any) bool {
	r, ok := v.(json.RawMessage)
	return ok && string(r) == "null"
}

// formatAsString is JsonValue.formatAsString: strings unquoted, everything
// else as compact JSON.
func formatAsString(v any) string {
	if s, ok := isJSONString(v); ok {
		return s
	}
	return string(marshal(v))
}

// compactRaw normalises a raw JSON value (ordered, compact, Ditto escaping).
func compactRaw(r json.RawMessage) (json.RawMessage, error) {
	v, err := parseJSON(r)
	if err != nil {
		return nil, err
	}
	return marshal(v), nil
}

// pointerKeys splits a JSON pointer ("/a/b", "a/b", "/") into its keys;
// empty segments from double slashes end the pointer, as in Ditto.
func pointerKeys(p string) []string {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		return nil
	}
	var keys []string
	for _, k := range strings.Split(p, "/") {
		if k == "" {
			break
		}
		keys = append(keys, k)
	}
	return keys
}
