package ojson

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

var corpus = []string{
	`{"topic":"org.acme/dev-1/things/twin/events/modified","headers":{"correlation-id":"c-1"},"path":"/features/temp/properties/value","value":21,"revision":3}`,
	` { "a" : [ 1 , -2.5e+3 , 0 , 0.1 , 1E9 , true , false , null , "x" , [ ] , { } ] } `,
	`{"a":1,"b":2,"a":3}`,
	`{"esc":"a\"b\\c\nd\u00e9\u2028\ud83d\ude00","html":"<&>","uni":"é😀","ls":"` + "\u2028" + `"}`,
	`{"k\u00e9y":"v","k\"":1}`,
	"\"bad utf8 \xff here\"", "{\"\xffk\":1}",
	`[]`, `{}`, `"s"`, `12`, `-0`, `null`, `true`,
	// invalid or unusual: the fast path must give up, Parse decides
	`{"a":01}`, `01`, `1 2`, `{"a":1}x`, `{"a":1,}`, `[1,]`, `{"a"}`, `{a:1}`, `"\x"`, "\"ctl\x01\"", `-`, `1.`, `1e`, `.5`,
	`{"a":tru}`, `nul`, ``, `   `, `{"a":[1,2}`, `{"a":"unterminated`, `[1 2]`, `+1`, `"\ud800"`,
}

var escapeCorpus = []string{"", "plain", "a\"b", "a\\b", "\n\t\x01\b\f\r\x1f", "<&>", "é😀", "\u2028\u2029", "bad\xffutf8", "\x7f", "x\xe2\x80"}

// goQuote is encoding/json's literal with HTML escaping off.
func goQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

// check holds, for one input, everything the package promises: the byte
// scanner builds the slow path's tree or gives up, both escapings agree
// with encoding/json where they should, and what is written reads back the
// same.
func check(t *testing.T, in []byte) {
	t.Helper()
	for _, e := range []Escaping{Ditto, GoJSON} {
		want, werr := e.slowParse(in)
		got, ok := e.fastParse(in)
		if ok {
			if werr != nil {
				t.Fatalf("%q: fast path accepted what encoding/json rejects (%v)", in, werr)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%q: fast %s, slow %s", in, e.Marshal(got), e.Marshal(want))
			}
		}
		if werr != nil {
			continue
		}
		out := e.Marshal(want)
		again, err := e.Parse(out)
		if err != nil || !bytes.Equal(e.Marshal(again), out) {
			t.Fatalf("%q: written %s does not read back (%v)", in, out, err)
		}
		if !json.Valid(out) {
			t.Fatalf("%q: wrote invalid JSON %s", in, out)
		}
		// Find reads the members' spans as the parser reads their values
		// (keys compared as stored: invalid UTF-8 is not normalised).
		if o, isObj := want.(*Object); isObj && json.Valid(in) && utf8.Valid(in) {
			for _, k := range o.Keys() {
				s, end, found := Find(in, []string{k})
				if !found {
					t.Fatalf("%q: Find(%q) found nothing", in, k)
				}
				v, err := e.Parse(in[s:end])
				if err != nil || !bytes.Equal(e.Marshal(v), e.Marshal(o.Value(k))) {
					t.Fatalf("%q: Find(%q) = %q (%v)", in, k, in[s:end], err)
				}
			}
		}
	}
	s := string(in)
	if got := string(GoJSON.AppendString(nil, s)); got != goQuote(s) {
		t.Fatalf("GoJSON %q = %s, encoding/json %s", s, got, goQuote(s))
	}
	// Ditto differs only in writing U+2028 and U+2029 as they are.
	if got := string(Ditto.AppendString(nil, s)); strings.NewReplacer("\u2028", `\u2028`, "\u2029", `\u2029`).Replace(got) != goQuote(s) {
		t.Fatalf("Ditto %q = %s, encoding/json %s", s, got, goQuote(s))
	}
	for _, e := range []Escaping{Ditto, GoJSON} {
		lit := e.Quote(s)
		if string(lit) != string(e.AppendString(nil, s)) {
			t.Fatalf("Quote %q = %s", s, lit)
		}
		if u, ok := Unquote(lit); !ok || (utf8.ValidString(s) && u != s) {
			t.Fatalf("Unquote(%s) = %q %v", lit, u, ok)
		}
	}
}

func TestParse(t *testing.T) {
	for _, in := range corpus {
		check(t, []byte(in))
	}
	for _, s := range escapeCorpus {
		check(t, []byte(s))
	}
}

func FuzzParse(f *testing.F) {
	for _, in := range corpus {
		f.Add([]byte(in))
	}
	for _, s := range escapeCorpus {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) { check(t, in) })
}

