package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// decodeViaMaps is Decode as it was before its one-walk member scan:
// encoding/json's Unmarshal into maps. The differential tests hold the two
// to the same messages and the same errors.
func decodeViaMaps(data []byte) (*Message, error) {
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

// caseCollision: two header names that differ only in case, which the
// map-based decoder resolved in Go's random map order (Decode: the last in
// the document wins).
func caseCollision(data []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return false
	}
	var hs map[string]json.RawMessage
	if json.Unmarshal(top["headers"], &hs) != nil {
		return false
	}
	seen := map[string]bool{}
	for k := range hs {
		if seen[strings.ToLower(k)] {
			return true
		}
		seen[strings.ToLower(k)] = true
	}
	return false
}

func sameDecode(t *testing.T, data []byte) {
	t.Helper()
	got, gotErr := Decode(data)
	want, wantErr := decodeViaMaps(data)
	if (gotErr == nil) != (wantErr == nil) {
		t.Fatalf("%q: error %v, map-based %v", data, gotErr, wantErr)
	}
	if gotErr != nil {
		g, _ := ditto.As(gotErr)
		w, _ := ditto.As(wantErr)
		if g == nil || w == nil || g.Code != w.Code || g.Message != w.Message {
			t.Fatalf("%q: error %v, map-based %v", data, gotErr, wantErr)
		}
		return
	}
	if caseCollision(data) {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %+v\nwant %+v", data, got, want)
	}
}

func TestDecodeMatchesMapBased(t *testing.T) {
	for _, in := range []string{
		`{"topic":"ns/n/things/twin/commands/modify","headers":{"Correlation-Id":"c1","requested-acks":["twin-persisted"],"response-required":false},"path":"/a","value":{ "x" : [1, 2] },"status":204}`,
		` {"topic":"t","path":"/","topic":"u","headers":{"a":"1","a":"2"},"headers":{"b":"3"}} `,
		`{"topic":"t\u00e9\"","path":"\/p","headers":{"k\u0041":"v\ud800","n":null,"o":{"p": [ ]}},"value":"\u2028"}`,
		`{"topic":"t","path":"/","headers":null,"extra":null,"metadata":{"m":1},"fields":"f","timestamp":"x","revision":9}`,
		`{"topic":"t","path":"/","status":null,"revision":null,"value":null}`,
		`{"topic":null,"path":"/"}`, `{"topic":"t","path":1}`, `{"topic":"t","path":"/","timestamp":1}`,
		`{"topic":"t","path":"/","headers":"h"}`, `{"topic":"t","path":"/","metadata":[]}`,
		`{"topic":"t","path":"/","status":2e2}`, `{"topic":"t","path":"/","revision":-1}`,
		"{\"topic\":\"t\xff\",\"path\":\"/\",\"h\xfe\":1}", `{}`, `{"":1}`, `1`, `"s"`, `{"topic":"t","path":"/"`,
	} {
		sameDecode(t, []byte(in))
	}
}

func FuzzDecodeMatchesMapBased(f *testing.F) {
	for _, s := range []string{
		`{"topic":"ns/n/things/twin/events/modified","headers":{"a":"b","C":1},"path":"/attributes/x","value":{"y":[1,null,"z"]},"revision":1}`,
		`{"topic":"x","path":"/","headers":{"n":1,"o":{"p":[]}},"extra":{},"metadata":null,"status":200}`,
		` { "topic" : "a\u0062" , "path" : "/" , "value" : [ { } ] } `, `{"topic":"t","path":"/","topic":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) { sameDecode(t, data) })
}

// BenchmarkDecode is a bridge's answer from Ditto: Decode against the
// map-based decoder it replaced.
func BenchmarkDecode(b *testing.B) {
	frame := []byte(`{"topic":"org.bench/dev-7/things/twin/commands/modify","headers":{"correlation-id":"bb-bridge-1234",` +
		`"response-required":true,"requested-acks":["twin-persisted"],"content-type":"application/json","ditto-originator":"integration:bench",` +
		`"timeout":"10s","version":2},"path":"/attributes/counter","status":204}`)
	for _, dec := range []struct {
		name string
		fn   func([]byte) (*Message, error)
	}{{"members", Decode}, {"maps", decodeViaMaps}} {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dec.fn(frame); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
