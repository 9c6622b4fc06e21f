package mapping

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/dop251/goja"
)

// require() for mapping scripts: Ditto installs Rhino's sandboxed CommonJS
// require, which loads modules only from commonJsModulePath
// (CONNECTIVITY_MESSAGE_MAPPING_JS_COMMON_JS_MODULE_PATH): an id names
// <path>/<id>.js, else <path>/<id>; an id starting with ./ or ../ is taken
// relative to the requiring module. Nothing outside the directory can be
// loaded. Each runtime runs a module once and hands out the same exports
// afterwards; the compiled module is shared by all runtimes of the process
// (keyed by path, size and modification time, so an edited file is read
// again by runtimes created after the edit).

// moduleWrapper turns a module's source into a function of the CommonJS
// free variables.
const moduleWrapper = "(function (exports, require, module, __filename, __dirname) {\n%s\n})"

type moduleKey struct {
	path string
	size int64
	mod  int64
}

var compiledModules sync.Map // moduleKey -> *goja.Program

// installRequire defines require in m's runtime. root "": no module
// directory, so every require fails as Ditto's does without one.
func (m *jsRuntime) installRequire(root string) error {
	if root != "" {
		abs, err := filepath.Abs(root)
		if err != nil {
			return err
		}
		root = abs
	}
	vm := m.vm
	exportsOf := map[string]goja.Value{} // module path -> its exports, once loaded
	// byID answers a repeated require (scripts often require inside the
	// mapping function, once per message) without touching the file system.
	byID := map[string]goja.Value{}
	var requireFrom func(dir string) func(goja.FunctionCall) goja.Value
	requireFrom = func(dir string) func(goja.FunctionCall) goja.Value {
		return func(call goja.FunctionCall) goja.Value {
			id := call.Argument(0).String()
			if v, ok := byID[dir+"\x00"+id]; ok {
				return v
			}
			path, info, ok := resolveModule(root, dir, id)
			if !ok {
				// Rhino's message, as an Error the script may catch.
				e, _ := vm.New(vm.Get("Error"), vm.ToValue(`Module "`+id+`" not found.`))
				panic(e)
			}
			if v, ok := exportsOf[path]; ok {
				return v
			}
			prog, err := compileModule(path, info)
			if err != nil {
				panic(vm.NewGoError(fmt.Errorf("module \"%s\": %w", id, err)))
			}
			fnv, err := vm.RunProgram(prog)
			if err != nil {
				panic(err)
			}
			fn, _ := goja.AssertFunction(fnv)
			module, exports := vm.NewObject(), vm.NewObject()
			_ = module.Set("exports", exports)
			_ = module.Set("id", id)
			// A cycle sees the exports as far as they are built, as in
			// CommonJS.
			exportsOf[path] = exports
			if _, err := fn(goja.Undefined(), exports, vm.ToValue(requireFrom(filepath.Dir(path))), module,
				vm.ToValue(path), vm.ToValue(filepath.Dir(path))); err != nil {
				delete(exportsOf, path)
				panic(err)
			}
			v := module.Get("exports")
			exportsOf[path] = v
			byID[dir+"\x00"+id] = v
			return v
		}
	}
	return vm.Set("require", requireFrom(root))
}

// resolveModule finds id's file under root: relative ids from dir, others
// from root; <id>.js first, then <id>. ok false: no such file inside root.
func resolveModule(root, dir, id string) (string, os.FileInfo, bool) {
	if root == "" || id == "" || filepath.IsAbs(id) {
		return "", nil, false
	}
	base := root
	if strings.HasPrefix(id, "./") || strings.HasPrefix(id, "../") {
		base = dir
	}
	p := filepath.Join(base, filepath.FromSlash(id))
	if p != root && !strings.HasPrefix(p, root+string(filepath.Separator)) {
		return "", nil, false
	}
	for _, c := range []string{p + ".js", p} {
		// A symbolic link may not lead out of the directory either.
		real, err := filepath.EvalSymlinks(c)
		if err != nil {
			continue
		}
		realRoot, err := filepath.EvalSymlinks(root)
		if err != nil || (real != realRoot && !strings.HasPrefix(real, realRoot+string(filepath.Separator))) {
			continue
		}
		if info, err := os.Stat(real); err == nil && info.Mode().IsRegular() {
			return c, info, true
		}
	}
	return "", nil, false
}

func compileModule(path string, info os.FileInfo) (*goja.Program, error) {
	key := moduleKey{path: path, size: info.Size(), mod: info.ModTime().UnixNano()}
	if p, ok := compiledModules.Load(key); ok {
		return p.(*goja.Program), nil
	}
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p, err := goja.Compile(path, fmt.Sprintf(moduleWrapper, src), false)
	if err != nil {
		return nil, err
	}
	compiledModules.Store(key, p)
	return p, nil
}
