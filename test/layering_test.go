package test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"slices"
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
		from   string   // package path prefix (relative to the module)
		except []string // packages under from the rule does not cover
		banned []string
		allow  []string // dependencies allowed although a banned prefix matches
		why    string
	}
	// The broker libraries: only the clients under internal/client link them.
	brokers := []string{"github.com/eclipse/paho", "github.com/rabbitmq/", "github.com/Azure/go-amqp", "github.com/twmb/franz-go"}
	rules := []rule{
		{from: "persistence", banned: []string{mod + "actors", mod + "gateway", mod + "proto", mod + "internal/", "github.com/asynkron/"},
			allow: []string{mod + "internal/ojson"}, why: "persistence knows documents, not grains nor the libraries the grains use"},
		{from: "gateway", banned: append([]string{mod + "actors", mod + "persistence", mod + "internal/", "github.com/asynkron/", "go.mongodb.org/", "go.etcd.io/bbolt"}, brokers...),
			allow: []string{mod + "internal/ojson"}, why: "the gateway is a thin edge over the Dispatcher"},
		{from: "actors", banned: []string{mod + "gateway", "github.com/labstack/echo"}, why: "actors do not know HTTP"},
		// The libraries sit below the actors: the actors use them, never the
		// reverse, and they do not know the actor runtime, the edge or the binary.
		{from: "internal", except: []string{"internal/service"}, banned: []string{mod + "actors", mod + "gateway", mod + "cmd", "github.com/asynkron/"},
			why: "libraries sit below the actors"},
		{from: "internal", except: []string{"internal/service", "internal/client"}, banned: brokers,
			why: "only the broker clients link a broker library"},
		{from: "persistence/fieldcrypto", banned: []string{mod + "persistence"}, why: "the field crypto knows JSON fields, not stores"},
		{from: "persistence/mongo", banned: []string{mod + "persistence/bolt"}, why: "engines do not know each other"},
		{from: "persistence/bolt", banned: []string{mod + "persistence/mongo", "go.mongodb.org/mongo-driver/v2/mongo"}, why: "engines do not know each other"},
		{from: "proto", banned: []string{mod + "actors", mod + "gateway", mod + "persistence", mod + "internal", mod + "cmd"}, why: "proto is a leaf"},
		{from: "internal/ojson", banned: []string{mod + "actors", mod + "gateway", mod + "persistence", mod + "proto", mod + "cmd", mod + "internal/"},
			why: "ordered JSON is a leaf every layer uses"},
	}
	under := func(rel, prefix string) bool { return rel == prefix || strings.HasPrefix(rel, prefix+"/") }
	testSupport := func(rel string) bool {
		return slices.ContainsFunc(strings.Split(rel, "/"), func(seg string) bool { return strings.HasSuffix(seg, "test") })
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
			// test/poll imports nothing of the project: the packages that
			// exist for tests (clienttest, persistencetest, …) wait with it too.
			pollForTests := d == mod+"test/poll" && testSupport(rel)
			if strings.HasPrefix(d, mod+"cmd") || (strings.HasPrefix(d, mod+"test") && !strings.HasPrefix(rel, "test") && !pollForTests) {
				t.Errorf("%s imports %s", pkg, d)
			}
			// internal/service wires the layers together: only the binary
			// and the tests start a service; no layer knows the wiring.
			if strings.HasPrefix(d, mod+"internal/service") && !strings.HasPrefix(rel, "cmd/") && !under(rel, "test") {
				t.Errorf("%s imports %s: only cmd and test start the service", pkg, d)
			}
		rules:
			for _, r := range rules {
				if !under(rel, r.from) {
					continue
				}
				for _, e := range r.except {
					if under(rel, e) {
						continue rules
					}
				}
				for _, b := range r.banned {
					if !strings.HasPrefix(d, b) || under(strings.TrimPrefix(d, mod), r.from) {
						continue
					}
					allowed := false
					for _, a := range r.allow {
						allowed = allowed || under(strings.TrimPrefix(d, mod), strings.TrimPrefix(a, mod))
					}
					if !allowed {
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

// TestLayeringREADME keeps the README's layout table true to the tree: every
// package has a row, every row names a package that exists, and the rows
// marked **actor** are exactly the packages under actors/.
func TestLayeringREADME(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]string{} // package (relative to the module) → kind cell
	in := false
	for _, line := range strings.Split(string(readme), "\n") {
		switch {
		case strings.HasPrefix(line, "| package | kind | job |"):
			in = true
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
		}
		if !in || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			t.Fatalf("layout row %q has no kind and job", line)
		}
		for _, name := range layoutNames(cells[1]) {
			kinds[name] = strings.TrimSpace(cells[2])
		}
	}
	if len(kinds) == 0 {
		t.Fatal("no layout table headed | package | kind | job | in the README")
	}
	listed := map[string]bool{}
	for _, pkg := range strings.Fields(string(out)) {
		rel := strings.TrimPrefix(pkg, mod)
		listed[rel] = true
		kind, ok := kinds[rel]
		switch {
		case !ok:
			t.Errorf("the README's layout table has no row for %s", rel)
		case (rel == "actors" || strings.HasPrefix(rel, "actors/")) != (kind == "**actor**"):
			t.Errorf("the README marks %s as %q: only the packages under actors/ are actors, and all of them", rel, kind)
		}
	}
	for name := range kinds {
		if !listed[name] && !strings.HasSuffix(name, "/") {
			t.Errorf("the README's layout table names %s, which is not a package", name)
		}
	}
}

// layoutNames reads the package cell of a layout row: one or more
// backquoted paths, a {a,b} group standing for several siblings.
func layoutNames(cell string) []string {
	var names []string
	for i, part := range strings.Split(cell, "`") {
		if i%2 == 0 {
			continue
		}
		open, end := strings.Index(part, "{"), strings.Index(part, "}")
		if open < 0 || end < open {
			names = append(names, part)
			continue
		}
		for _, alt := range strings.Split(part[open+1:end], ",") {
			names = append(names, part[:open]+alt+part[end+1:])
		}
	}
	return names
}
