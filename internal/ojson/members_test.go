package ojson

import (
	"bytes"
	"encoding/json"
	"testing"
)

// membersRejoined is doc's members put back together compactly: for any
// object, equal to doc compacted exactly when every key and value span is
// whole and in order.
func membersRejoined(doc []byte) []byte {
	out := []byte{'{'}
	n := 0
	Members(doc, func(k, v []byte) {
		if n > 0 {
			out = append(out, ',')
		}
		n++
		out = append(out, k...)
		out = append(out, ':')
		out = append(out, v...)
	})
	return append(out, '}')
}

func checkMembers(t *testing.T, doc []byte) {
	t.Helper()
	if !json.Valid(doc) || KindOfText(doc) != KindObject {
		return
	}
	var want, got bytes.Buffer
	if err := json.Compact(&want, doc); err != nil {
		t.Fatal(err)
	}
	if err := json.Compact(&got, membersRejoined(doc)); err != nil {
		t.Fatalf("%q: members do not rejoin as JSON: %v", doc, err)
	}
	if got.String() != want.String() {
		t.Fatalf("%q: members rejoin as %s", doc, got.String())
	}
}

func TestMembers(t *testing.T) {
	for _, doc := range []string{
		`{}`, ` { } `, `{"a":1}`, "\t{ \"a\" : [ 1 , {\"b\" : \"}\"} ] ,\n\"a\":null , \"\\\"\":\"\\\\\" }\r\n",
		`{"x":{"y":{"z":[]}},"n":-1.5e3,"t":true,"f":false,"s":"\u00e9"}`,
	} {
		checkMembers(t, []byte(doc))
	}
	var keys []string
	Members([]byte(`{"a":1,"b":{"c":2},"a":3}`), func(k, _ []byte) { keys = append(keys, string(k)) })
	if len(keys) != 3 || keys[0] != `"a"` || keys[1] != `"b"` || keys[2] != `"a"` {
		t.Fatalf("keys %q, want every member in document order, duplicates included", keys)
	}
}

func FuzzMembers(f *testing.F) {
	for _, s := range []string{`{"a":1}`, ` { "b" : [ {"c":"]"} ] , "d":"\""} `, `[1]`, `{"e":{}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkMembers(t, doc) })
}
