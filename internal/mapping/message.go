package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Ditto Protocol JSON of a protocol.Message, in Ditto's field order
// (ImmutableJsonifiableAdaptable.toJson: topic, headers, then the payload's
// path, value, extra, status, revision, timestamp, metadata, fields).
// internal/protocol will carry the envelope codec; until then this package has
// its own so that its outputs are exact.

// typedHeaders are the Ditto headers whose JSON form is not a string
// (DittoHeaderDefinition serialization types): 'b' boolean, 'n' number,
// 'j' JSON array or object.
var typedHeaders = map[string]byte{
	"response-required": 'b', "ditto-dry-run": 'b', "dry-run": 'b', "allow-policy-lockout": 'b',
	"ditto-weak-ack": 'b', "ditto-sudo": 'b', "ditto-retrieve-deleted": 'b', "live-channel-condition-matched": 'b',
	"ditto-reply-target": 'n', "at-historical-revision": 'n', "entity-revision": 'n',
	"ditto-auth-context": 'j', "ditto-read-subjects": 'j', "ditto-read-revoked-subjects": 'j',
	"ditto-expected-response-types": 'j', "requested-acks": 'j', "declared-acks": 'j', "put-metadata": 'j',
	"ditto-metadata": 'j', "ditto-event-journal-tags": 'j', "historical-headers": 'j',
	"ditto-pre-defined-extra-fields": 'j', "ditto-pre-defined-extra-fields-read-grant": 'j',
	"ditto-partial-access-paths": 'j', "ditto-pre-defined-extra-fields-object": 'j', "merge-thing-patch-conditions": 'j',
}

// headerJSON renders one header value as Ditto's DittoHeaders.toJson does.
func headerJSON(key, value string) json.RawMessage {
	switch typedHeaders[strings.ToLower(key)] {
	case 'b':
		if value == "true" || value == "false" {
			return json.RawMessage(value)
		}
	case 'n':
		if _, err := strconv.ParseInt(value, 10, 64); err == nil {
			return json.RawMessage(value)
		}
	case 'j':
		if v, err := gojson.Parse([]byte(value)); err == nil {
			if _, ok := v.(json.RawMessage); !ok {
				return gojson.Marshal(v)
			}
		}
	}
	return gojson.Quote(value)
}

// headersObject renders headers as a JSON object. Go maps have no order;
// keys are sorted so that the output is stable.
func headersObject(h map[string]string) *ojson.Object {
	o := ojson.NewObject()
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		o.Set(k, headerJSON(k, h[k]))
	}
	return o
}

// messageObject is the Ditto Protocol JSON of m as an ordered object.
func messageObject(m protocol.Message) *ojson.Object {
	o := ojson.NewObject()
	o.Set("topic", gojson.Quote(m.Topic))
	o.Set("headers", headersObject(m.Headers))
	path := m.Path
	if path == "" {
		path = "/"
	}
	o.Set("path", gojson.Quote(path))
	if len(m.Value) > 0 {
		o.Set("value", rawValue(m.Value))
	}
	if len(m.Extra) > 0 {
		o.Set("extra", rawValue(m.Extra))
	}
	if m.Status != 0 {
		o.Set("status", json.RawMessage(strconv.Itoa(m.Status)))
	}
	if m.Revision != 0 {
		o.Set("revision", json.RawMessage(strconv.FormatInt(m.Revision, 10)))
	}
	if m.Timestamp != "" {
		o.Set("timestamp", gojson.Quote(m.Timestamp))
	}
	if len(m.Metadata) > 0 {
		o.Set("metadata", rawValue(m.Metadata))
	}
	if m.Fields != "" {
		o.Set("fields", gojson.Quote(m.Fields))
	}
	return o
}

// rawValue parses r for re-serialisation; invalid JSON is kept as it is.
func rawValue(r json.RawMessage) any {
	v, err := gojson.Parse(r)
	if err != nil {
		return r
	}
	return v
}

