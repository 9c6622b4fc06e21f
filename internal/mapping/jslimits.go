package mapping

import (
	"errors"
	"fmt"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/dlclark/regexp2/v2"
	"github.com/dop251/goja"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// Resource limits of mapping scripts. A script is written by an operator
// and fed by devices, and goja has no heap limit: a Go allocation that the
// OS refuses, or a recursion that outgrows the goroutine stack, ends the
// whole process with a fatal error that recover cannot catch. So the
// allocation paths a script reaches in one native step (String repeat and
// padding, ArrayBuffer and typed array constructors, Array constructors
// and fill, Array.from) are checked before they run, JSON.parse and
// JSON.stringify refuse nesting beyond ojson.MaxDepth, and a watchdog
// interrupts a running script whose run has grown the heap beyond a bound
// (concatenation in a loop, arrays pushed without end). A sparse array
// whose length was set by assignment is checked where a native loop walks
// it: the Array methods that do, and the array iterator behind spread and
// for-of.

// ErrScriptMemory: a script exceeded its memory bound.
var ErrScriptMemory = errors.New("mapping: script exceeded its memory limit")

func init() {
	SetRegexpTimeout(DefaultConfig().JavaScript.MaxScriptExecutionTime)
}

// SetRegexpTimeout bounds one regular expression match of any script in
// the process (the configured maxScriptExecutionTime). goja runs non-RE2
// patterns (backreferences, lookahead) on regexp2, whose backtracking runs
// natively, out of reach of the execution-time interrupt; regexp2 reads
// this process-wide bound when a pattern is compiled, so it is set once at
// start, before any mapper runs. A match that times out is a non-match to
// the script.
func SetRegexpTimeout(d time.Duration) {
	regexp2.DefaultMatchTimeout = d
}

// jsGuards wraps the native allocation paths: __dittoconn.alloc(n) throws
// when n bytes exceed the script's allocation bound.
// Constructors are replaced by proxies, and each prototype's constructor
// points at the proxy, so `new x.constructor(n)` is checked too.
const jsGuards = `
(function (g, alloc) {
  var AB = ArrayBuffer;
  function len(a) {
    if (typeof a === 'number') { return a; }
    if (a !== null && typeof a === 'object' && !(a instanceof AB) && typeof a.length === 'number') { return a.length; }
    return 0;
  }
  function def(o, k, v) { Object.defineProperty(o, k, { value: v, writable: true, configurable: true, enumerable: false }); }
  function guard(name, unit, onCall) {
    var C = g[name];
    if (typeof C !== 'function') { return; }
    // goja's instanceof does not reach through a proxy: answer it here.
    var isInstance = function (v) { return v instanceof C; };
    var handler = {
      construct: function (t, args, nt) { alloc(len(args[0]) * unit); return Reflect.construct(t, args, nt); },
      get: function (t, k, r) { return k === Symbol.hasInstance ? isInstance : Reflect.get(t, k, r); }
    };
    if (onCall) { handler.apply = function (t, self, args) { if (args.length === 1) { alloc(len(args[0]) * unit); } return Reflect.apply(t, self, args); }; }
    var P = new Proxy(C, handler);
    def(C.prototype, 'constructor', P);
    def(g, name, P);
  }
  guard('ArrayBuffer', 1);
  guard('Uint8Array', 1); guard('Int8Array', 1); guard('Uint8ClampedArray', 1);
  guard('Uint16Array', 2); guard('Int16Array', 2);
  guard('Uint32Array', 4); guard('Int32Array', 4); guard('Float32Array', 4);
  guard('Float64Array', 8); guard('BigInt64Array', 8); guard('BigUint64Array', 8);
  guard('Array', 16, true);
  var from = Array.from;
  def(Array, 'from', function (a) { alloc(len(a) * 16); return from.apply(this, arguments); });
  var fill = Array.prototype.fill;
  def(Array.prototype, 'fill', function () { alloc(this.length * 16); return fill.apply(this, arguments); });
  var join = Array.prototype.join;
  def(Array.prototype, 'join', function (sep) { alloc(this.length * (sep === undefined ? 1 : String(sep).length)); return join.apply(this, arguments); });
  // A sparse array costs nothing until a native loop walks its length
  // (spread, slice, map, sort…): every Array method that walks it, and
  // the iterator spread and for-of use, checks the length first.
  var AP = Array.prototype;
  ['slice', 'map', 'filter', 'concat', 'reverse', 'sort', 'splice', 'flat', 'flatMap', 'forEach', 'reduce',
   'reduceRight', 'indexOf', 'lastIndexOf', 'includes', 'every', 'some', 'find', 'findIndex', 'findLast',
   'findLastIndex', 'copyWithin', 'keys', 'values', 'entries', 'toString', 'toLocaleString', 'toReversed',
   'toSorted', 'toSpliced', 'with'].forEach(function (k) {
    var f = AP[k];
    if (typeof f !== 'function') { return; }
    def(AP, k, function () { if (this !== null && this !== undefined) { alloc(len(this) * 16); } return f.apply(this, arguments); });
  });
  def(AP, Symbol.iterator, AP.values);
  var repeat = String.prototype.repeat;
  def(String.prototype, 'repeat', function (n) { alloc(String(this).length * n * 2); return repeat.call(this, n); });
  var padStart = String.prototype.padStart, padEnd = String.prototype.padEnd;
  def(String.prototype, 'padStart', function (n) { alloc(n * 2); return padStart.apply(this, arguments); });
  def(String.prototype, 'padEnd', function (n) { alloc(n * 2); return padEnd.apply(this, arguments); });
  // An argument list is built natively from an array-like's length.
  var FP = Function.prototype, apply = FP.apply, rapply = Reflect.apply, rconstruct = Reflect.construct;
  def(FP, 'apply', function (self, args) { alloc(len(args) * 16); return rapply(apply, this, arguments); });
  def(Reflect, 'apply', function (f, self, args) { alloc(len(args) * 16); return rapply(rapply, Reflect, arguments); });
  def(Reflect, 'construct', function (C, args) { alloc(len(args) * 16); return rapply(rconstruct, Reflect, arguments); });
})(this, __dittoconn.alloc);
`

var guardsProgram = goja.MustCompile("ditto-limits.js", jsGuards, false)

// installLimits adds the allocation guards and the depth-checked JSON
// functions to m's runtime; it runs before the user's scripts, and m's
// parse and stringify are the checked ones.
func (m *jsRuntime) installLimits(maxAlloc int64) error {
	vm := m.vm
	m.maxArrayLen = maxAlloc / minJSONElementBytes
	helpers := vm.Get("__dittoconn").ToObject(vm)
	_ = helpers.Set("alloc", func(call goja.FunctionCall) goja.Value {
		if n := call.Argument(0).ToFloat(); n > float64(maxAlloc) {
			panic(vm.NewGoError(fmt.Errorf("%w: an allocation of %.0f bytes exceeds %d", ErrScriptMemory, n, maxAlloc)))
		}
		return goja.Undefined()
	})
	if _, err := vm.RunProgram(guardsProgram); err != nil {
		return err
	}
	// JSON.parse and JSON.stringify recurse natively (a Go stack overflow is
	// fatal): both refuse deep nesting first. Go functions, not JS
	// wrappers, so the check costs no JS frames on the mappers' hot path.
	j := vm.Get("JSON").ToObject(vm)
	parse, _ := goja.AssertFunction(j.Get("parse"))
	stringify, _ := goja.AssertFunction(j.Get("stringify"))
	m.parse = func(this goja.Value, args ...goja.Value) (goja.Value, error) {
		if len(args) > 0 {
			if s, ok := args[0].Export().(string); ok {
				if len(args) == 1 || goja.IsUndefined(args[1]) { // a reviver takes goja's path
					if v, ok := parseJSON(vm, s); ok {
						return v, nil
					}
				}
				if ojson.Depth(s) > ojson.MaxDepth {
					return nil, ojson.ErrTooDeep
				}
			}
		}
		return parse(this, args...)
	}
	m.stringifyChecked = func(this goja.Value, args ...goja.Value) (goja.Value, error) {
		if len(args) > 0 {
			deep, long := tooDeep(args[0], m.maxArrayLen)
			switch {
			case deep:
				return nil, ojson.ErrTooDeep
			case long > 0:
				return nil, fmt.Errorf("%w: JSON of an array of %d elements exceeds %d bytes", ErrScriptMemory, long, maxAlloc)
			}
		}
		return stringify(this, args...)
	}
	// The usual call, one plain value and no replacer or indent, is
	// written in one walk (resultWriter), byte for byte as goja writes it.
	m.stringify = func(this goja.Value, args ...goja.Value) (goja.Value, error) {
		if len(args) > 0 && absent(args[1:]...) {
			if b, ok := m.writeResult(args[0]); ok {
				return vm.ToValue(string(b)), nil
			}
		}
		return m.stringifyChecked(this, args...)
	}
	for name, f := range map[string]goja.Callable{"parse": m.parse, "stringify": m.stringify} {
		native := func(call goja.FunctionCall) goja.Value {
			v, err := f(call.This, call.Arguments...)
			switch {
			case errors.Is(err, ojson.ErrTooDeep), errors.Is(err, ErrScriptMemory):
				panic(vm.NewGoError(err)) // a JS exception the script may catch
			case err != nil:
				panic(err) // the callee's exception, or an interrupt that must go on up
			}
			return v
		}
		if err := j.DefineDataProperty(name, vm.ToValue(native), goja.FLAG_TRUE, goja.FLAG_FALSE, goja.FLAG_TRUE); err != nil {
			return err
		}
	}
	return nil
}

// absent: every value is undefined or null.
func absent(vs ...goja.Value) bool {
	for _, v := range vs {
		if v != nil && !goja.IsUndefined(v) && !goja.IsNull(v) {
			return false
		}
	}
	return true
}

// minJSONElementBytes is the least an array element takes in JSON
// ("null,"): a sparse array of a huge length costs nothing until
// stringified.
const minJSONElementBytes = 5

// tooDeep reports whether v nests objects or arrays deeper than
// ojson.MaxDepth, and the length of an array in it longer than maxLen
// (0: none). The walk counts visits: a small result (the usual case)
// is walked once with nothing allocated beyond its keys; past walkPlain
// visits it starts again remembering each object's deepest visit, so
// shared and cyclic structures stay linear.
func tooDeep(v goja.Value, maxLen int64) (bool, int64) {
	const walkPlain = 4096
	visits := 0
	var long int64
	var seen map[*goja.Object]int
	var walk func(v goja.Value, d int) (deep, again bool)
	walk = func(v goja.Value, d int) (bool, bool) {
		o, ok := v.(*goja.Object)
		if !ok {
			return false, false
		}
		cls := o.ClassName()
		if cls != "Object" && cls != "Array" {
			return false, false
		}
		if d > ojson.MaxDepth {
			return true, false
		}
		if cls == "Array" {
			if n := o.Get("length").ToInteger(); n > maxLen {
				long = n
				return true, false
			}
		}
		if seen != nil {
			if prev, ok := seen[o]; ok && prev >= d {
				return false, false
			}
			seen[o] = d
		} else if visits++; visits > walkPlain {
			return false, true
		}
		for _, k := range o.Keys() {
			if deep, again := walk(o.Get(k), d+1); deep || again {
				return deep, again
			}
		}
		return false, false
	}
	deep, again := walk(v, 1)
	if again {
		seen = map[*goja.Object]int{}
		deep, _ = walk(v, 1)
	}
	if long > 0 {
		return false, long
	}
	return deep, 0
}

// heapWatch interrupts running scripts whose run grew the heap by more
// than their bound. The heap is the process's, so concurrent work counts
// too: the bound is generous, and the watch runs only while a script does.
var heapWatch = &watchdog{runs: map[*goja.Runtime]watched{}}

type watched struct {
	base  uint64
	limit uint64
}

type watchdog struct {
	mu      sync.Mutex
	runs    map[*goja.Runtime]watched
	running bool
}

// heapSample is the runtime/metrics name of live and unswept heap objects.
const heapSample = "/memory/classes/heap/objects:bytes"

func heapBytes() uint64 {
	s := []metrics.Sample{{Name: heapSample}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// watch registers vm for the duration of one run; the returned func ends it.
func (w *watchdog) watch(vm *goja.Runtime, limit uint64) func() {
	if limit == 0 {
		return func() {}
	}
	w.mu.Lock()
	w.runs[vm] = watched{base: heapBytes(), limit: limit}
	if !w.running {
		w.running = true
		go w.loop()
	}
	w.mu.Unlock()
	return func() {
		w.mu.Lock()
		delete(w.runs, vm)
		w.mu.Unlock()
	}
}

func (w *watchdog) loop() {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for range t.C {
		heap := heapBytes()
		w.mu.Lock()
		if len(w.runs) == 0 {
			w.running = false
			w.mu.Unlock()
			return
		}
		for vm, r := range w.runs {
			if heap > r.base && heap-r.base > r.limit {
				vm.Interrupt(ErrScriptMemory)
			}
		}
		w.mu.Unlock()
	}
}
