package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// newJSWith builds a JavaScript mapping from a full options object.
func newJSWith(t testing.TB, options map[string]any) (*Configured, error) {
	t.Helper()
	b, err := json.Marshal(options)
	if err != nil {
		t.Fatal(err)
	}
	return New("js", model.MappingDefinition{MappingEngine: "JavaScript", Options: b}, testConfig())
}

// withLibraries is a JavaScript mapper without scripts that loads both
// libraries.
func withLibraries(t testing.TB) *jsRuntime {
	t.Helper()
	c, err := newJSWith(t, map[string]any{"incomingScript": "", "outgoingScript": "",
		"loadBytebufferJS": true, "loadLongJS": true})
	if err != nil {
		t.Fatal(err)
	}
	js := c.Mapper.(*jsMapper)
	rt := js.acquire() // the only runtime, the one built with the mapper
	js.release(rt)
	return rt
}

// evalJS runs src in m's runtime under its limits and returns the result
// as a string.
func evalJS(m *jsRuntime, src string) (got string, err error) {
	err = m.run(func() error {
		v, err := m.vm.RunString(src)
		if err == nil {
			got = v.String()
		}
		return err
	})
	return got, err
}

func TestJavaScriptLibrariesAnswerAsTheLibraries(t *testing.T) {
	m := withLibraries(t)
	for _, tc := range jsLibraryCases {
		got, err := evalJS(m, `(function () { try { var r = (`+tc.expr+`);
  return (typeof r === 'object' && r !== null && !dcodeIO.Long.isLong(r) && !dcodeIO.ByteBuffer.isByteBuffer(r)) ? JSON.stringify(r) : String(r);
} catch (e) { return 'THROW ' + e.name + ': ' + e.message; } })()`)
		if err != nil || got != tc.want {
			t.Errorf("%s\n got  %s (%v)\n want %s", tc.expr, got, err, tc.want)
		}
	}
}

// Ditto's JavaScriptMessageMapperRhinoTest
// testBinaryWithByteBufferJsJavascriptIncomingMapping: the bytes of
// 0x27408B read through Ditto.asByteBuffer and toHex.
func TestJavaScriptBinaryWithByteBufferJsIncomingMapping(t *testing.T) {
	script := `
function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  function intFromBytes(arrayBuffer) {
    let byteBuf = Ditto.asByteBuffer(arrayBuffer);
    return parseInt(byteBuf.toHex(), 16);
  }
  let dittoHeaders = {};
  dittoHeaders["correlation-id"] = headers["correlation-id"];
  let theBytes = intFromBytes(bytePayload);
  let value = { a: theBytes & 0b1111, b: (theBytes >>> 4) & 0b1111, c: 99 };
  return Ditto.buildDittoProtocolMsg("org.eclipse.ditto", "fancy-car-11", "things", "twin", "commands", "modify",
    "/attributes/foo", dittoHeaders, value);
}`
	c, err := newJSWith(t, map[string]any{"incomingScript": script, "outgoingScript": "", "loadBytebufferJS": true})
	if err != nil {
		t.Fatal(err)
	}
	o := c.MapIncoming(protocol.External{Headers: map[string]string{"content-type": "application/octet-stream",
		"correlation-id": "cid"}, Bytes: []byte{0x27, 0x40, 0x8B}})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	got := o.Messages[0]
	if got.Topic != "org.eclipse.ditto/fancy-car-11/things/twin/commands/modify" || got.Headers["correlation-id"] != "cid" {
		t.Fatalf("message %+v", got)
	}
	jsonEqual(t, string(got.Value), `{"a":11,"b":8,"c":99}`)
}

// The ByteBuffer.js snippet of Ditto's connectivity-mapping.md ("Working
// with byte payloads"), loaded with "loadBytebufferJS": "true" as there.
func TestJavaScriptByteBufferDocExample(t *testing.T) {
	script := `
function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  let byteBuf = Ditto.asByteBuffer(bytePayload);
  let numberFromBytes = parseInt(byteBuf.toHex(), 16);

  let base64encoded = byteBuf.toBase64();
  let buf = dcodeIO.ByteBuffer.fromBase64(base64encoded);

  let value = {
    number: numberFromBytes,
    base64: base64encoded,
    int: buf.readInt(),
    text: buf.readUTF8String(4),
    remaining: buf.remaining()
  };
  return Ditto.buildDittoProtocolMsg('org.eclipse.ditto', 'sensor', 'things', 'twin', 'commands', 'modify',
    '/attributes/decoded', headers, value);
}`
	c, err := newJSWith(t, map[string]any{"incomingScript": script, "outgoingScript": "", "loadBytebufferJS": "true"})
	if err != nil {
		t.Fatal(err)
	}
	payload := []byte{0xff, 0xff, 0xff, 0xfe, 'd', 'i', 't', 't', 'o', '!'}
	o := c.MapIncoming(protocol.External{Headers: map[string]string{"content-type": "application/octet-stream"}, Bytes: payload})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	jsonEqual(t, string(o.Messages[0].Value),
		`{"number":1208925819162083309416225,"base64":"/////mRpdHRvIQ==","int":-2,"text":"ditt","remaining":2}`)
}

