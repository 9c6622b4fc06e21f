package mapping

import (
	"testing"

	"github.com/dop251/goja"
)

// writeResult writes what goja's JSON.stringify writes, byte for byte, or
// gives up and leaves the value to it.
func TestWriteResultAsStringify(t *testing.T) {
	rt, err := newJSRuntime("w", "", "", false, false, DefaultConfig().JavaScript, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	written := []string{
		`({topic: 'a/b/things/twin/commands/modify', headers: {'content-type': 'x', n: 1}, path: '/', value: {t: 23.42, h: 78}})`,
		`({s: 'é😀 "q" \\ \n \u0001 \u2028 \u007f', neg: -0, big: 1e21, small: 1e-7, nan: NaN, inf: -Infinity, i: 12345678901234567890})`,
		`({u: undefined, f: null, b: [1, undefined, , null, true, false], e: [], o: {}})`,
		`({b: 1, a: 2, 1: 3, 0: 4})`,
		`(function () { var o = JSON.parse('{"__proto__": {"x": 1}}'); o.y = [o.__proto__, o.__proto__]; return o; })()`,
		`Object.create(null)`,
		`(function () { var o = {a: 1}; Object.defineProperty(o, 'hidden', {value: 2, enumerable: false}); Object.defineProperty(o, 'g', {get: function () { return 'got'; }, enumerable: true}); return o; })()`,
		`[[[[[{deep: 'enough'}]]]]]`,
	}
	for _, src := range written {
		v, err := rt.vm.RunString(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		got, ok := rt.writeResult(v)
		if !ok {
			t.Errorf("writeResult gave up on %s", src)
			continue
		}
		js, err := rt.stringifyChecked(nil, v)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if string(got) != js.String() {
			t.Errorf("%s:\n writeResult %s\n stringify   %s", src, got, js)
		}
	}
	gaveUp := []string{
		`({d: new Date(0)})`, `({toJSON: function () { return 1; }})`,
		`({n: new Number(1)})`, `({s: new String('s')})`, `({p: new Proxy({}, {})})`, `({f: function () {}})`,
		`({s: Symbol('s')})`, `({b: 1n})`, `(function () { var o = {}; o.o = o; return o; })()`,
		`(function () { var o = {}; for (var i = 0; i < 600; i++) { o = {a: o}; } return o; })()`,
		`({g: Object.defineProperty({}, 'x', {get: function () { throw new Error('no'); }, enumerable: true})})`,
		`(function () { var a = [1]; for (var i = 0; i < 13; i++) { a = [a, a]; } return a; })()`, // shared: 8,191 arrays walked
		`({m: new Map()})`, `({u: new Uint8Array(2)})`, `({lone: '\ud800'})`, `({'\udc00': 1})`,
		`(function () { Object.prototype.toJSON = function () { return 'x'; }; return {a: 1}; })()`, // last: it stays
	}
	for _, src := range gaveUp {
		v, err := rt.vm.RunString(src)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got, ok := rt.writeResult(v); ok {
			t.Errorf("writeResult wrote %s for %s", got, src)
		}
	}
}

// Any JSON text, parsed by the script's JSON.parse: JSON.stringify of it
// is written byte for byte as goja writes it, or left to goja.
func FuzzWriteResultAsStringify(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5e-7,"x\u0001\u2028",null,true,{}],"b":-0,"c":1e21}`, `"\u00e9\ud83d\ude00"`,
		`[[],[[]],{"":{"__proto__":[]}}]`, `12345678901234567890`, `{"1":1,"0":0,"b":2,"a":3}`} {
		f.Add(s)
	}
	rt, err := newJSRuntime("f", "", "", false, false, DefaultConfig().JavaScript, DefaultConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		v, err := rt.parse(goja.Undefined(), rt.vm.ToValue(text))
		if err != nil {
			return
		}
		got, ok := rt.writeResult(v)
		if !ok {
			return
		}
		want, err := rt.stringifyChecked(goja.Undefined(), v)
		if err != nil {
			t.Fatalf("stringify refused what writeResult wrote (%s): %v", got, err)
		}
		if string(got) != want.String() {
			t.Fatalf("%q:\n writeResult %s\n stringify   %s", text, got, want)
		}
	})
}
