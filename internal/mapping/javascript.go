package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/dop251/goja"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// The "JavaScript" engine runs a connection's incomingScript and
// outgoingScript in a goja runtime with the documented Ditto scope
// (Ditto.buildDittoProtocolMsg, Ditto.buildExternalMsg, byte helpers) and
// the documented entry points (mapToDittoProtocolMsg[Wrapper],
// mapFromDittoProtocolMsg[Wrapper]), which a script may override.

// jsPrelude is evaluated before the user's scripts; the user's function
// declarations replace the defaults defined here.
const jsPrelude = `
var Ditto = (function () {
  // Concatenation, as Ditto's scope builds it (undefined parts read
  // "undefined"); an array join would also pass the allocation guards.
  function topicOf(namespace, name, group, channel, criterion, action) {
    var ch = channel === 'none' ? '' : '/' + channel;
    return namespace + '/' + name + '/' + group + ch + '/' + criterion + '/' + action;
  }
  return {
    buildDittoProtocolMsg: function (namespace, name, group, channel, criterion, action, path, dittoHeaders, value, status, extra) {
      return { topic: topicOf(namespace, name, group, channel, criterion, action), path: path,
               headers: dittoHeaders, value: value, status: status, extra: extra };
    },
    buildExternalMsg: function (headers, textPayload, bytePayload, contentType) {
      return { headers: headers, textPayload: textPayload, bytePayload: bytePayload, contentType: contentType };
    },
    arrayBufferToString: __dittoconn.bytesToString,
    stringToArrayBuffer: __dittoconn.stringToBytes,
    // dcodeIO.ByteBuffer exists when the mapping has loadBytebufferJS;
    // without it this fails with a ReferenceError, as in Ditto.
    asByteBuffer: function (arrayBuffer) { return dcodeIO.ByteBuffer.wrap(new Uint8Array(arrayBuffer)); }
  };
})();

function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  if (contentType === 'application/vnd.eclipse.ditto+json') { return JSON.parse(textPayload); }
  if (contentType === 'application/octet-stream') {
    try { return JSON.parse(Ditto.arrayBufferToString(bytePayload)); } catch (e) { return null; }
  }
  return null;
}

function mapToDittoProtocolMsgWrapper(externalMsg) {
  return mapToDittoProtocolMsg(externalMsg.headers, externalMsg.textPayload, externalMsg.bytePayload,
    externalMsg.contentType);
}

function mapFromDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders, value, status, extra) {
  var msg = Ditto.buildDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders,
    value, status, extra);
  return Ditto.buildExternalMsg(dittoHeaders, JSON.stringify(msg), null, 'application/vnd.eclipse.ditto+json');
}

function mapFromDittoProtocolMsgWrapper(msg) {
  var t = msg.topic.split('/');
  var withChannel = t[2] === 'things';
  return mapFromDittoProtocolMsg(t[0], t[1], t[2], withChannel ? t[3] : 'none', withChannel ? t[4] : t[3],
    withChannel ? t[5] : t[4], msg.path, msg.headers, msg.value, msg.status, msg.extra);
}
`

var preludeProgram = goja.MustCompile("ditto-scope.js", jsPrelude, false)

// The helper libraries are compiled on first use: most mappings load
// neither.
var (
	longProgram       = sync.OnceValue(func() *goja.Program { return goja.MustCompile("long.js", jsLong, false) })
	byteBufferProgram = sync.OnceValue(func() *goja.Program { return goja.MustCompile("bytebuffer.js", jsByteBuffer, false) })
)

// jsLibraries reads loadLongJS and loadBytebufferJS as Ditto's
// JavaScriptMessageMapperConfiguration does: a JSON boolean, else the
// option's text as Boolean.parseBoolean reads it. For loadLongJS that
// fallback reads loadBytebufferJS's text (Ditto's code does so), so
// loading ByteBuffer.js loads Long.js too unless loadLongJS is false.
func jsLibraries(opts Options) (long, byteBuffer bool) {
	byteBuffer = opts.Bool("loadBytebufferJS", false)
	if v, ok := opts.raw("loadLongJS"); ok {
		if raw, _ := v.(json.RawMessage); string(raw) == "true" || string(raw) == "false" {
			return string(raw) == "true", byteBuffer
		}
	}
	return byteBuffer, byteBuffer
}

