package test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestLayeringClients: a protocol package imports the client contract and its
// broker library only — never an actor package (the grain, the migration,
// the system), the store, the gateway or another protocol package; only
// internal/client/clients imports them all. What the two types of one
// protocol family share (MQTT 3.1.1 and 5, AMQP 0.9.1 and 1.0) sits in a
// family package named <family>common, which protocol packages may import
// and which imports no protocol package itself.
func TestLayeringClients(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "../internal/client/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const base = mod + "internal/client/"
	banned := []string{mod + "gateway", mod + "persistence", mod + "actors"}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg, deps := fields[0], fields[1:]
		if !strings.HasPrefix(pkg, base) || strings.HasPrefix(pkg, base+"clients") {
			continue
		}
		own := strings.SplitN(strings.TrimPrefix(pkg, base), "/", 2)[0]
		for _, d := range deps {
			for _, b := range banned {
				if strings.HasPrefix(d, b) {
					t.Errorf("%s imports %s", pkg, d)
				}
			}
			if strings.HasPrefix(d, base) {
				other := strings.SplitN(strings.TrimPrefix(d, base), "/", 2)[0]
				if other != own && !(strings.HasSuffix(other, "common") && !strings.HasSuffix(own, "common")) {
					t.Errorf("%s imports the sibling protocol %s", pkg, d)
				}
			}
		}
		checked++
	}
	if checked < 3 {
		t.Fatalf("only %d protocol packages listed", checked)
	}
}
