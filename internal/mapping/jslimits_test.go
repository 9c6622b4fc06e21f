package mapping

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// Each case is an input or a script that, without the mapping bounds, ends
// the process (fatal stack overflow or out of memory) or burns seconds of
// CPU; each must be an ordinary mapping failure, quickly.

func deepArray(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func TestDittoMapperRefusesDeepNesting(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	cfg := testConfig()
	cfg.MaxInboundPayloadBytes = 0 // the depth bound alone
	m.cfg = cfg
	for _, n := range []int{ojson.MaxDepth + 1, 1_000_000} {
		payload := `{"topic":"a/b/things/twin/commands/modify","path":"/","value":` + deepArray(n) + `}`
		out := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto}, payload))
		if !errors.Is(out.Err, ErrMappingFailed) {
			t.Fatalf("depth %d: want a mapping failure, got %+v", n, out)
		}
	}
	ok := `{"topic":"a/b/things/twin/commands/modify","path":"/","value":` + deepArray(ojson.MaxDepth-1) + `}`
	if out := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto}, ok)); out.Err != nil {
		t.Fatalf("depth %d must map: %v", ojson.MaxDepth-1, out.Err)
	}
}

// TestParseJSONDepthBound: the mappers' parser takes MaxDepth levels and
// refuses one more (ojson's TestDepthBoundOnBothPaths holds its byte scanner
// and its encoding/json path to the same bound).
func TestParseJSONDepthBound(t *testing.T) {
	for _, n := range []int{ojson.MaxDepth, ojson.MaxDepth + 1} {
		_, err := gojson.Parse([]byte(deepArray(n)))
		if want := n <= ojson.MaxDepth; (err == nil) != want || (!want && !errors.Is(err, ojson.ErrTooDeep)) {
			t.Fatalf("depth %d: err %v; want accepted=%v", n, err, want)
		}
	}
}

func TestPayloadOverLimitFailsBeforeMapping(t *testing.T) {
	m := mustNew(t, "Ditto", "", nil, nil)
	payload := `{"topic":"a/b/things/twin/commands/modify","path":"/","value":"` + strings.Repeat("x", 250*1000) + `"}`
	out := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto}, payload))
	if !errors.Is(out.Err, ErrMappingFailed) || !strings.Contains(out.Err.Error(), "exceeds the limit of 250000 bytes") {
		t.Fatalf("want the payload limit failure, got %+v", out)
	}
}

