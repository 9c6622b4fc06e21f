package blackbox

import (
	"encoding/json"
	"os"
	"strconv"
	"testing"
)

// MQTTConnection is a valid MQTT 3.1.1 connection as an operator sends it.
func MQTTConnection(id, status string, tags ...string) map[string]any {
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{
		"id":               id,
		"name":             "demo " + id,
		"connectionType":   "mqtt",
		"connectionStatus": status,
		"uri":              "tcp://127.0.0.1:1883",
		"sources": []any{map[string]any{
			"addresses":            []string{"devices/#"},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  0,
		}},
		"targets": []any{map[string]any{
			"address":              "out/{{ thing:id }}",
			"topics":               []string{"_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  0,
		}},
		"tags": tags,
	}
}

// Cmd is a command of type typ with the given field, value pairs.
func Cmd(typ string, fields ...any) map[string]any {
	m := map[string]any{"type": typ}
	for i := 0; i+1 < len(fields); i += 2 {
		m[fields[i].(string)] = fields[i+1]
	}
	return m
}

// Decode parses a JSON body into a generic map, failing the test otherwise.
func Decode(t *testing.T, body []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("body is not a JSON object: %v: %s", err, body)
	}
	return m
}

// Field walks a decoded JSON object by keys.
func Field(m map[string]any, keys ...string) any {
	var v any = m
	for _, k := range keys {
		mm, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = mm[k]
	}
	return v
}

// WantField fails the test (not at once) when the value at keys is not
// want, compared as JSON.
func WantField(t *testing.T, m map[string]any, want any, keys ...string) {
	t.Helper()
	got := Field(m, keys...)
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if string(gb) != string(wb) {
		t.Errorf("field %v = %s, want %s", keys, gb, wb)
	}
}

// MustJSON marshals v, failing the test otherwise.
func MustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// EnvInt is the positive integer in environment variable name (a
// benchmark's or proof's size), def when it is unset or not one.
func EnvInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}
