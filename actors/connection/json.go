package connection

import (
	"bytes"
	"encoding/json"
)

// encodeJSON is the package's one encoder for what it writes: answers,
// journal events and internal messages are Go values, and a struct's field
// order is the order Ditto writes the fields in (responses start with
// "type" and "status"). Like Ditto, it leaves <, > and & unescaped.
//
// A type that encodes itself (json.Marshaler) is taken as it encodes, without
// the re-scan encoding/json gives a Marshaler's output.
func encodeJSON(v any) []byte {
	if m, ok := v.(json.Marshaler); ok {
		if b, err := m.MarshalJSON(); err == nil {
			return b
		}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// Only a raw part could fail, and those come from this service's
		// own serializers.
		return []byte("null")
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

// raw embeds already encoded JSON; empty is null.
func raw(b []byte) json.RawMessage {
	if len(b) == 0 {
		return nil
	}
	return b
}
