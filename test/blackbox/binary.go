package blackbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string // removed by TestMain
)

// BuildBinary builds cmd/dittoconn once per test binary run.
func BuildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		binDir, binErr = os.MkdirTemp("", "dittoconn-bin-")
		if binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dittoconn")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		out, err := exec.CommandContext(ctx, "go", "build", "-o", binPath, "github.com/dittoconn/dittoconn/cmd/dittoconn").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// Proc is a running dittoconn binary: its process, the HTTP address of its
// ready line, its log so far, and its exit (Done receives Wait's result).
type Proc struct {
	Cmd  *exec.Cmd
	Addr string
	Logs *poll.Buffer
	Done chan error
}

// StartBinary runs the service and waits for its ready line.
func StartBinary(t *testing.T, bin string, env ...string) *Proc {
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
	p := &Proc{Cmd: c, Logs: &poll.Buffer{}, Done: make(chan error, 1)}
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 8<<20) // a panic's or a long log line
		for sc.Scan() {
			line := sc.Text()
			_, _ = p.Logs.Write([]byte(line + "\n"))
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && rec["message"] == "dittoconn ready" {
				ready <- rec["http_addr"].(string)
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() { p.Done <- c.Wait() }()
	t.Cleanup(func() { _ = c.Process.Kill() })
	select {
	case p.Addr = <-ready:
	case err := <-p.Done:
		t.Fatalf("dittoconn exited before ready: %v\n%s", err, p.Logs.String())
	case <-time.After(60 * time.Second):
		t.Fatalf("dittoconn not ready in 60s\n%s", p.Logs.String())
	}
	return p
}

// Piggyback POSTs an envelope to the devops piggyback route (password
// "foobar", the binary's default) and returns status and decoded body.
func (p *Proc) Piggyback(t *testing.T, envelope any) (int, map[string]any) {
	t.Helper()
	body, _ := json.Marshal(envelope)
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.Addr+"/devops/piggyback/connectivity", bytes.NewReader(body))
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

// Stop sends SIGTERM and expects exit status 0.
func (p *Proc) Stop(t *testing.T) {
	t.Helper()
	if err := p.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-p.Done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, p.Logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit 30s after SIGTERM\n%s", p.Logs.String())
	}
}