// jsMapper is a pool of runtimes, up to Config.PoolSize (the connection's
// processorPoolSize, as Ditto gives each of its mapping processors a
// mapper, and with it a Rhino scope, of its own): goja runtimes are not
// goroutine-safe, so a runtime maps one message at a time, and callers
// mapping at once get runtimes of their own. The first runtime is built
// with the mapper (so a configuration error shows at once); the others
// only when every built one is busy, so an idle connection holds one.
// Each runtime costs what the first does: the scripts and libraries
// evaluated again (milliseconds) and their heap.
type jsMapper struct {
	build       func() (*jsRuntime, error)
	idle        chan *jsRuntime
	mu          sync.Mutex
	built, size int
	hasIncoming bool
	hasOutgoing bool
}

// jsRuntime is one goja runtime with the scripts evaluated, used by one
// caller at a time (jsMapper), with the limits of its own.
type jsRuntime struct {
	vm        *goja.Runtime
	limit     time.Duration
	heapLimit uint64 // bytes a run may grow the heap by (heapWatch)
	id        string
	maxIn     int // MaxMappedInboundMessages, checked before results are converted
	maxOut    int
	toDitto   goja.Callable
	fromDitto goja.Callable
	stringify goja.Callable // JSON.stringify as scripts see it
	// stringifyChecked is goja's JSON.stringify behind tooDeep: what
	// stringify falls back to
	stringifyChecked goja.Callable
	parse            goja.Callable
	// maxArrayLen: the longest array whose JSON fits the allocation limit
	maxArrayLen int64
}

var _ Mapper = (*jsMapper)(nil)

// testRuntimeHook, when set (tests), is called with every new runtime
// before the scripts run.
var testRuntimeHook func(*goja.Runtime)

func newJavaScriptMapper(id string, opts Options, cfg Config) (Mapper, error) {
	lim := cfg.JavaScript
	def := DefaultConfig().JavaScript
	if lim.MaxScriptSizeBytes <= 0 {
		lim = def
	}
	if lim.MaxScriptAllocationBytes <= 0 {
		lim.MaxScriptAllocationBytes = def.MaxScriptAllocationBytes
	}
	if lim.MaxScriptHeapGrowthBytes <= 0 {
		lim.MaxScriptHeapGrowthBytes = def.MaxScriptHeapGrowthBytes
	}
	in, _ := opts.String("incomingScript")
	out, _ := opts.String("outgoingScript")
	loadLong, loadByteBuffer := jsLibraries(opts)
	if len(in) > lim.MaxScriptSizeBytes || len(out) > lim.MaxScriptSizeBytes {
		return nil, configFailed("The script size was bigger than the allowed <%d> bytes: incoming script size was <%d> bytes, outgoing script size was <%d> bytes",
			lim.MaxScriptSizeBytes, len(in), len(out))
	}
	build := func() (*jsRuntime, error) {
		return newJSRuntime(id, in, out, loadLong, loadByteBuffer, lim, cfg)
	}
	first, err := build()
	if err != nil {
		return nil, err
	}
	size := max(cfg.PoolSize, 1)
	m := &jsMapper{build: build, idle: make(chan *jsRuntime, size), built: 1, size: size,
		hasIncoming: in != "", hasOutgoing: out != ""}
	m.idle <- first
	return m, nil
}

// acquire takes an idle runtime, builds one while fewer than size exist,
// or waits for one.
func (m *jsMapper) acquire() *jsRuntime {
	select {
	case rt := <-m.idle:
		return rt
	default:
	}
	m.mu.Lock()
	grow := m.built < m.size
	if grow {
		m.built++
	}
	m.mu.Unlock()
	if grow {
		if rt, err := m.build(); err == nil {
			return rt
		}
		// The scripts evaluated once; if they fail now (a module file
		// changed), the runtimes there are will do.
		m.mu.Lock()
		m.built--
		m.mu.Unlock()
	}
	return <-m.idle
}

