package test

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

const mod = "github.com/dittoconn/dittoconn/"

// TestLayering keeps the architecture the layout shows: it lists each
// package's dependencies (non-test) and fails on imports that must never exist.
func TestLayering(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	type rule struct {
		from   string // package path prefix (relative to the module)
		banned []string
		why    string
	}
	rules := []rule{
		{"persistence", []string{mod + "actors", mod + "gateway", mod + "proto", "github.com/asynkron/"}, "persistence knows documents, not grains"},
		{"gateway", []string{mod + "actors", mod + "persistence", "github.com/asynkron/", "go.mongodb.org/", "go.etcd.io/bbolt"}, "the gateway is a thin edge over the Dispatcher"},
		{"actors", []string{mod + "gateway", "github.com/labstack/echo"}, "actors do not know HTTP"},
		{"persistence/mongo", []string{mod + "persistence/bolt"}, "engines do not know each other"},
		{"persistence/bolt", []string{mod + "persistence/mongo", "go.mongodb.org/mongo-driver/v2/mongo"}, "engines do not know each other"},
		{"proto", []string{mod + "actors", mod + "gateway", mod + "persistence", mod + "cmd"}, "proto is a leaf"},
		{"internal/ojson", []string{mod + "actors", mod + "gateway", mod + "persistence", mod + "proto", mod + "cmd"}, "ordered JSON is a leaf every layer uses"},
	}
	exact := map[string][]string{
		"persistence": {"go.mongodb.org/", "go.etcd.io/bbolt"}, // the contract itself stays engine-free
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	checked := 0
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		pkg, deps := fields[0], fields[1:]
		rel := strings.TrimPrefix(pkg, mod)
		for _, d := range deps {
			if strings.Contains(d, "FerretDB") && !strings.HasPrefix(rel, "test") {
				t.Errorf("%s links FerretDB: it belongs to tests only", pkg)
			}
			if strings.HasPrefix(d, mod+"cmd") || (strings.HasPrefix(d, mod+"test") && !strings.HasPrefix(rel, "test")) {
				t.Errorf("%s imports %s", pkg, d)
			}
			// internal/service wires the layers together: only the binary
			// and the tests start a service; no layer knows the wiring.
			if strings.HasPrefix(d, mod+"internal") && !strings.HasPrefix(rel, "cmd/") && !strings.HasPrefix(rel, "test") &&
				!strings.HasPrefix(rel, "internal") {
				t.Errorf("%s imports %s: only cmd and test start the service", pkg, d)
			}
			for _, r := range rules {
				if rel != r.from && !strings.HasPrefix(rel, r.from+"/") {
					continue
				}
				for _, b := range r.banned {
					if strings.HasPrefix(d, b) && !strings.HasPrefix(d, mod+r.from) {
						t.Errorf("%s imports %s: %s", pkg, d, r.why)
					}
				}
			}
			for _, b := range exact[rel] {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
		}
		checked++
	}
	if checked < 8 {
		t.Fatalf("only %d packages listed", checked)
	}
}
