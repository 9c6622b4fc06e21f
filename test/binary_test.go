package test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
)

// TestBinaryServeStopRestart runs the real binary on the embedded default:
// ready line, create, SIGTERM → exit 0, restart on the same data dir,
// the connection is there; the password never reaches the log.
func TestBinaryServeStopRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	dataDir := t.TempDir()
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-1", "MONGO_DB_URI="}
	p := blackbox.StartBinary(t, bin, env...)
	conn := blackbox.MQTTConnection("bin-1", "closed", "x")
	conn["uri"] = "tcp://user:s3cr3t-pass@127.0.0.1:1883"
	st, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
		"headers": map[string]any{"aggregate": true}, "piggybackCommand": blackbox.Cmd(ditto.CreateConnection, "connection", conn)})
	if st != 200 {
		t.Fatalf("create: %d %v", st, m)
	}
	blackbox.WantField(t, m, 201, "connectivity", "bin-1", "status")
	p.Stop(t)
	if strings.Contains(p.Logs.String(), "s3cr3t-pass") || strings.Contains(p.Logs.String(), "foobar") {
		t.Errorf("a secret reached the log:\n%s", p.Logs.String())
	}

	p2 := blackbox.StartBinary(t, bin, env...)
	st, m = p2.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard,
		"headers": map[string]any{"aggregate": false}, "piggybackCommand": blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "bin-1")})
	if st != 200 {
		t.Fatalf("retrieve: %d", st)
	}
	blackbox.WantField(t, m, "tcp://user:s3cr3t-pass@127.0.0.1:1883", "connection", "uri")
	p2.Stop(t)
}

// TestBinaryRefusesCorruptedStoreFile: a damaged embedded store file stops
// the service at start with a non-zero exit and a message naming the file
// (no goroutine dump), and the file is left as it was.
func TestBinaryRefusesCorruptedStoreFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	dataDir := t.TempDir()
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-corrupt", "MONGO_DB_URI="}
	p := blackbox.StartBinary(t, bin, env...)
	for i := 0; i < 20; i++ {
		conn := blackbox.MQTTConnection(fmt.Sprintf("corrupt-%d", i), "closed", "x")
		if st, m := p.Piggyback(t, map[string]any{"targetActorSelection": blackbox.Shard, "headers": map[string]any{"aggregate": false},
			"piggybackCommand": blackbox.Cmd(ditto.CreateConnection, "connection", conn)}); st != 200 {
			t.Fatalf("create: %d %v", st, m)
		}
	}
	p.Stop(t)
	path := filepath.Join(dataDir, "dittoconn.db")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	ps := os.Getpagesize()
	for off := 2 * ps; off+8 <= len(b); off += ps {
		copy(b[off:], []byte{0xad, 0xde, 0, 0, 0, 0, 0, 0}) // every page names another id
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, bin, "serve", "--http-addr", "127.0.0.1:0")
	c.Env = append(os.Environ(), env...)
	out, err := c.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() == 0 {
		t.Fatalf("want a non-zero exit, got %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "store file corrupted") || !strings.Contains(string(out), path) ||
		strings.Contains(string(out), "goroutine ") {
		t.Fatalf("start-up output:\n%s", out)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
		t.Fatal("the damaged file was changed")
	}
}
