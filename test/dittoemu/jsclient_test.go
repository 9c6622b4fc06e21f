package dittoemu

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDittoJavaScriptClient runs Ditto's official JavaScript client
// (@eclipse-ditto/ditto-javascript-client-node, pinned in
// jsclient/package.json) against the emulator: an independent speaker of
// Ditto's protocol. It skips when node or the installed client is absent;
// install it with `npm ci --prefix test/dittoemu/jsclient`.
func TestDittoJavaScriptClient(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	if _, err := os.Stat(filepath.Join("jsclient", "node_modules", "@eclipse-ditto", "ditto-javascript-client-node", "package.json")); err != nil {
		t.Skip("Ditto's JavaScript client is not installed: npm ci --prefix test/dittoemu/jsclient")
	}
	e := Start(t, Options{}) // violations are checked below: one is the client's own
	e.Grant("org.js:t1", "pre:js-b", true, false)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "client.js", strings.TrimPrefix(e.HTTPURL(), "http://"))
	cmd.Dir = "jsclient"
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("the JavaScript client failed: %v", err)
	}
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "OK") {
		t.Fatal("the JavaScript client did not finish")
	}
	if len(e.Received()) == 0 {
		t.Error("the emulator received no Ditto Protocol message")
	}
	// Ditto's JavaScript client sends a message without response with no
	// correlation-id, which Ditto's envelope schema requires: a fact about
	// the client, not the emulator. Any other violation fails.
	for _, v := range e.Violations() {
		if strings.HasPrefix(v, "received {\"topic\":\"org.js/t1/things/live/messages/ping\"") &&
			strings.Contains(v, "missing property 'correlation-id'") {
			continue
		}
		t.Errorf("schema violation: %s", v)
	}
}