// Long.js through ByteBuffer.js: a 64-bit counter that a double cannot
// hold exactly, written back by the outgoing script.
func TestJavaScriptLongRoundTrip(t *testing.T) {
	in := `
function mapToDittoProtocolMsg(headers, textPayload, bytePayload) {
  let bb = Ditto.asByteBuffer(bytePayload);
  let counter = bb.readUint64();
  return Ditto.buildDittoProtocolMsg('ns', 'meter', 'things', 'twin', 'commands', 'modify', '/attributes/counter',
    {}, counter.toString());
}`
	out := `
function mapFromDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders, value) {
  let bb = dcodeIO.ByteBuffer.allocate(8).LE();
  bb.writeUint64(dcodeIO.Long.fromString(value, true).add(1));
  return Ditto.buildExternalMsg({}, null, bb.flip().toBuffer(), 'application/octet-stream');
}`
	c, err := newJSWith(t, map[string]any{"incomingScript": in, "outgoingScript": out,
		"loadBytebufferJS": true, "loadLongJS": true})
	if err != nil {
		t.Fatal(err)
	}
	o := c.MapIncoming(protocol.External{Bytes: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}})
	if o.Err != nil || len(o.Messages) != 1 || string(o.Messages[0].Value) != `"18446744073709551614"` {
		t.Fatalf("incoming %+v", o)
	}
	res := c.MapOutgoing(protocol.Message{Topic: "ns/meter/things/twin/events/modified", Path: "/attributes/counter",
		Value: json.RawMessage(`"18446744073709551614"`)})
	if res.Err != nil || len(res.Messages) != 1 {
		t.Fatalf("outgoing %+v", res)
	}
	if got := res.Messages[0].Bytes; string(got) != "\xff\xff\xff\xff\xff\xff\xff\xff" {
		t.Fatalf("bytes % x", got)
	}
}

func TestJavaScriptLibraryOptions(t *testing.T) {
	cases := []struct {
		options          string
		long, byteBuffer bool
	}{
		{`{}`, false, false},
		{`{"loadBytebufferJS": true}`, true, true}, // Long.js follows unless loadLongJS is a boolean
		{`{"loadBytebufferJS": "TRUE"}`, true, true},
		{`{"loadBytebufferJS": true, "loadLongJS": false}`, false, true},
		{`{"loadLongJS": true}`, true, false},
		{`{"loadLongJS": "true"}`, false, false}, // Ditto reads loadBytebufferJS's text here
		{`{"loadLongJS": "true", "loadBytebufferJS": "true"}`, true, true},
		{`{"loadBytebufferJS": "yes"}`, false, false},
	}
	for _, c := range cases {
		opts, err := mergeOptions("", json.RawMessage(c.options))
		if err != nil {
			t.Fatal(err)
		}
		long, bb := jsLibraries(opts)
		if long != c.long || bb != c.byteBuffer {
			t.Errorf("%s: long %v byteBuffer %v, want %v %v", c.options, long, bb, c.long, c.byteBuffer)
		}
	}
}

func TestJavaScriptLibrariesOnlyWhenAsked(t *testing.T) {
	script := `function mapToDittoProtocolMsg(h, t, b) {
  return Ditto.buildDittoProtocolMsg('ns', 'n', 'things', 'twin', 'commands', 'modify', '/', {},
    [typeof dcodeIO === 'undefined' ? 'none' : Object.keys(dcodeIO).sort().join(',')]);
}`
	for _, c := range []struct {
		options map[string]any
		want    string
	}{
		{map[string]any{}, `["none"]`},
		{map[string]any{"loadLongJS": true}, `["Long"]`},
		{map[string]any{"loadBytebufferJS": true, "loadLongJS": false}, `["ByteBuffer"]`},
		{map[string]any{"loadBytebufferJS": true}, `["ByteBuffer,Long"]`},
	} {
		c.options["incomingScript"] = script
		c.options["outgoingScript"] = ""
		m, err := newJSWith(t, c.options)
		if err != nil {
			t.Fatal(err)
		}
		o := m.MapIncoming(textMsg(nil, "x"))
		if o.Err != nil || len(o.Messages) != 1 || string(o.Messages[0].Value) != c.want {
			t.Errorf("%v: %+v, want %s", c.options, o, c.want)
		}
	}
	// Without the library Ditto.asByteBuffer fails as in Ditto (dcodeIO is
	// not defined): the mapping fails, the runtime goes on.
	m := mustJS(t, `function mapToDittoProtocolMsg(h, t, b) { return Ditto.asByteBuffer(b); }`, "")
	o := m.MapIncoming(protocol.External{Bytes: []byte{1}})
	if !errors.Is(o.Err, ErrMappingFailed) || !strings.Contains(o.Err.Error(), "dcodeIO") {
		t.Fatalf("%+v", o)
	}
	// Without Long.js, ByteBuffer.js has no 64-bit accessors.
	c, err := newJSWith(t, map[string]any{"incomingScript": `function mapToDittoProtocolMsg(h, t, b) { return Ditto.asByteBuffer(b).readInt64(); }`,
		"outgoingScript": "", "loadBytebufferJS": true, "loadLongJS": false})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.MapIncoming(protocol.External{Bytes: make([]byte, 8)}); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("readInt64 without Long.js: %+v", o)
	}
}