func (m *jsMapper) release(rt *jsRuntime) { m.idle <- rt }

// newJSRuntime builds a runtime and evaluates the scope, the libraries and
// the scripts in it.
func newJSRuntime(id, in, out string, loadLong, loadByteBuffer bool, lim JavaScriptLimits, cfg Config) (*jsRuntime, error) {
	m := &jsRuntime{vm: goja.New(), limit: lim.MaxScriptExecutionTime, heapLimit: uint64(lim.MaxScriptHeapGrowthBytes),
		id: id, maxIn: cfg.MaxMappedInboundMessages, maxOut: cfg.MaxMappedOutboundMessages}
	m.vm.SetMaxCallStackSize(lim.MaxScriptStackDepth)
	helpers := m.vm.NewObject()
	_ = helpers.Set("bytesToString", m.bytesToString)
	_ = helpers.Set("stringToBytes", m.stringToBytes)
	_ = m.vm.Set("__dittoconn", helpers)
	if testRuntimeHook != nil {
		testRuntimeHook(m.vm)
	}

	err := m.run(func() error {
		if _, err := m.vm.RunProgram(preludeProgram); err != nil {
			return err
		}
		if err := m.installLimits(lim.MaxScriptAllocationBytes); err != nil {
			return err
		}
		// After the limits, so the libraries' allocations are checked;
		// Long.js first: ByteBuffer.js picks it up when it loads.
		if loadLong {
			if _, err := m.vm.RunProgram(longProgram()); err != nil {
				return err
			}
		}
		if loadByteBuffer {
			if _, err := m.vm.RunProgram(byteBufferProgram()); err != nil {
				return err
			}
		}
		if err := m.installRequire(lim.CommonJSModulePath); err != nil {
			return err
		}
		if in != "" {
			if _, err := m.vm.RunScript("incomingScript", in); err != nil {
				return err
			}
		}
		if out != "" {
			if _, err := m.vm.RunScript("outgoingScript", out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		// Ditto fails the configuration on a script error (RhinoException).
		return nil, configFailed("%v", err)
	}
	var ok bool
	if m.toDitto, ok = goja.AssertFunction(m.vm.Get("mapToDittoProtocolMsgWrapper")); !ok {
		return nil, configInvalid("mapper <%s>: mapToDittoProtocolMsgWrapper is not a function", id)
	}
	if m.fromDitto, ok = goja.AssertFunction(m.vm.Get("mapFromDittoProtocolMsgWrapper")); !ok {
		return nil, configInvalid("mapper <%s>: mapFromDittoProtocolMsgWrapper is not a function", id)
	}
	return m, nil
}

// run executes f under the execution time and memory limits; an
// interrupted or overflowing script becomes an error, never a panic or a
// hang.
func (m *jsRuntime) run(f func() error) (err error) {
	var fired chan struct{}
	var timer *time.Timer
	if m.limit > 0 {
		fired = make(chan struct{})
		timer = time.AfterFunc(m.limit, func() {
			m.vm.Interrupt(ErrTimeout)
			close(fired)
		})
	}
	unwatch := heapWatch.watch(m.vm, m.heapLimit)
	defer func() {
		// Neither the timer nor the watchdog may interrupt after the
		// interrupt is cleared, or it would hit the next call.
		unwatch()
		if timer != nil && !timer.Stop() {
			<-fired
		}
		m.vm.ClearInterrupt()
	}()
	defer func() {
		if r := recover(); r != nil {
			err = mappingFailed("script panicked: %v", r)
		}
	}()
	return scriptError(f())
}

func scriptError(err error) error {
	if err == nil {
		return nil
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if ie.Value() == ErrScriptMemory {
			return mappingFailed("%v", ErrScriptMemory)
		}
		return fmt.Errorf("%w after the configured limit", ErrTimeout)
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return mappingFailed("script exceeded the maximum call stack depth: %v", err)
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return mappingFailed("script error: %s", ex.Error())
	}
	if errors.Is(err, ErrMappingFailed) || errors.Is(err, ErrTimeout) {
		return err
	}
	return mappingFailed("%v", err)
}

// bytesToString is Ditto.arrayBufferToString: each byte becomes one char.
func (m *jsRuntime) bytesToString(call goja.FunctionCall) goja.Value {
	b := exportBytes(call.Argument(0))
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return m.vm.ToValue(string(r))
}

// stringToBytes is Ditto.stringToArrayBuffer: each UTF-16 unit's low byte.
func (m *jsRuntime) stringToBytes(call goja.FunctionCall) goja.Value {
	s := call.Argument(0).String()
	u := utf16Units(s)
	b := make([]byte, len(u))
	for i, c := range u {
		b[i] = byte(c)
	}
	return m.vm.ToValue(m.vm.NewArrayBuffer(b))
}

func utf16Units(s string) []uint16 {
	out := make([]uint16, 0, len(s))
	for _, r := range s {
		if r >= 0x10000 {
			r -= 0x10000
			out = append(out, uint16(0xD800+(r>>10)), uint16(0xDC00+(r&0x3FF)))
			continue
		}
		out = append(out, uint16(r))
	}
	return out
}

// exportBytes reads an ArrayBuffer, a typed array or an array of numbers.
func exportBytes(v goja.Value) []byte {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	switch x := v.Export().(type) {
	case goja.ArrayBuffer:
		return x.Bytes()
	case []byte:
		return x
	case []any:
		b := make([]byte, len(x))
		for i, e := range x {
			switch n := e.(type) {
			case int64:
				b[i] = byte(n)
			case float64:
				b[i] = byte(int64(n))
			}
		}
		return b
	}
	return nil
}

func isBytes(v goja.Value) bool {
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return false
	}
	switch v.Export().(type) {
	case goja.ArrayBuffer, []byte, []any:
		return true
	}
	return false
}

// MapIncoming calls mapToDittoProtocolMsgWrapper with the external
// message, in a runtime of the pool.
func (m *jsMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	if !m.hasIncoming {
		return defaultIncoming(ext)
	}
	rt := m.acquire()
	defer m.release(rt)
	return rt.mapIncoming(ext)
}

func (m *jsRuntime) mapIncoming(ext protocol.External) ([]protocol.Message, error) {
	var out []protocol.Message
	err := m.run(func() error {
		vm := m.vm
		headers := vm.NewObject()
		for k, v := range ext.Headers {
			_ = headers.Set(k, v)
		}
		arg := vm.NewObject()
		_ = arg.Set("headers", headers)
		if ext.IsText {
			_ = arg.Set("textPayload", ext.Text)
			_ = arg.Set("bytePayload", goja.Null())
		} else {
			_ = arg.Set("textPayload", goja.Null())
			if ext.Bytes != nil {
				_ = arg.Set("bytePayload", vm.NewArrayBuffer(append([]byte(nil), ext.Bytes...)))
			} else {
				_ = arg.Set("bytePayload", goja.Null())
			}
		}
		if ct, ok := ext.Headers["content-type"]; ok {
			_ = arg.Set("contentType", ct)
		} else {
			_ = arg.Set("contentType", goja.Null())
		}
		res, err := m.toDitto(goja.Undefined(), arg)
		if err != nil {
			return err
		}
		return m.eachResult(res, m.maxIn, func(v goja.Value) error {
			js, err := m.resultJSON(v)
			if err != nil {
				return err
			}
			msg, _, err := parseMessage(js)
			if err != nil {
				return err
			}
			out = append(out, msg)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// eachResult calls f for a result that is one object or an array of them;
// null and undefined are "no messages". An array longer than limit (> 0)
// fails before any element is converted, so a script's oversized result
// costs nothing more.
func (m *jsRuntime) eachResult(res goja.Value, limit int, f func(goja.Value) error) error {
	if res == nil || goja.IsUndefined(res) || goja.IsNull(res) {
		return nil
	}
	obj := res.ToObject(m.vm)
	if obj.ClassName() == "Array" {
		n := obj.Get("length").ToInteger()
		if limit > 0 && n > int64(limit) {
			return tooManyMessages(m.id, n, limit)
		}
		for i := int64(0); i < n; i++ {
			el := obj.Get(fmt.Sprint(i))
			if el == nil || goja.IsUndefined(el) || goja.IsNull(el) {
				return mappingFailed("element %d of the mapped array is null", i)
			}
			if err := f(el); err != nil {
				return err
			}
		}
		return nil
	}
	return f(res)
}

// MapOutgoing calls mapFromDittoProtocolMsgWrapper with the Ditto
// Protocol message as a parsed JSON object.
func (m *jsMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	if !m.hasOutgoing {
		return defaultOutgoing(msg), nil
	}
	rt := m.acquire()
	defer m.release(rt)
	return rt.mapOutgoing(msg)
}

func (m *jsRuntime) mapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	var out []protocol.External
	err := m.run(func() error {
		arg, err := m.parse(goja.Undefined(), m.vm.ToValue(string(messageJSON(msg))))
		if err != nil {
			return err
		}
		res, err := m.fromDitto(goja.Undefined(), arg)
		if err != nil {
			return err
		}
		return m.eachResult(res, m.maxOut, func(v goja.Value) error {
			ext, err := m.externalFrom(v.ToObject(m.vm))
			if err != nil {
				return err
			}
			out = append(out, ext)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// externalFrom reads {headers, textPayload, bytePayload, contentType}:
// bytes win over text; contentType becomes the content-type header.
func (m *jsRuntime) externalFrom(o *goja.Object) (protocol.External, error) {
	ext := protocol.External{Headers: map[string]string{}}
	if h := o.Get("headers"); h != nil && !goja.IsUndefined(h) && !goja.IsNull(h) {
		ho := h.ToObject(m.vm)
		for _, k := range ho.Keys() {
			v := ho.Get(k)
			if s, ok := v.Export().(string); ok {
				ext.Headers[k] = s
				continue
			}
			if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
				ext.Headers[k] = "null"
				continue
			}
			js, err := m.stringify(goja.Undefined(), v)
			if err != nil {
				return ext, err
			}
			ext.Headers[k] = js.String()
		}
	}
	if ct := o.Get("contentType"); ct != nil && !goja.IsUndefined(ct) && !goja.IsNull(ct) {
		ext.Headers["content-type"] = ct.String()
	}
	if b := o.Get("bytePayload"); isBytes(b) {
		ext.Bytes = exportBytes(b)
		return ext, nil
	}
	t := o.Get("textPayload")
	if t == nil || goja.IsUndefined(t) {
		return ext, mappingFailed("neither <bytePayload> nor <textPayload> were defined in the outgoing script")
	}
	if goja.IsNull(t) {
		return ext, mappingFailed("<textPayload> of the outgoing script is null and there is no <bytePayload>")
	}
	ext.Text, ext.IsText = t.String(), true
	return ext, nil
}

// defaultIncoming is the JavaScript engine without incomingScript: the
// payload (text, else bytes as UTF-8) is Ditto Protocol JSON; no payload
// means no message.
func defaultIncoming(ext protocol.External) ([]protocol.Message, error) {
	text := ext.Text
	if !ext.IsText {
		if ext.Bytes == nil {
			return nil, nil
		}
		text = decodeCharset(ext.Bytes, "utf-8")
	}
	msg, _, err := parseMessage([]byte(text))
	if err != nil {
		return nil, err
	}
	return []protocol.Message{msg}, nil
}

// defaultOutgoing is the JavaScript engine without outgoingScript: the
// message's headers plus the Ditto content type, Ditto Protocol JSON.
func defaultOutgoing(msg protocol.Message) []protocol.External {
	h := make(map[string]string, len(msg.Headers)+1)
	for k, v := range msg.Headers {
		h[k] = v
	}
	h["content-type"] = ContentTypeDitto
	return []protocol.External{{Headers: h, Text: string(messageJSON(msg)), IsText: true}}
}
