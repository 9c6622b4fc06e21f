package protocol

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// MaxDepth bounds JSON nesting accepted by Decode, so hostile payloads cannot
// exhaust the stack of later recursive walkers.
const MaxDepth = 512

// Encode writes m as Ditto writes an adaptable (JsonifiableAdaptable.toJson):
// topic, headers, path, value, extra, status, revision, timestamp, metadata,
// fields; absent parts left out. Header keys are written sorted (Ditto keeps
// insertion order, which a Go map does not have). Strings are escaped as
// Ditto's JSON library does: only '"', '\\' and control characters.
func Encode(m *Message) []byte {
	var b bytes.Buffer
	b.Grow(64 + len(m.Topic) + len(m.Path) + len(m.Value) + 32*len(m.Headers))
	b.WriteString(`{"topic":`)
	writeString(&b, m.Topic)
	if len(m.Headers) > 0 {
		b.WriteString(`,"headers":{`)
		keys := make([]string, 0, len(m.Headers))
		for k := range m.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(&b, k)
			b.WriteByte(':')
			writeString(&b, m.Headers[k])
		}
		b.WriteByte('}')
	}
	b.WriteString(`,"path":`)
	writeString(&b, pathOrRoot(m.Path))
	writeRaw(&b, "value", m.Value)
	writeRaw(&b, "extra", m.Extra)
	if m.Status != 0 {
		b.WriteString(`,"status":`)
		b.WriteString(strconv.Itoa(m.Status))
	}
	if m.Revision != 0 {
		b.WriteString(`,"revision":`)
		b.WriteString(strconv.FormatInt(m.Revision, 10))
	}
	if m.Timestamp != "" {
		b.WriteString(`,"timestamp":`)
		writeString(&b, m.Timestamp)
	}
	writeRaw(&b, "metadata", m.Metadata)
	if m.Fields != "" {
		b.WriteString(`,"fields":`)
		writeString(&b, m.Fields)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// writeRaw writes a raw JSON member compacted; invalid raw JSON is written
// as a JSON string so the envelope stays valid.
func writeRaw(b *bytes.Buffer, name string, raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	b.WriteString(`,"`)
	b.WriteString(name)
	b.WriteString(`":`)
	mark := b.Len()
	if err := json.Compact(b, raw); err != nil {
		b.Truncate(mark)
		writeString(b, string(raw))
	}
}

const hexDigits = "0123456789abcdef"

func writeString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				b.WriteString(s[start:i])
				b.WriteString(`\ufffd`)
				i++
				start = i
				continue
			}
			i += size
			continue
		}
		b.WriteString(s[start:i])
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
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&0xf])
		}
		i++
		start = i
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}

// MarshalJSON is Encode, so that encoding/json users get Ditto's form.
func (m Message) MarshalJSON() ([]byte, error) { return Encode(&m), nil }

// UnmarshalJSON is Decode.
func (m *Message) UnmarshalJSON(data []byte) error {
	d, err := Decode(data)
	if err != nil {
		return err
	}
	*m = *d
	return nil
}

// Decode parses a Ditto Protocol message (ProtocolFactory.jsonifiableAdaptableFromJson).
// "topic" and "path" are required strings; header names are lower-cased
// (Ditto's headers are case-insensitive) and non-string header values keep
// their JSON text. The topic is not validated here: see ParseTopic.
// Errors are *ditto.Error (json.invalid, json.field.missing).
func Decode(data []byte) (*Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, ditto.JSONEmpty()
	}
	if !json.Valid(trimmed) {
		return nil, ditto.JSONParseFailed(clip(string(trimmed)))
	}
	if Depth(trimmed) > MaxDepth {
		return nil, ditto.JSONInvalid("The JSON is nested too deeply.")
	}
	if trimmed[0] != '{' {
		return nil, ditto.JSONNotAnObject(clip(string(trimmed)))
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &fields); err != nil {
		return nil, ditto.JSONParseFailed(clip(string(trimmed)))
	}
	m := &Message{}
	str := func(name string, dst *string, required bool) error {
		raw, ok := fields[name]
		if !ok {
			if required {
				return ditto.JSONFieldMissing("/" + name)
			}
			return nil
		}
		if err := json.Unmarshal(raw, dst); err != nil || raw[0] != '"' {
			return ditto.JSONWrongType(clip(string(raw)), "/"+name, "String")
		}
		return nil
	}
	obj := func(name string, dst *json.RawMessage) error {
		raw, ok := fields[name]
		if !ok || string(raw) == "null" {
			return nil
		}
		if raw[0] != '{' {
			return ditto.JSONWrongType(clip(string(raw)), "/"+name, "JsonObject")
		}
		*dst = compact(raw)
		return nil
	}
	if err := str("topic", &m.Topic, true); err != nil {
		return nil, err
	}
	if raw, ok := fields["headers"]; ok && string(raw) != "null" {
		if raw[0] != '{' {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/headers", "JsonObject")
		}
		var hs map[string]json.RawMessage
		if err := json.Unmarshal(raw, &hs); err != nil {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/headers", "JsonObject")
		}
		m.Headers = make(map[string]string, len(hs))
		for k, v := range hs {
			var s string
			if len(v) > 0 && v[0] == '"' && json.Unmarshal(v, &s) == nil {
				m.Headers[strings.ToLower(k)] = s
			} else {
				m.Headers[strings.ToLower(k)] = string(compact(v))
			}
		}
	}
	if err := str("path", &m.Path, true); err != nil {
		return nil, err
	}
	if raw, ok := fields["value"]; ok {
		m.Value = compact(raw)
	}
	if err := obj("extra", &m.Extra); err != nil {
		return nil, err
	}
	if raw, ok := fields["status"]; ok && string(raw) != "null" {
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/status", "int")
		}
		m.Status = n
	}
	if raw, ok := fields["revision"]; ok && string(raw) != "null" {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/revision", "long")
		}
		m.Revision = n
	}
	if err := str("timestamp", &m.Timestamp, false); err != nil {
		return nil, err
	}
	if err := obj("metadata", &m.Metadata); err != nil {
		return nil, err
	}
	if err := str("fields", &m.Fields, false); err != nil {
		return nil, err
	}
	return m, nil
}

func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return append(json.RawMessage(nil), raw...)
	}
	return b.Bytes()
}

// clip keeps error messages bounded for huge payloads.
func clip(s string) string {
	const max = 1000
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for !utf8.ValidString(s) && len(s) > 0 {
		s = s[:len(s)-1]
	}
	return s + "…"
}

// Depth is the maximum nesting of arrays and objects in JSON text, ignoring
// strings; a linear scan, so a caller can refuse deep input before a
// recursive decoder sees it.
func Depth(data []byte) int {
	d, maxD := 0, 0
	inStr, esc := false, false
	for _, c := range data {
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
