package protocol

import (
	"bytes"
	"encoding/json"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// MaxDepth bounds JSON nesting accepted by Decode, so hostile payloads cannot
// exhaust the stack of later recursive walkers: the one bound of ojson.
const MaxDepth = ojson.MaxDepth

// Encode writes m as Ditto writes an adaptable (JsonifiableAdaptable.toJson):
// topic, headers, path, value, extra, status, revision, timestamp, metadata,
// fields; absent parts left out. Header keys are written sorted (Ditto keeps
// insertion order, which a Go map does not have). Strings are escaped as
// Ditto's JSON library does: only '"', '\\' and control characters.
func Encode(m *Message) []byte {
	b := make([]byte, 0, 64+len(m.Topic)+len(m.Path)+len(m.Value)+32*len(m.Headers))
	b = append(b, `{"topic":`...)
	b = ojson.Ditto.AppendString(b, m.Topic)
	{ // always, as Ditto writes an adaptable (its schema requires headers)
		b = append(b, `,"headers":{`...)
		keys := make([]string, 0, len(m.Headers))
		for k := range m.Headers {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = ojson.Ditto.AppendString(b, k)
			b = append(b, ':')
			b = appendHeader(b, k, m.Headers[k])
		}
		b = append(b, '}')
	}
	b = append(b, `,"path":`...)
	b = ojson.Ditto.AppendString(b, pathOrRoot(m.Path))
	b = appendRaw(b, "value", m.Value)
	b = appendRaw(b, "extra", m.Extra)
	if m.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(m.Status), 10)
	}
	if m.Revision != 0 {
		b = append(b, `,"revision":`...)
		b = strconv.AppendInt(b, m.Revision, 10)
	}
	if m.Timestamp != "" {
		b = append(b, `,"timestamp":`...)
		b = ojson.Ditto.AppendString(b, m.Timestamp)
	}
	b = appendRaw(b, "metadata", m.Metadata)
	if m.Fields != "" {
		b = append(b, `,"fields":`...)
		b = ojson.Ditto.AppendString(b, m.Fields)
	}
	return append(b, '}')
}

// typedHeaders are the headers whose value Ditto writes as JSON of their
// type, not as a string (DittoHeaderDefinition): the acknowledgement label
// lists are arrays, response-required and ditto-weak-ack booleans, the
// schema version an integer. Message keeps every header as a string, in
// that JSON form (Decode's), so Encode writes such a value raw when it is
// of the type.
var typedHeaders = map[string]func(string) bool{
	"requested-acks":    isJSONArray,
	"declared-acks":     isJSONArray,
	"response-required": isJSONBool,
	"ditto-weak-ack":    isJSONBool,
	"version":           isJSONInt,
}

func isJSONArray(v string) bool { return len(v) > 1 && v[0] == '[' && json.Valid([]byte(v)) }
func isJSONBool(v string) bool  { return v == "true" || v == "false" }

// isJSONInt: v is an integer as JSON writes one (no plus sign, no leading
// zero, also after a minus sign).
func isJSONInt(v string) bool {
	d := strings.TrimPrefix(v, "-")
	_, err := strconv.Atoi(v)
	return err == nil && d != "" && d[0] != '+' && (len(d) == 1 || d[0] != '0')
}

// appendHeader appends header k's value: raw JSON for a typed header whose
// value is of its type, else a JSON string.
func appendHeader(b []byte, k, v string) []byte {
	if typed := typedHeaders[k]; typed != nil && typed(v) {
		return append(b, v...)
	}
	return ojson.Ditto.AppendString(b, v)
}

