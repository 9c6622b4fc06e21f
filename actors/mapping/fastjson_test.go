package mapping

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/dittoconn/dittoconn/actors/protocol"
)

var fastJSONCorpus = []string{
	`{"topic":"org.acme/dev-1/things/twin/events/modified","headers":{"correlation-id":"c-1"},"path":"/features/temp/properties/value","value":21,"revision":3}`,
	` { "a" : [ 1 , -2.5e+3 , 0 , 0.1 , 1E9 , true , false , null , "x" , [ ] , { } ] } `,
	`{"a":1,"b":2,"a":3}`,
	`{"esc":"a\"b\\c\nd\u00e9\u2028\ud83d\ude00","html":"<&>","uni":"é😀","ls":"` + "\u2028" + `"}`,
	`{"k\u00e9y":"v","k\"":1}`,
	"\"bad utf8 \xff here\"", "{\"\xffk\":1}",
	`[]`, `{}`, `"s"`, `12`, `-0`, `null`, `true`,
	// invalid or unusual: the fast path must give up, parseJSON decides
	`{"a":01}`, `01`, `1 2`, `{"a":1}x`, `{"a":1,}`, `[1,]`, `{"a"}`, `{a:1}`, `"\x"`, "\"ctl\x01\"", `-`, `1.`, `1e`, `.5`,
	`{"a":tru}`, `nul`, ``, `   `, `{"a":[1,2}`, `{"a":"unterminated`, `[1 2]`, `+1`, `"\ud800"`,
}

// TestFastParseMatchesEncodingJSON: the byte scanner builds the same tree as
// the encoding/json path, or gives up where that path fails.
func TestFastParseMatchesEncodingJSON(t *testing.T) {
	for _, in := range fastJSONCorpus {
		checkFastParse(t, []byte(in))
	}
}

func checkFastParse(t *testing.T, in []byte) {
	t.Helper()
	want, werr := slowParseJSON(in)
	got, ok := fastParse(in)
	if !ok {
		return // parseJSON falls back to the slow path: same result by construction
	}
	if werr != nil {
		t.Fatalf("%q: fast path accepted what encoding/json rejects (%v)", in, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast %s, slow %s", in, marshal(got), marshal(want))
	}
	if !bytes.Equal(marshal(got), marshal(want)) {
		t.Fatalf("%q: renders differently", in)
	}
}

func TestJSONStringFastPathMatchesEncoder(t *testing.T) {
	for _, s := range []string{"", "plain", "a\"b", "a\\b", "\n\t\x01", "<&>", "é😀", "\u2028\u2029", "bad\xffutf8", "\x7f"} {
		if got, want := string(jsonString(s)), string(slowJSONString(s)); got != want {
			t.Errorf("jsonString(%q) = %s, want %s", s, got, want)
		}
		var b bytes.Buffer
		appendJSONString(&b, s)
		if b.String() != string(slowJSONString(s)) {
			t.Errorf("appendJSONString(%q) = %s", s, b.String())
		}
		if got, ok := isJSONString(slowJSONString(s)); !ok || (got != s && plainString(s)) {
			t.Errorf("isJSONString(%s) = %q %v", slowJSONString(s), got, ok)
		}
	}
}

func FuzzFastParse(f *testing.F) {
	for _, in := range fastJSONCorpus {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, in []byte) { checkFastParse(t, in) })
}

// TestMessageJSONMatchesObject: the direct writer renders what
// marshal(messageObject(m)) renders.
func TestMessageJSONMatchesObject(t *testing.T) {
	msgs := []protocol.Message{
		{Topic: "org.acme/dev/things/twin/events/modified", Path: "/features/a", Value: json.RawMessage(`{"b":1,"a":[1,"x"]}`),
			Headers: map[string]string{"correlation-id": "c", "response-required": "true", "requested-acks": `["a","b"]`,
				"entity-revision": "12", "Content-Type": "x", "q\"uote": "v\n"}, Revision: 4, Timestamp: "2026-01-01T00:00:00Z"},
		{Topic: "t", Value: json.RawMessage(`not json`), Extra: json.RawMessage(`{"z":null}`), Status: 204,
			Metadata: json.RawMessage(` { "m" : 1 } `), Fields: "a,b"},
		{Topic: "", Path: "", Headers: map[string]string{}},
		{Topic: "x", Headers: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8",
			"i": "9", "j": "10", "k": "11", "l": "12", "m": "13", "n": "14", "o": "15", "p": "16", "q": "17"}},
	}
	for _, m := range msgs {
		if got, want := string(messageJSON(m)), string(marshal(messageObject(m))); got != want {
			t.Errorf("messageJSON:\n%s\nwant\n%s", got, want)
		}
	}
}
