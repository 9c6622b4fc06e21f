package test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string // removed by TestMain
)

// buildBinary builds cmd/dittoconn once per test binary run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "dittoconn-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dittoconn")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "../cmd/dittoconn").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type proc struct {
	cmd  *exec.Cmd
	addr string
	logs *poll.Buffer
	done chan error
}

// startBinary runs the service and waits for its ready line.
func startBinary(t *testing.T, bin string, env ...string) *proc {
	t.Helper()
	c := exec.Command(bin, "serve", "--http-addr", "127.0.0.1:0")
	c.Env = append(os.Environ(), env...)
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: c, logs: &poll.Buffer{}, done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 8<<20) // a panic's or a long log line
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.logs.Write([]byte(line + "\n"))
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["message"] == "dittoconn ready" {
				ready <- rec["http_addr"].(string)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { p.done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	select {
	case p.addr = <-ready:
	case err := <-p.done:
		t.Fatalf("dittoconn exited before ready: %v\n%s", err, p.logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dittoconn not ready in 60s\n%s", p.logs.String())
	}
	return p
}

func (p *proc) piggyback(t *testing.T, envelope any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(envelope)
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/devops/piggyback/connectivity", bytes.NewReader(body))
	req.SetBasicAuth("devops", "foobar")
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: 20 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("piggyback: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return resp.StatusCode, m
}

// stop sends SIGTERM and expects exit status 0.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", p.logs.String())
	}
}

// TestBinaryServeStopRestart runs the real binary on the embedded default:
// ready line, create, SIGTERM → exit 0, restart on the same data dir,
// the connection is there; the password never reaches the log.
func TestBinaryServeStopRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-1", "MONGO_DB_URI="}
	p := startBinary(t, bin, env...)
	conn := mqttConnection("bin-1", "closed", "x")
	conn["uri"] = "tcp://user:s3cr3t-pass@127.0.0.1:1883"
	st, m := p.piggyback(t, map[string]any{"targetActorSelection": shard,
		"headers": map[string]any{"aggregate": true}, "piggybackCommand": cmd(ditto.CreateConnection, "connection", conn)})
	if st != 200 {
		t.Fatalf("create: %d %v", st, m)
	}
	wantField(t, m, 201, "connectivity", "bin-1", "status")
	p.stop(t)
	if strings.Contains(p.logs.String(), "s3cr3t-pass") || strings.Contains(p.logs.String(), "foobar") {
		t.Errorf("a secret reached the log:\n%s", p.logs.String())
	}

	p2 := startBinary(t, bin, env...)
	st, m = p2.piggyback(t, map[string]any{"targetActorSelection": shard,
		"headers": map[string]any{"aggregate": false}, "piggybackCommand": cmd(ditto.RetrieveConnection, "connectionId", "bin-1")})
	if st != 200 {
		t.Fatalf("retrieve: %d", st)
	}
	wantField(t, m, "tcp://user:s3cr3t-pass@127.0.0.1:1883", "connection", "uri")
	p2.stop(t)
}

// TestBinaryRefusesCorruptedStoreFile: a damaged embedded store file stops
// the service at start with a non-zero exit and a message naming the file
// (no goroutine dump), and the file is left as it was.
func TestBinaryRefusesCorruptedStoreFile(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := buildBinary(t)
	dataDir := t.TempDir()
	env := []string{"DITTOCONN_DATA_DIR=" + dataDir, "INSTANCE_INDEX=bin-corrupt", "MONGO_DB_URI="}
	p := startBinary(t, bin, env...)
	for i := 0; i < 20; i++ {
		conn := mqttConnection(fmt.Sprintf("corrupt-%d", i), "closed", "x")
		if st, m := p.piggyback(t, map[string]any{"targetActorSelection": shard, "headers": map[string]any{"aggregate": false},
			"piggybackCommand": cmd(ditto.CreateConnection, "connection", conn)}); st != 200 {
			t.Fatalf("create: %d %v", st, m)
		}
	}
	p.stop(t)
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