func pathOrRoot(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

// appendRaw appends a raw JSON member compacted; invalid raw JSON is written
// as a JSON string so the envelope stays valid.
func appendRaw(b []byte, name string, raw json.RawMessage) []byte {
	if len(raw) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	buf := bytes.NewBuffer(b)
	if err := json.Compact(buf, raw); err != nil {
		return ojson.Ditto.AppendString(b, string(raw))
	}
	return buf.Bytes()
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
	if ojson.Depth(trimmed) > MaxDepth {
		return nil, ditto.JSONInvalid("The JSON is nested too deeply.")
	}
	if trimmed[0] != '{' {
		return nil, ditto.JSONNotAnObject(clip(string(trimmed)))
	}
	// One walk of the valid object picks the members (the last of a
	// duplicated name wins, as in encoding/json's map and Ditto's
	// JsonObject); unmarshalling each frame into maps was most of Decode's
	// cost, and the bridge decodes every answer Ditto sends.
	var f members
	ojson.Members(trimmed, f.set)
	m := &Message{}
	str := func(name string, raw []byte, dst *string, required bool) error {
		if raw == nil {
			if required {
				return ditto.JSONFieldMissing("/" + name)
			}
			return nil
		}
		v, ok := ojson.Unquote(json.RawMessage(raw))
		if !ok {
			return ditto.JSONWrongType(clip(string(raw)), "/"+name, "String")
		}
		*dst = v
		return nil
	}
	obj := func(name string, raw []byte, dst *json.RawMessage) error {
		if raw == nil || string(raw) == "null" {
			return nil
		}
		if raw[0] != '{' {
			return ditto.JSONWrongType(clip(string(raw)), "/"+name, "JsonObject")
		}
		*dst = compact(raw)
		return nil
	}
	if err := str("topic", f.topic, &m.Topic, true); err != nil {
		return nil, err
	}
	if raw := f.headers; raw != nil && string(raw) != "null" {
		if raw[0] != '{' {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/headers", "JsonObject")
		}
		m.Headers = make(map[string]string, 8)
		ojson.Members(raw, func(k, v []byte) {
			name := headerName(k)
			if s, ok := ojson.Unquote(json.RawMessage(v)); ok {
				m.Headers[name] = s
			} else {
				m.Headers[name] = string(compact(v))
			}
		})
	}
	if err := str("path", f.path, &m.Path, true); err != nil {
		return nil, err
	}
	if f.value != nil {
		m.Value = compact(f.value)
	}
	if err := obj("extra", f.extra, &m.Extra); err != nil {
		return nil, err
	}
	if raw := f.status; raw != nil && string(raw) != "null" {
		n, err := strconv.Atoi(string(raw))
		if err != nil {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/status", "int")
		}
		m.Status = n
	}
	if raw := f.revision; raw != nil && string(raw) != "null" {
		n, err := strconv.ParseInt(string(raw), 10, 64)
		if err != nil {
			return nil, ditto.JSONWrongType(clip(string(raw)), "/revision", "long")
		}
		m.Revision = n
	}
	if err := str("timestamp", f.timestamp, &m.Timestamp, false); err != nil {
		return nil, err
	}
	if err := obj("metadata", f.metadata, &m.Metadata); err != nil {
		return nil, err
	}
	if err := str("fields", f.fields, &m.Fields, false); err != nil {
		return nil, err
	}
	return m, nil
}

// members holds the spans of a message's members Decode reads; nil:
// absent. Other members are ignored, as Ditto ignores them.
type members struct {
	topic, headers, path, value, extra, status, revision, timestamp, metadata, fields []byte
}

func (f *members) set(key, value []byte) {
	name := key[1 : len(key)-1] // compared without a copy
	if bytes.IndexByte(name, '\\') >= 0 {
		k, _ := ojson.Unquote(json.RawMessage(key))
		name = []byte(k)
	}
	switch string(name) {
	case "topic":
		f.topic = value
	case "headers":
		f.headers = value
	case "path":
		f.path = value
	case "value":
		f.value = value
	case "extra":
		f.extra = value
	case "status":
		f.status = value
	case "revision":
		f.revision = value
	case "timestamp":
		f.timestamp = value
	case "metadata":
		f.metadata = value
	case "fields":
		f.fields = value
	}
}

// headerName is the lower-cased text of a header's key literal; Ditto's
// common header names come without an allocation.
func headerName(lit []byte) string {
	switch string(lit) {
	case `"correlation-id"`:
		return "correlation-id"
	case `"response-required"`:
		return "response-required"
	case `"requested-acks"`:
		return "requested-acks"
	case `"content-type"`:
		return "content-type"
	case `"timeout"`:
		return "timeout"
	case `"version"`:
		return "version"
	case `"ditto-originator"`:
		return "ditto-originator"
	case `"entity-id"`:
		return "entity-id"
	}
	name, _ := ojson.Unquote(json.RawMessage(lit))
	return strings.ToLower(name)
}

// compact is raw without insignificant whitespace, in a new slice (raw may
// alias the caller's buffer).
func compact(raw json.RawMessage) json.RawMessage {
	if !bytes.ContainsAny(raw, " \t\n\r") {
		return append(json.RawMessage(nil), raw...)
	}
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
