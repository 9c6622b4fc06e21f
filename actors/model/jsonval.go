package model

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// kind is the JSON type of a value in the ordered tree.
type kind int

const (
	kNull kind = iota
	kBool
	kNumber
	kString
	kArray
	kObject
)

// jv is an order-preserving JSON value. Ditto's JsonObject keeps insertion
// order, and several of its outputs depend on it, so map[string]any will not do.
type jv struct {
	k   kind
	b   bool
	s   string // string value, or number text
	arr []jv
	obj []jfield
}

type jfield struct {
	key string
	val jv
}

// get returns the value of key (last occurrence wins, as in Ditto's parser).
func (v jv) get(key string) (jv, bool) {
	if v.k != kObject {
		return jv{}, false
	}
	for i := len(v.obj) - 1; i >= 0; i-- {
		if v.obj[i].key == key {
			return v.obj[i].val, true
		}
	}
	return jv{}, false
}

func (v jv) has(key string) bool { _, ok := v.get(key); return ok }

// set replaces key in place or appends it.
func (v *jv) set(key string, val jv) {
	for i := range v.obj {
		if v.obj[i].key == key {
			v.obj[i].val = val
			return
		}
	}
	v.obj = append(v.obj, jfield{key, val})
}

func (v *jv) remove(key string) {
	out := v.obj[:0]
	for _, f := range v.obj {
		if f.key != key {
			out = append(out, f)
		}
	}
	v.obj = out
}

// fields returns the object's fields with duplicate keys collapsed (last value
// wins, first position kept).
func (v jv) fields() []jfield {
	seen := map[string]int{}
	var out []jfield
	for _, f := range v.obj {
		if i, ok := seen[f.key]; ok {
			out[i].val = f.val
			continue
		}
		seen[f.key] = len(out)
		out = append(out, f)
	}
	return out
}

func jstr(s string) jv    { return jv{k: kString, s: s} }
func jbool(b bool) jv     { return jv{k: kBool, b: b} }
func jint(i int64) jv     { return jv{k: kNumber, s: strconv.FormatInt(i, 10)} }
func jobj(f ...jfield) jv { return jv{k: kObject, obj: f} }
func jarrStr(ss []string) jv {
	a := jv{k: kArray, arr: []jv{}}
	for _, s := range ss {
		a.arr = append(a.arr, jstr(s))
	}
	return a
}

const maxDepth = 512

var errTrailing = errors.New("trailing data after JSON value")

// parseJSON reads exactly one JSON value.
func parseJSON(data []byte) (jv, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := decodeValue(dec, 0)
	if err != nil {
		return jv{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jv{}, errTrailing
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, depth int) (jv, error) {
	if depth > maxDepth {
		return jv{}, errors.New("JSON nested too deeply")
	}
	tok, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return jv{}, io.ErrUnexpectedEOF
		}
		return jv{}, err
	}
	switch t := tok.(type) {
	case nil:
		return jv{k: kNull}, nil
	case bool:
		return jbool(t), nil
	case json.Number:
		return jv{k: kNumber, s: string(t)}, nil
	case string:
		return jstr(t), nil
	case json.Delim:
		switch t {
		case '[':
			a := jv{k: kArray, arr: []jv{}}
			for dec.More() {
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return jv{}, err
				}
				a.arr = append(a.arr, e)
			}
			_, err := dec.Token()
			return a, err
		case '{':
			o := jv{k: kObject, obj: []jfield{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return jv{}, err
				}
				key, _ := kt.(string)
				e, err := decodeValue(dec, depth+1)
				if err != nil {
					return jv{}, err
				}
				o.obj = append(o.obj, jfield{key, e})
			}
			_, err := dec.Token()
			return o, err
		}
	}
	return jv{}, errors.New("unexpected JSON token")
}

// isInt reports whether a number is an integral value within int32, the way
// Ditto's JsonValue.isInt does.
func (v jv) asInt() (int64, bool) {
	if v.k != kNumber {
		return 0, false
	}
	if i, err := strconv.ParseInt(v.s, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(v.s, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// text is the value rendered as JSON text (Ditto's JsonValue.toString).
func (v jv) text() string {
	var b strings.Builder
	writeJV(&b, v)
	return b.String()
}

func writeJV(b *strings.Builder, v jv) {
	switch v.k {
	case kNull:
		b.WriteString("null")
	case kBool:
		b.WriteString(strconv.FormatBool(v.b))
	case kNumber:
		b.WriteString(v.s)
	case kString:
		writeString(b, v.s)
	case kArray:
		b.WriteByte('[')
		for i, e := range v.arr {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJV(b, e)
		}
		b.WriteByte(']')
	case kObject:
		b.WriteByte('{')
		for i, f := range v.fields() {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, f.key)
			b.WriteByte(':')
			writeJV(b, f.val)
		}
		b.WriteByte('}')
	}
}

// writeString escapes like Ditto's JSON writer: quote, backslash and control
// characters only (no HTML escaping, non-ASCII kept as is).
func writeString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch c {
			case '"':
				b.WriteString(`\"`)
			case '\\':
				b.WriteString(`\\`)
			case '\b':
				b.WriteString(`\b`)
			case '\f':
				b.WriteString(`\f`)
			case '\n':
				b.WriteString(`\n`)
			case '\r':
				b.WriteString(`\r`)
			case '\t':
				b.WriteString(`\t`)
			default:
				if c < 0x20 {
					b.WriteString(`\u00`)
					b.WriteByte("0123456789abcdef"[c>>4])
					b.WriteByte("0123456789abcdef"[c&0xf])
				} else {
					b.WriteByte(c)
				}
			}
			i++
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			b.WriteString(`\ufffd`)
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('"')
}

// javaTypeName is the simple Java class name Ditto prints in type errors.
func javaTypeName(k kind) string {
	switch k {
	case kString:
		return "String"
	case kBool:
		return "Boolean"
	case kNumber:
		return "Integer"
	case kArray:
		return "JsonArray"
	case kObject:
		return "JsonObject"
	}
	return "Object"
}
