package document

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// canonical renders BSON as canonical extended JSON: it shows key order and
// every BSON type ($numberInt, $numberLong, $numberDouble, $oid).
func canonical(t testing.TB, raw bson.Raw) string {
	t.Helper()
	out, err := bson.MarshalExtJSON(raw, true, false)
	if err != nil {
		t.Fatalf("MarshalExtJSON: %v", err)
	}
	return string(out)
}

func TestFromJSON(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", `{}`, `{}`},
		{"scalars", `{"s":"x","t":true,"f":false,"n":null}`, `{"s":"x","t":true,"f":false,"n":null}`},
		{"int32", `{"a":1,"b":-2147483648,"c":2147483647,"z":0,"m":-0}`,
			`{"a":{"$numberInt":"1"},"b":{"$numberInt":"-2147483648"},"c":{"$numberInt":"2147483647"},"z":{"$numberInt":"0"},"m":{"$numberInt":"0"}}`},
		{"int64", `{"a":2147483648,"b":-2147483649,"c":9223372036854775807,"d":-9223372036854775808}`,
			`{"a":{"$numberLong":"2147483648"},"b":{"$numberLong":"-2147483649"},"c":{"$numberLong":"9223372036854775807"},"d":{"$numberLong":"-9223372036854775808"}}`},
		{"double", `{"a":1.5,"b":-0.25,"c":9223372036854775808,"d":1e300}`,
			`{"a":{"$numberDouble":"1.5"},"b":{"$numberDouble":"-0.25"},"c":{"$numberDouble":"9.223372036854776E+18"},"d":{"$numberDouble":"1E+300"}}`},
		{"integral by value", `{"a":1.0,"b":1e3,"c":5E9}`,
			`{"a":{"$numberInt":"1"},"b":{"$numberInt":"1000"},"c":{"$numberLong":"5000000000"}}`},
		{"key order kept", `{"z":1,"a":2,"m":3}`,
			`{"z":{"$numberInt":"1"},"a":{"$numberInt":"2"},"m":{"$numberInt":"3"}}`},
		{"keys escaped at every level", `{"mqtt.topic":{"$x.y":[{"a.b":"c.d$"}]}}`,
			`{"mqtt．topic":{"＄x．y":[{"a．b":"c.d$"}]}}`},
		{"nested arrays", `{"a":[[],[1,[true]],{}]}`,
			`{"a":[[],[{"$numberInt":"1"},[true]],{}]}`},
		{"string escapes", `{"s":"q\"b\\s\/n\nt\tu\u00e9\ud83d\ude00"}`, `{"s":"q\"b\\s/n\nt\tué😀"}`},
		{"whitespace", " { \"a\" : [ 1 , 2 ] ,\n\"b\" : { } } ", `{"a":[{"$numberInt":"1"},{"$numberInt":"2"}],"b":{}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := FromJSON([]byte(tt.in))
			if err != nil {
				t.Fatalf("FromJSON: %v", err)
			}
			if err := raw.Validate(); err != nil {
				t.Fatalf("invalid BSON: %v", err)
			}
			if got := canonical(t, raw); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestFromJSONErrors(t *testing.T) {
	for name, in := range map[string]string{
		"invalid":     `{"a":`,
		"not object":  `[1]`,
		"string":      `"x"`,
		"NUL in key":  `{"a\u0000b":1}`,
		"bad utf8":    "{\"a\":\"\xff\"}",
		"empty input": ``,
		"huge":        `{"a":1e400}`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := FromJSON([]byte(in)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("FromJSON(%q) = %v, want ErrMalformed", in, err)
			}
		})
	}
}

// Compact JSON as dittoconn's model writes it comes back byte for byte.
func TestJSONRoundTrip(t *testing.T) {
	payload := readPayload(t)
	for _, in := range []string{
		`{}`,
		`{"a":1,"b":-1,"c":2147483648,"d":1.5,"e":-0.001,"f":1e-7,"g":1e+21,"h":123456.789}`,
		`{"mqtt.topic":"x","$set":{"a.b.c":[1,"two",null,true,false,{"$k":[]}]}}`,
		`{"s":"tab\there \"quoted\" back\\slash \u0001 ctl é ✓ 😀 <html> & </html>"}`,
		`{"z":{},"y":[],"x":[[[]]]}`,
		string(payload),
	} {
		raw, err := FromJSON([]byte(in))
		if err != nil {
			t.Fatalf("FromJSON(%s): %v", in, err)
		}
		out, err := ToJSON(raw)
		if err != nil {
			t.Fatalf("ToJSON: %v", err)
		}
		if string(out) != in {
			t.Errorf("round trip:\n got %s\nwant %s", out, in)
		}
	}
}

func TestToJSONOtherTypes(t *testing.T) {
	id, _ := bson.ObjectIDFromHex("66c4a0f1e3b1c2d3e4f50617")
	raw, err := bson.Marshal(bson.D{{Key: "id", Value: id}, {Key: "d", Value: 2.0}, {Key: "u", Value: bson.Undefined{}}})
	if err != nil {
		t.Fatal(err)
	}
	out, err := ToJSON(raw)
	if err != nil {
		t.Fatalf("ToJSON: %v", err)
	}
	if want := `{"id":{"$oid":"66c4a0f1e3b1c2d3e4f50617"},"d":2,"u":null}`; string(out) != want {
		t.Errorf("got %s, want %s", out, want)
	}
	nan, _ := bson.Marshal(bson.D{{Key: "x", Value: nanValue()}})
	if _, err := ToJSON(nan); !errors.Is(err, ErrMalformed) {
		t.Errorf("NaN: err = %v, want ErrMalformed", err)
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func FuzzJSONRoundTrip(f *testing.F) {
	f.Add([]byte(`{"a.b":[1,1.5,"x",null,{"$c":true}]}`))
	f.Add([]byte(`{"n":-9223372036854775808,"m":1e21}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		first, err := FromJSON(in)
		if err != nil {
			return
		}
		js, err := ToJSON(first)
		if err != nil {
			t.Fatalf("ToJSON after FromJSON(%q): %v", in, err)
		}
		second, err := FromJSON(js)
		if err != nil {
			t.Fatalf("FromJSON(ToJSON) %q: %v", js, err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("not stable: %q → %s", in, js)
		}
	})
}

func readPayload(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/connection_created.json")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}

func BenchmarkFromJSON(b *testing.B) {
	payload := readPayload(b)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	buf := make([]byte, 0, 4096)
	for b.Loop() {
		var err error
		if buf, err = AppendJSON(buf[:0], payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkToJSON(b *testing.B) {
	raw, err := FromJSON(readPayload(b))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ToJSON(raw); err != nil {
			b.Fatal(err)
		}
	}
}