func TestEscapings(t *testing.T) {
	for s, want := range map[string][2]string{
		"<&>":          {`"<&>"`, `"<&>"`},
		"\u2028":       {"\"\u2028\"", `"\u2028"`},
		"a\"\\\b\f\n":  {`"a\"\\\b\f\n"`, `"a\"\\\b\f\n"`},
		"\x01\x7f\xff": {"\"\\u0001\x7f\\ufffd\"", "\"\\u0001\x7f\\ufffd\""},
	} {
		if got := string(Ditto.AppendString(nil, s)); got != want[0] {
			t.Errorf("Ditto %q = %s, want %s", s, got, want[0])
		}
		if got := string(GoJSON.AppendString(nil, s)); got != want[1] {
			t.Errorf("GoJSON %q = %s, want %s", s, got, want[1])
		}
	}
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

// TestDepthBoundOnBothPaths: MaxDepth levels parse, one more fails, on the
// byte scanner and on the encoding/json path alike.
func TestDepthBoundOnBothPaths(t *testing.T) {
	for _, n := range []int{MaxDepth, MaxDepth + 1} {
		doc := []byte(deep(n))
		_, fastOK := GoJSON.fastParse(doc)
		_, slowErr := GoJSON.slowParse(doc)
		if want := n <= MaxDepth; fastOK != want || (slowErr == nil) != want {
			t.Fatalf("depth %d: fast ok %v, slow err %v", n, fastOK, slowErr)
		}
		if n > MaxDepth && !errors.Is(slowErr, ErrTooDeep) {
			t.Fatalf("depth %d: %v, want ErrTooDeep", n, slowErr)
		}
		if Depth(doc) != n {
			t.Fatalf("Depth = %d, want %d", Depth(doc), n)
		}
	}
}

func TestObjectOrderAndDuplicates(t *testing.T) {
	o, err := Ditto.ParseObject([]byte(`{"b":1,"a":2,"b":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(Ditto.Marshal(o)); got != `{"b":3,"a":2}` {
		t.Fatalf("got %s", got)
	}
	o.Remove("b")
	o.SetPointer([]string{"x", "y"}, json.RawMessage(`true`))
	if got := string(Ditto.Marshal(o)); got != `{"a":2,"x":{"y":true}}` {
		t.Fatalf("got %s", got)
	}
	if v, ok := o.GetPointer([]string{"x", "y"}); !ok || !bytes.Equal(v.(json.RawMessage), []byte("true")) {
		t.Fatalf("GetPointer = %v %v", v, ok)
	}
	c := o.Clone()
	c.Set("z", json.RawMessage(`1`))
	if o.Has("z") || c.Len() != 3 {
		t.Fatal("Clone shares keys")
	}
	if _, err := Ditto.ParseObject([]byte(`[1]`)); !errors.Is(err, ErrNotObject) {
		t.Fatalf("ParseObject of an array: %v", err)
	}
}

func TestSplice(t *testing.T) {
	got := Splice([]byte("0123456789"), []Edit{{Start: 7, End: 8, Repl: []byte("xyz")}, {Start: 1, End: 3}})
	if string(got) != "03456xyz89" {
		t.Fatalf("got %s", got)
	}
}

func TestKindOf(t *testing.T) {
	v, err := Ditto.Parse([]byte(`[null,true,false,-1.5e3,"s",[],{}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Kind{KindNull, KindBool, KindBool, KindNumber, KindString, KindArray, KindObject}
	for i, e := range v.([]any) {
		if KindOf(e) != want[i] {
			t.Errorf("element %d: %v, want %v", i, KindOf(e), want[i])
		}
	}
	if KindOf(nil) != KindNull || KindOf(json.RawMessage(nil)) != KindNull {
		t.Error("nil is not null")
	}
}

func TestFind(t *testing.T) {
	doc := []byte(` {"a" : {"b":[1,{"c":2}], "k\u0065y":"v1", "key" : "v\"2"}, "s":"}{", "n":-1.5e3 } `)
	for _, c := range []struct {
		keys []string
		want string
	}{
		{[]string{"a", "key"}, `"v\"2"`}, // the last of a duplicated key, escapes read
		{[]string{"s"}, `"}{"`},
		{[]string{"n"}, `-1.5e3`},
		{[]string{"a", "b"}, `[1,{"c":2}]`},
		{nil, `{"a" : {"b":[1,{"c":2}], "k\u0065y":"v1", "key" : "v\"2"}, "s":"}{", "n":-1.5e3 }`},
	} {
		s, e, ok := Find(doc, c.keys)
		if !ok || string(doc[s:e]) != c.want {
			t.Errorf("%v: %q %v, want %s", c.keys, doc[s:e], ok, c.want)
		}
	}
	for _, keys := range [][]string{{"x"}, {"a", "b", "c"}, {"s", "x"}} {
		if _, _, ok := Find(doc, keys); ok {
			t.Errorf("%v found", keys)
		}
	}
	if KindOfText(doc) != KindObject || KindOfText([]byte(" [1]")) != KindArray || KindOfText([]byte(`"x"`)) != KindString {
		t.Error("KindOfText")
	}
}
