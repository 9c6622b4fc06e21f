package model

import (
	"encoding/json"
	"iter"
	"strconv"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// Connections are read and written as ordered JSON (ojson) with Ditto's
// string escaping: Ditto's JsonObject keeps insertion order and several of
// its outputs depend on it. These helpers keep the parser and the
// serialiser short.

// jv is a value of the ordered tree: *ojson.Object, []any or a literal.
type jv = any

type kind = ojson.Kind

const (
	kNull   = ojson.KindNull
	kBool   = ojson.KindBool
	kNumber = ojson.KindNumber
	kString = ojson.KindString
	kArray  = ojson.KindArray
	kObject = ojson.KindObject
)

func kindOf(v jv) kind { return ojson.KindOf(v) }

// get returns the value of key when v is an object (the last occurrence of
// a duplicated key, as in Ditto's parser).
func get(v jv, key string) (jv, bool) {
	o, ok := v.(*ojson.Object)
	if !ok {
		return nil, false
	}
	return o.Get(key)
}

func has(v jv, key string) bool { _, ok := get(v, key); return ok }

// strOf is the text of a string value ("" for other kinds).
func strOf(v jv) string { s, _ := ojson.Unquote(v); return s }

func boolOf(v jv) bool { r, _ := v.(json.RawMessage); return string(r) == "true" }

func arrOf(v jv) []any { a, _ := v.([]any); return a }

// objOf is v as an object (nil for other kinds).
func objOf(v jv) *ojson.Object { o, _ := v.(*ojson.Object); return o }

// fields iterates over an object's members in order (nothing for other
// kinds).
func fields(v jv) iter.Seq2[string, jv] {
	return func(yield func(string, jv) bool) {
		o := objOf(v)
		if o == nil {
			return
		}
		for _, k := range o.Keys() {
			if !yield(k, o.Value(k)) {
				return
			}
		}
	}
}

// jfield is one member for jobj.
type jfield struct {
	key string
	val jv
}

func jstr(s string) jv { return ojson.Ditto.Quote(s) }
func jbool(b bool) jv  { return json.RawMessage(strconv.FormatBool(b)) }
func jint(i int64) jv  { return json.RawMessage(strconv.FormatInt(i, 10)) }
func jnull() jv        { return json.RawMessage("null") }
func jarr() []any      { return []any{} }
func jarrStr(ss []string) []any {
	a := make([]any, 0, len(ss))
	for _, s := range ss {
		a = append(a, jstr(s))
	}
	return a
}

func jobj(fs ...jfield) *ojson.Object {
	o := ojson.NewObject()
	for _, f := range fs {
		o.Set(f.key, f.val)
	}
	return o
}

// parseJSON reads exactly one JSON value.
func parseJSON(data []byte) (jv, error) { return ojson.Ditto.Parse(data) }

// asInt reports whether a number is integral and returns it, the way
// Ditto's JsonValue.isInt/isLong read numbers.
func asInt(v jv) (int64, bool) {
	if kindOf(v) != kNumber {
		return 0, false
	}
	lit := string(v.(json.RawMessage))
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return i, true
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || f != float64(int64(f)) {
		return 0, false
	}
	return int64(f), true
}

// text is the value rendered as JSON text (Ditto's JsonValue.toString).
func text(v jv) string { return string(ojson.Ditto.Marshal(v)) }

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