func TestJavaScriptLimits(t *testing.T) {
	wrap := func(body string) string {
		return `function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {` + body + `}`
	}
	msg := `return Ditto.buildDittoProtocolMsg('a', 'b', 'things', 'twin', 'commands', 'modify', '/', headers, 1);`
	cases := []struct {
		name, script, payload string
		want                  string // "": maps to one message; else a part of the failure
	}{
		{"repeat beyond the allocation bound", wrap(`var s = 'x'.repeat(1e11);` + msg), "{}", "an allocation of 200000000000 bytes"},
		{"typed array sized by the device", wrap(`var f = JSON.parse(textPayload); var b = new Uint8Array(f.len);` + msg), `{"len":1e11}`, "an allocation of 100000000000 bytes"},
		{"typed array through its prototype's constructor", wrap(`var b = new (new Uint8Array(1).constructor)(1e11);` + msg), "{}", "an allocation of 100000000000 bytes"},
		{"ArrayBuffer", wrap(`var b = new ArrayBuffer(1e11);` + msg), "{}", "an allocation of 100000000000 bytes"},
		{"Array constructor", wrap(`var a = new Array(1e10).fill(0);` + msg), "{}", "an allocation of 160000000000 bytes"},
		{"Array.from", wrap(`var a = Array.from({length: 1e10});` + msg), "{}", "an allocation of 160000000000 bytes"},
		{"padStart", wrap(`var s = 'x'.padStart(1e11);` + msg), "{}", "an allocation of 200000000000 bytes"},
		{"doubling concatenation", wrap(`var s = 'xxxxxxxxxxxxxxxx'; for (var i = 0; i < 40; i++) { s = s + s; }` + msg), "{}", "script exceeded its memory limit"},
		{"JSON.parse of deep nesting", wrap(`JSON.parse(textPayload);` + msg), deepArray(1_000_000), "JSON nested deeper than 512 levels"},
		{"deep result object", wrap(`var o = {}; for (var i = 0; i < 40000; i++) { o = {a: o}; } return Ditto.buildDittoProtocolMsg('a', 'b', 'things', 'twin', 'commands', 'modify', '/', headers, o);`), "{}", "JSON nested deeper than 512 levels"},
		{"20,000 results", wrap(`var r = []; var v = 'x'.repeat(10000); for (var i = 0; i < 20000; i++) { r.push(Ditto.buildDittoProtocolMsg('a', 'b', 'things', 'twin', 'commands', 'modify', '/', headers, v)); } return r;`), "{}", "produced 20000 messages, which exceeds the limit of 10"},
		{"sparse array spread", wrap(`var a = []; a.length = 1e9; var b = [...a];` + msg), "{}", "an allocation of 16000000000 bytes"},
		{"sparse array method", wrap(`var a = []; a.length = 4e9; var b = a.map(function (x) { return x; });` + msg), "{}", "an allocation of 64000000000 bytes"},
		{"sparse array as arguments", wrap(`var a = []; a.length = 1e9; var b = Math.max.apply(null, a);` + msg), "{}", "an allocation of 16000000000 bytes"},
		{"sparse array through Reflect", wrap(`var a = []; a.length = 1e9; var b = Reflect.apply(Math.max, null, a);` + msg), "{}", "an allocation of 16000000000 bytes"},
		{"sparse array to a string", wrap(`var a = []; a.length = 1e9; var b = a + '';` + msg), "{}", "an allocation of 16000000000 bytes"},
		{"sparse array stringified", wrap(`var a = []; a.length = 1e9; var b = JSON.stringify(a);` + msg), "{}", "JSON of an array of 1000000000 elements"},
		{"sparse array as the result", wrap(`var a = []; a.length = 1e9; return Ditto.buildDittoProtocolMsg('a', 'b', 'things', 'twin', 'commands', 'modify', '/', headers, {x: a});`), "{}", "JSON of an array of 1000000000 elements"},
		{"allowed sizes still work", wrap(`var s = 'x'.repeat(1000); var b = new Uint8Array(1024); var a = new Array(10).fill(1); JSON.parse('[[1]]'); var c = [1, 2, 3].map(function (x) { return x; }).concat([...[4]]); Math.max.apply(null, c); JSON.stringify(c);
			if (!(b instanceof Uint8Array) || !(b.buffer instanceof ArrayBuffer) || !(a instanceof Array) || !Array.isArray(Array(2))) { throw new Error('instanceof'); }` + msg), "{}", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			// The limits must act, not the clock: the failure text says
			// which bound ended the script, so a generous execution time
			// keeps a loaded machine from ending it first.
			cfg.JavaScript.MaxScriptExecutionTime = 2 * time.Minute
			cfg.MaxInboundPayloadBytes = 0 // the script's own guards
			m, err := newJS(t, tc.script, "", cfg)
			if err != nil {
				t.Fatal(err)
			}
			out := m.MapIncoming(textMsg(map[string]string{"content-type": "application/json"}, tc.payload))
			if tc.want == "" {
				if out.Err != nil || len(out.Messages) != 1 {
					t.Fatalf("want one message, got %+v", out)
				}
				return
			}
			if !errors.Is(out.Err, ErrMappingFailed) || !strings.Contains(out.Err.Error(), tc.want) {
				t.Fatalf("want a mapping failure with %q, got %+v", tc.want, out)
			}
		})
	}
}

func TestJavaScriptBacktrackingRegexIsBounded(t *testing.T) {
	cfg := testConfig()
	script := `function mapToDittoProtocolMsg(headers, textPayload) {
  var matched = /^(a+)+(?=b)c$/.test(textPayload);
  return Ditto.buildDittoProtocolMsg('a', 'b', 'things', 'twin', 'commands', 'modify', '/', headers, matched);
}`
	m, err := newJS(t, script, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	out := m.MapIncoming(textMsg(map[string]string{"content-type": "text/plain"}, strings.Repeat("a", 40)+"!"))
	// The match runs natively, out of the interrupt's reach; its own
	// timeout ends it and the interrupt then ends the script.
	if !errors.Is(out.Err, ErrTimeout) {
		t.Fatalf("want the execution time limit, got %+v", out)
	}
	// Without its timeout the match would run for hours; the bound is
	// generous so that a loaded machine cannot fail it.
	if d := time.Since(start); d > 20*cfg.JavaScript.MaxScriptExecutionTime {
		t.Fatalf("the regular expression ran %v", d)
	}
}
