package mapping

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func writeModule(t testing.TB, dir, name, src string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// CONNECTIVITY_MESSAGE_MAPPING_JS_COMMON_JS_MODULE_PATH: require() loads
// CommonJS modules from the directory, as in Ditto's docs (var Pbf =
// require('pbf')), and from nowhere else.
func TestJavaScriptRequireCommonJSModules(t *testing.T) {
	root := t.TempDir()
	writeModule(t, root, "pbf.js", `var loads = (globalThis.pbfLoads || 0) + 1; globalThis.pbfLoads = loads;
var util = require('./lib/util');
module.exports = function Pbf(bytes) { this.first = util.first(bytes); this.loads = loads; };`)
	writeModule(t, root, "lib/util.js", `exports.first = function (bytes) { return new Uint8Array(bytes)[0]; };`)
	writeModule(t, root, "noext", `exports.name = 'noext';`)
	outside := t.TempDir()
	writeModule(t, outside, "secret.js", `exports.secret = 42;`)
	if err := os.Symlink(filepath.Join(outside, "secret.js"), filepath.Join(root, "link.js")); err != nil {
		t.Fatal(err)
	}

	cfg := testConfig()
	cfg.JavaScript.CommonJSModulePath = root
	script := `var Pbf = require('pbf');
function mapToDittoProtocolMsg(headers, textPayload, bytePayload) {
  var p = new (require('pbf'))(bytePayload);
  return Ditto.buildDittoProtocolMsg('ns', 'n', 'things', 'twin', 'commands', 'modify', '/', {},
    { first: p.first, loads: p.loads, same: require('pbf') === Pbf, noext: require('noext').name });
}`
	m, err := newJS(t, script, "", cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		o := m.MapIncoming(bytesMsg([]byte{7, 1}))
		if o.Err != nil || len(o.Messages) != 1 {
			t.Fatalf("outcome %+v", o)
		}
		// The module ran once; later requires get the same exports.
		jsonEqual(t, string(o.Messages[0].Value), `{"first":7,"loads":1,"same":true,"noext":"noext"}`)
	}

	for _, id := range []string{"missing", "../" + filepath.Base(outside) + "/secret", "link", filepath.Join(outside, "secret")} {
		m, err := newJS(t, `function mapToDittoProtocolMsg() { return require('`+filepath.ToSlash(id)+`'); }`, "", cfg)
		if err != nil {
			t.Fatal(err)
		}
		o := m.MapIncoming(bytesMsg([]byte{1}))
		if !errors.Is(o.Err, ErrMappingFailed) || !strings.Contains(o.Err.Error(), `Module "`) || !strings.Contains(o.Err.Error(), `not found.`) {
			t.Errorf("require(%q): %+v", id, o)
		}
	}

	// Without a module directory nothing can be required, as in Ditto.
	m, err = newJS(t, `function mapToDittoProtocolMsg() { return require('pbf'); }`, "", testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if o := m.MapIncoming(bytesMsg([]byte{1})); !errors.Is(o.Err, ErrMappingFailed) || !strings.Contains(o.Err.Error(), `Module "pbf" not found.`) {
		t.Fatalf("%+v", o)
	}
	// A module with a syntax error fails the script that requires it.
	writeModule(t, root, "broken.js", `exports.x = (;`)
	if _, err := newJS(t, `var b = require('broken');`, "", cfg); !errors.Is(err, ErrConfiguration) {
		t.Fatalf("broken module at load: %v", err)
	}
}

func bytesMsg(b []byte) protocol.External {
	return protocol.External{Headers: map[string]string{"content-type": "application/octet-stream"}, Bytes: b}
}

// FuzzResolveModule: whatever a script passes to require, the file found
// lies inside the module directory.
func FuzzResolveModule(f *testing.F) {
	root := f.TempDir()
	writeModule(f, root, "a.js", "")
	writeModule(f, root, "lib/b.js", "")
	for _, s := range []string{"a", "./a", "../a", "lib/b", "lib/../a", "/etc/passwd", "..", ".", "lib/../../x", ""} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, id string, fromLib bool) {
		dir := root
		if fromLib {
			dir = filepath.Join(root, "lib")
		}
		p, _, ok := resolveModule(root, dir, id)
		if !ok {
			return
		}
		if rel, err := filepath.Rel(root, p); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
			t.Fatalf("require(%q) from %s found %s, outside %s", id, dir, p, root)
		}
	})
}