// Where the libraries have bugs that lose data, dittoconn does not repeat
// them (docs/COMPATIBILITY.md).
func TestJavaScriptByteBufferFixedBugs(t *testing.T) {
	m := withLibraries(t)
	for expr, want := range map[string]string{
		// clone(true) copies the contents (the library returns zeros).
		`dcodeIO.ByteBuffer.fromHex("0102").clone(true).toHex()`: "0102",
		// toString(begin) decodes UTF-8 from begin (the library throws).
		`dcodeIO.ByteBuffer.fromHex("616263").toString(1)`: "bc",
		// An unsigned divisor with the top bit set (the library loops).
		`dcodeIO.Long.fromInt(100).div(dcodeIO.Long.fromInt(-1, true)).toString()`: "-100",
	} {
		got, err := evalJS(m, expr)
		if err != nil || got != want {
			t.Errorf("%s: %q (%v), want %q", expr, got, err, want)
		}
	}
}

// The script guards hold for the libraries too: a buffer sized by a device
// is refused before it is allocated.
func TestJavaScriptByteBufferAllocationGuard(t *testing.T) {
	m := withLibraries(t)
	for _, expr := range []string{`dcodeIO.ByteBuffer.allocate(1e11)`, `dcodeIO.ByteBuffer.allocate(8).resize(1e11)`} {
		if _, err := evalJS(m, expr); !errors.Is(err, ErrScriptMemory) && (err == nil || !strings.Contains(err.Error(), ErrScriptMemory.Error())) {
			t.Errorf("%s: %v", expr, err)
		}
	}
	if got, err := evalJS(m, `dcodeIO.ByteBuffer.allocate(1024).capacity()`); err != nil || got != "1024" {
		t.Fatalf("a small buffer: %q %v", got, err)
	}
}

// FuzzByteBufferDecoders: the library's decoders take device bytes; any
// input ends in a value or a script exception, never a Go panic, and
// base64 and hex round-trip.
func FuzzByteBufferDecoders(f *testing.F) {
	for _, s := range [][]byte{{}, {0xff, 0xff, 0xff, 0xff, 0x0f}, []byte("h\xc3\xa4llo\x00"), {0xe2, 0x82}, {0x80, 0x80, 0x80}} {
		f.Add(s)
	}
	m := withLibraries(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > 4096 {
			return
		}
		hex := fmt.Sprintf("%x", b)
		got, err := evalJS(m, `(function () {
  var bb = dcodeIO.ByteBuffer.fromHex('`+hex+`');
  if (bb.toHex() !== '`+hex+`') { return 'hex round trip: ' + bb.toHex(); }
  if (dcodeIO.ByteBuffer.fromBase64(bb.toBase64()).toHex() !== '`+hex+`') { return 'base64 round trip'; }
  var tries = [
    function () { return bb.toUTF8(); },
    function () { return bb.readUTF8String(bb.remaining(), 'b', 0); },
    function () { return bb.readCString(0); },
    function () { return bb.readVarint32(0); },
    function () { return bb.readVarint64(0); },
    function () { return bb.readInt64(0); },
    function () { return dcodeIO.ByteBuffer.fromBase64(bb.toBinary()); },
    function () { return dcodeIO.Long.fromString(bb.toBinary(), 16); }
  ];
  tries.forEach(function (f) { try { f(); } catch (e) { if (!(e instanceof Error)) { throw e; } } });
  return 'ok';
})()`)
		if err != nil || got != "ok" {
			t.Fatalf("% x: %q %v", b, got, err)
		}
	})
}
