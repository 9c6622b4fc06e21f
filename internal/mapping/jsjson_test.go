package mapping

import (
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// sameJS compares two values as JSON.parse results: the same types,
// prototypes, own keys in order and primitives by Object.is (so -0 is not 0).
const sameJS = `(function same(a, b) {
  if (typeof a !== typeof b) { return false; }
  if (typeof a !== 'object' || a === null || b === null) { return Object.is(a, b); }
  if (Array.isArray(a) !== Array.isArray(b) || Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) { return false; }
  var ka = Object.getOwnPropertyNames(a), kb = Object.getOwnPropertyNames(b);
  if (ka.length !== kb.length) { return false; }
  for (var i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i] || !same(a[ka[i]], b[kb[i]])) { return false; }
  }
  return true;
})`

// checkParseJSON: where parseJSON takes text, goja's JSON.parse takes it
// too and builds the same value.
func checkParseJSON(t *testing.T, text string) (handled bool) {
	t.Helper()
	vm := goja.New()
	parse, _ := goja.AssertFunction(vm.Get("JSON").ToObject(vm).Get("parse"))
	fn, err := vm.RunString(sameJS)
	if err != nil {
		t.Fatal(err)
	}
	same, _ := goja.AssertFunction(fn)
	got, ok := parseJSON(vm, text)
	want, err := parse(goja.Undefined(), vm.ToValue(text))
	if !ok {
		return false
	}
	if err != nil {
		t.Fatalf("parseJSON took %q, which JSON.parse refuses: %v", text, err)
	}
	if r, err := same(goja.Undefined(), got, want); err != nil || !r.ToBoolean() {
		t.Fatalf("parseJSON(%q) differs from JSON.parse (%v)", text, err)
	}
	return true
}

func TestParseJSONAsGoja(t *testing.T) {
	handled := []string{
		`{"topic":"org.acme/dev-1/things/twin/events/modified","headers":{"correlation-id":"x"},"path":"/attributes/a","value":{"n":-0,"f":1.5e3,"i":12345678901234567890,"s":"\u00e9\ud83d\ude00 \"q\" \n","b":[true,false,null,[],{}]}}`,
		`  [1, "two", {"three": 3}]  `, `"plain"`, `-0`, `0.1`, `1E+2`, `null`,
		`{"__proto__": {"polluted": true}, "a": 1}`,            // an own property, never the prototype
		`{"a": 1, "a": 2}`, `{"b": 1, "a": 2, "1": 3, "0": 4}`, // duplicates and key order
		`"lone \ud800 surrogate"`, "\"invalid \xff utf-8\"",
		strings.Repeat("[", 512) + strings.Repeat("]", 512),
	}
	for _, text := range handled {
		if !checkParseJSON(t, text) {
			t.Errorf("parseJSON did not take %q", text)
		}
	}
	// goja's own JSON.parse gives the errors (and refuses what
	// encoding/json refuses, such as a float64 overflow).
	for _, text := range []string{``, `{`, `{"a":1,}`, `[1 2]`, `01`, `1e400`, `{"a":1} x`, "\"tab\there\"",
		strings.Repeat("[", 513) + strings.Repeat("]", 513)} {
		if checkParseJSON(t, text) {
			t.Errorf("parseJSON took %q", text)
		}
	}
}

func FuzzParseJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, `"\u0041\ud800"`, `[{"__proto__":1}]`, `-0.0e-0`, `{"":{}}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) { checkParseJSON(t, text) })
}

// A script's JSON.parse, through the limits: a reviver still runs, and
// "__proto__" in the text stays data.
func TestJavaScriptJSONParse(t *testing.T) {
	m := mustJS(t, `function mapToDittoProtocolMsg(headers, textPayload) {
  var p = JSON.parse(textPayload);
  var r = JSON.parse('{"n": 2}', function (k, v) { return k === 'n' ? v * 10 : v; });
  return Ditto.buildDittoProtocolMsg('ns', 'd', 'things', 'twin', 'commands', 'modify', '/attributes', {},
    {own: Object.prototype.hasOwnProperty.call(p, '__proto__'), polluted: ({}).polluted === true || p.polluted === true, n: r.n});
}`, "")
	o := m.MapIncoming(textMsg(map[string]string{}, `{"__proto__": {"polluted": true}}`))
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	jsonEqual(t, string(o.Messages[0].Value), `{"own":true,"polluted":false,"n":20}`)
}