// messageJSON is the Ditto Protocol JSON text of m: gojson.Marshal(messageObject(m)),
// written straight into one buffer (it runs for every outgoing message).
func messageJSON(m protocol.Message) []byte {
	b := make([]byte, 0, 96+len(m.Topic)+len(m.Path)+len(m.Value)+len(m.Extra)+len(m.Metadata)+48*len(m.Headers))
	b = append(b, `{"topic":`...)
	b = gojson.AppendString(b, m.Topic)
	b = append(b, `,"headers":{`...)
	var arr [16]string
	keys := arr[:0]
	for k := range m.Headers {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = gojson.AppendString(b, k)
		b = append(b, ':')
		b = append(b, headerJSON(k, m.Headers[k])...)
	}
	b = append(b, `},"path":`...)
	path := m.Path
	if path == "" {
		path = "/"
	}
	b = gojson.AppendString(b, path)
	if len(m.Value) > 0 {
		b = append(b, `,"value":`...)
		b = gojson.AppendValue(b, rawValue(m.Value))
	}
	if len(m.Extra) > 0 {
		b = append(b, `,"extra":`...)
		b = gojson.AppendValue(b, rawValue(m.Extra))
	}
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
		b = gojson.AppendString(b, m.Timestamp)
	}
	if len(m.Metadata) > 0 {
		b = append(b, `,"metadata":`...)
		b = gojson.AppendValue(b, rawValue(m.Metadata))
	}
	if m.Fields != "" {
		b = append(b, `,"fields":`...)
		b = gojson.AppendString(b, m.Fields)
	}
	return append(b, '}')
}

// messageFromObject reads a Ditto Protocol message as
// ProtocolFactory.jsonifiableAdaptableFromJson does: topic and path are
// required, the topic must parse, the other fields are optional.
func messageFromObject(o *ojson.Object) (protocol.Message, topic, error) {
	var m protocol.Message
	tv, ok := o.Get("topic")
	if !ok {
		return m, topic{}, fmt.Errorf("%w: JSON did not include required </topic> field", ErrMappingFailed)
	}
	ts, ok := ojson.Unquote(tv)
	if !ok {
		return m, topic{}, fmt.Errorf("%w: value of </topic> is not a string", ErrMappingFailed)
	}
	t, err := parseTopic(ts)
	if err != nil {
		return m, t, err
	}
	m.Topic = ts
	if hv, ok := o.Get("headers"); ok {
		ho, ok := hv.(*ojson.Object)
		if !ok {
			return m, t, fmt.Errorf("%w: value of </headers> is not an object", ErrMappingFailed)
		}
		m.Headers = make(map[string]string, ho.Len())
		for _, k := range ho.Keys() {
			m.Headers[strings.ToLower(k)] = gojson.FormatAsString(ho.Value(k))
		}
	}
	pv, ok := o.Get("path")
	if !ok {
		return m, t, fmt.Errorf("%w: JSON did not include required </path> field", ErrMappingFailed)
	}
	if m.Path, ok = ojson.Unquote(pv); !ok {
		return m, t, fmt.Errorf("%w: value of </path> is not a string", ErrMappingFailed)
	}
	if v, ok := o.Get("value"); ok {
		m.Value = gojson.Marshal(v)
	}
	if v, ok := o.Get("extra"); ok {
		if _, isObj := v.(*ojson.Object); !isObj {
			return m, t, fmt.Errorf("%w: value of </extra> is not an object", ErrMappingFailed)
		}
		m.Extra = gojson.Marshal(v)
	}
	if v, ok := o.Get("status"); ok {
		n, err := strconv.Atoi(string(gojson.Marshal(v)))
		if err != nil || n < 100 || n > 599 {
			return m, t, fmt.Errorf("%w: value of </status> is not an HTTP status", ErrMappingFailed)
		}
		m.Status = n
	}
	if v, ok := o.Get("revision"); ok {
		n, err := strconv.ParseInt(string(gojson.Marshal(v)), 10, 64)
		if err != nil {
			return m, t, fmt.Errorf("%w: value of </revision> is not a long", ErrMappingFailed)
		}
		m.Revision = n
	}
	if v, ok := o.Get("timestamp"); ok {
		if m.Timestamp, ok = ojson.Unquote(v); !ok {
			return m, t, fmt.Errorf("%w: value of </timestamp> is not a string", ErrMappingFailed)
		}
	}
	if v, ok := o.Get("metadata"); ok {
		m.Metadata = gojson.Marshal(v)
	}
	if v, ok := o.Get("fields"); ok {
		if m.Fields, ok = ojson.Unquote(v); !ok {
			return m, t, fmt.Errorf("%w: value of </fields> is not a string", ErrMappingFailed)
		}
	}
	return m, t, nil
}

// parseMessage parses Ditto Protocol JSON text.
func parseMessage(text []byte) (protocol.Message, topic, error) {
	o, err := gojson.ParseObject(bytes.TrimSpace(text))
	if err != nil {
		return protocol.Message{}, topic{}, fmt.Errorf("%w: failed to parse JSON: %v", ErrMappingFailed, err)
	}
	return messageFromObject(o)
}
