package mapping

import (
	"math"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// resultJSON is JSON.stringify(v) for a script's result, with the checks
// of the limits (nesting, array lengths). A result made of plain objects,
// arrays and primitives (the usual one) is written in one walk here;
// anything else takes the checked JSON.stringify, which walks it twice
// (tooDeep, then goja's stringify) but knows every case.
func (m *jsRuntime) resultJSON(v goja.Value) ([]byte, error) {
	if b, ok := m.writeResult(v); ok {
		return b, nil
	}
	js, err := m.stringifyChecked(goja.Undefined(), v)
	if err != nil {
		return nil, err
	}
	return []byte(js.String()), nil
}

// writeResult writes v as JSON.stringify would, or gives up (ok false) on
// anything but plain objects, arrays, strings, numbers, booleans, null
// and undefined: a toJSON method anywhere on an object's prototype chain,
// wrapper objects, proxies, functions as values, symbols, BigInts, cycles,
// nesting past ojson.MaxDepth, an array longer than the limits allow, more
// than resultWalkObjects objects, a getter that throws, or a string or key
// holding U+FFFD (a lone surrogate reads as U+FFFD from Go, and goja
// writes it as an escape). What it writes is byte for byte what goja's
// JSON.stringify writes: the same key order, number formatting and escapes.
func (m *jsRuntime) writeResult(v goja.Value) (b []byte, ok bool) {
	w := resultWriter{buf: make([]byte, 0, 256), maxLen: m.maxArrayLen}
	defer func() {
		if recover() != nil { // a getter threw, or the run was interrupted: goja's path says so
			b, ok = nil, false
		}
	}()
	written, ok := w.value(v)
	return w.buf, ok && written
}

// resultWalkObjects bounds the objects writeResult visits: a shared
// structure can make the walk exponential, which tooDeep's visit set
// handles.
const resultWalkObjects = 4096

var (
	plainObjectType = reflect.TypeOf(map[string]any(nil))
	plainArrayType  = reflect.TypeOf([]any(nil))
)

type resultWriter struct {
	buf    []byte
	path   []*goja.Object // the objects being written, for cycles
	visits int
	maxLen int64
}

// value writes v; written false: v is undefined (or a function, which
// JSON.stringify leaves out too, but that gives up here).
func (w *resultWriter) value(v goja.Value) (written, ok bool) {
	if v == nil || goja.IsUndefined(v) {
		return false, true
	}
	if goja.IsNull(v) {
		w.buf = append(w.buf, "null"...)
		return true, true
	}
	switch v := v.(type) {
	case *goja.Object:
		return true, w.object(v)
	case *goja.Symbol: // exports as a string
		return false, false
	}
	switch v.ExportType().Kind() {
	case reflect.String:
		if !w.str(v.String()) {
			return false, false
		}
	case reflect.Int64:
		w.buf = append(w.buf, v.String()...)
	case reflect.Float64:
		if f := v.ToFloat(); math.IsNaN(f) || math.IsInf(f, 0) {
			w.buf = append(w.buf, "null"...)
		} else {
			w.buf = append(w.buf, v.String()...)
		}
	case reflect.Bool:
		w.buf = strconv.AppendBool(w.buf, v.ToBoolean())
	default: // symbols, BigInts
		return false, false
	}
	return true, true
}

// str writes s as goja's JSON.stringify quotes it, which is ojson.Ditto's
// escaping for any text without U+FFFD.
func (w *resultWriter) str(s string) bool {
	if strings.ContainsRune(s, utf8.RuneError) {
		return false
	}
	w.buf = ojson.Ditto.AppendString(w.buf, s)
	return true
}

func (w *resultWriter) object(o *goja.Object) bool {
	if w.visits++; w.visits > resultWalkObjects || len(w.path) >= ojson.MaxDepth {
		return false
	}
	t, cls := o.ExportType(), o.ClassName()
	array := cls == "Array" && t == plainArrayType
	if !array && (cls != "Object" || t != plainObjectType) {
		return false
	}
	if toJSON := o.Get("toJSON"); toJSON != nil && !goja.IsUndefined(toJSON) {
		return false
	}
	for _, p := range w.path {
		if p == o {
			return false
		}
	}
	w.path = append(w.path, o)
	defer func() { w.path = w.path[:len(w.path)-1] }()
	if array {
		return w.array(o)
	}
	w.buf = append(w.buf, '{')
	empty := true
	for _, k := range o.Keys() {
		mark := len(w.buf)
		if !empty {
			w.buf = append(w.buf, ',')
		}
		if !w.str(k) {
			return false
		}
		w.buf = append(w.buf, ':')
		written, ok := w.value(o.Get(k))
		if !ok {
			return false
		}
		if !written {
			w.buf = w.buf[:mark]
			continue
		}
		empty = false
	}
	w.buf = append(w.buf, '}')
	return true
}

func (w *resultWriter) array(o *goja.Object) bool {
	n := o.Get("length").ToInteger()
	if n > w.maxLen {
		return false
	}
	w.buf = append(w.buf, '[')
	for i := int64(0); i < n; i++ {
		if i > 0 {
			w.buf = append(w.buf, ',')
		}
		written, ok := w.value(o.Get(strconv.FormatInt(i, 10)))
		if !ok {
			return false
		}
		if !written {
			w.buf = append(w.buf, "null"...)
		}
	}
	w.buf = append(w.buf, ']')
	return true
}
