package connection

import (
	"bytes"
	"encoding/json"
)

// obj builds a JSON object with fields in the order they are added: Ditto's
// responses start with "type" and "status", which a Go map cannot promise.
type obj struct {
	buf bytes.Buffer
}

func newObj() *obj {
	o := &obj{}
	o.buf.WriteByte('{')
	return o
}

func (o *obj) key(k string) {
	if o.buf.Len() > 1 {
		o.buf.WriteByte(',')
	}
	o.buf.Write(marshal(k))
	o.buf.WriteByte(':')
}

// set adds a value that encoding/json can marshal. Like Ditto, it leaves <,
// > and & unescaped.
func (o *obj) set(k string, v any) *obj {
	o.key(k)
	o.buf.Write(marshal(v))
	return o
}

func marshal(v any) []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return []byte("null")
	}
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// raw adds an already encoded JSON value.
func (o *obj) raw(k string, v []byte) *obj {
	o.key(k)
	if len(v) == 0 {
		v = []byte("null")
	}
	o.buf.Write(v)
	return o
}

func (o *obj) bytes() []byte {
	o.buf.WriteByte('}')
	return o.buf.Bytes()
}
