package test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
)

// cliPassword is the devops password of the server the CLI tests run.
const cliPassword = "cli-s3cret"

// cliRun is one CLI invocation's result.
type cliRun struct {
	stdout, stderr string
	code           int
}

// cliRunner runs the built binary as a client of the server at addr.
type cliRunner struct {
	bin  string
	addr string
}

func (r cliRunner) run(t *testing.T, env []string, args ...string) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c := exec.CommandContext(ctx, r.bin, args...)
	c.Env = append(os.Environ(), "DITTOCONN_URL=http://"+r.addr, "DEVOPS_PASSWORD="+cliPassword)
	c.Env = append(c.Env, env...)
	var out, errOut bytes.Buffer
	c.Stdout, c.Stderr = &out, &errOut
	err := c.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return cliRun{stdout: out.String(), stderr: errOut.String(), code: code}
}

// do runs the CLI and checks its exit code.
func (r cliRunner) do(t *testing.T, code int, args ...string) cliRun {
	t.Helper()
	res := r.run(t, nil, args...)
	if res.code != code {
		t.Fatalf("dittoconn %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), res.code, code, res.stdout, res.stderr)
	}
	if strings.Contains(res.stdout+res.stderr, cliPassword) {
		t.Fatalf("dittoconn %s printed the password", strings.Join(args, " "))
	}
	return res
}

func writeJSON(t *testing.T, v any) string {
	t.Helper()
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "conn.json")
	if err := os.WriteFile(p, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantContains(t *testing.T, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("output lacks %q:\n%s", w, got)
		}
	}
}

// TestCLI runs every client subcommand of the binary against the binary
// serving on each engine, with its exit codes: 0 success, 1 error answered
// by the server, 2 usage or connection problem.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := blackbox.BuildBinary(t)
	for _, eng := range []string{"bolt", "mongo"} {
		t.Run(eng, func(t *testing.T) {
			env := []string{
				"INSTANCE_INDEX=cli-1", "DEVOPS_PASSWORD=" + cliPassword,
				"DITTOCONN_CORS_ALLOWED_ORIGINS=http://ui.example:9000",
				// Ditto's public test key: the migration singleton runs only with encryption on.
				"CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED=true",
				"CONNECTIVITY_CONNECTION_ENCRYPTION_KEY=vJFSTPE9PO2BtZlcMAwNjs8jdFvQCk0Ya9MVdYjRJUU=",
			}
			if eng == "bolt" {
				env = append(env, "DITTOCONN_DATA_DIR="+t.TempDir(), "MONGO_DB_URI=")
			} else {
				env = append(env, "MONGO_DB_URI="+blackbox.MongoURI, "MONGO_DB_DATABASE=cli_"+time.Now().Format("150405000000"))
			}
			p := blackbox.StartBinary(t, bin, env...)
			r := cliRunner{bin: bin, addr: p.Addr}
			runCLISuite(t, r)
			if strings.Contains(p.Logs.String(), cliPassword) {
				t.Errorf("the password reached the server log")
			}
		})
	}
}

func runCLISuite(t *testing.T, r cliRunner) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(up.Close)
	conn := apiPushConn("", up.URL)

	t.Run("connections create (generated id)", func(t *testing.T) {
		res := r.do(t, 0, "connections", "create", "-f", writeJSON(t, conn))
		if !regexp.MustCompile(`^created connection [0-9a-f-]{36}\n$`).MatchString(res.stdout) {
			t.Errorf("stdout = %q", res.stdout)
		}
	})
	t.Run("connections create (own id, create-only)", func(t *testing.T) {
		withID := apiPushConn("cli-1", up.URL)
		res := r.do(t, 0, "connections", "create", "-f", writeJSON(t, withID))
		wantContains(t, res.stdout, "created connection cli-1")
		res = r.do(t, 1, "connections", "create", "-f", writeJSON(t, withID))
		wantContains(t, res.stderr, "HTTP 412 connectivity:precondition.failed")
	})
	t.Run("connections create (invalid)", func(t *testing.T) {
		bad := apiPushConn("", up.URL)
		delete(bad, "connectionType")
		res := r.do(t, 1, "connections", "create", "-f", writeJSON(t, bad), "-o", "json")
		if !json.Valid([]byte(res.stdout)) || !strings.Contains(res.stdout, `"json.field.missing"`) {
			t.Errorf("stdout = %q", res.stdout)
		}
	})
	t.Run("connections list", func(t *testing.T) {
		res := r.do(t, 0, "connections", "list")
		wantContains(t, res.stdout, "ID", "TYPE", "STATUS", "cli-1", "http-push", "push cli-1")
		res = r.do(t, 0, "connections", "list", "-o", "json")
		var all []map[string]any
		if err := json.Unmarshal([]byte(res.stdout), &all); err != nil || len(all) != 2 {
			t.Errorf("list -o json: %v %q", err, res.stdout)
		}
		res = r.do(t, 0, "connections", "list", "--ids-only")
		if lines := strings.Split(strings.TrimSpace(res.stdout), "\n"); len(lines) != 2 {
			t.Errorf("list --ids-only = %q", res.stdout)
		}
	})
	t.Run("connections get", func(t *testing.T) {
		res := r.do(t, 0, "connections", "get", "cli-1", "-o", "json")
		m := blackbox.Decode(t, []byte(res.stdout))
		blackbox.WantField(t, m, "cli-1", "id")
		res = r.do(t, 0, "connections", "get", "--fields", "id,connectionType", "cli-1")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), map[string]any{"id": "cli-1", "connectionType": "http-push"})
		res = r.do(t, 1, "connections", "get", "nope")
		wantContains(t, res.stderr, "HTTP 404 connectivity:connection.notfound", "could not be found")
	})
	t.Run("connections modify", func(t *testing.T) {
		c := apiPushConn("cli-1", up.URL)
		c["name"] = "renamed by cli"
		res := r.do(t, 0, "connections", "modify", "-f", writeJSON(t, c))
		wantContains(t, res.stdout, "modified connection cli-1")
		res = r.do(t, 0, "connections", "get", "cli-1", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "renamed by cli", "name")
		delete(c, "id")
		res = r.do(t, 0, "connections", "modify", "cli-2", "-f", writeJSON(t, c))
		wantContains(t, res.stdout, "created connection cli-2")
	})
	t.Run("connections open and close", func(t *testing.T) {
		r.do(t, 0, "connections", "open", "cli-1")
		res := r.do(t, 0, "connections", "get", "cli-1", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "open", "connectionStatus")
		res = r.do(t, 0, "connections", "close", "cli-1")
		wantContains(t, res.stdout, "closed connection cli-1")
		r.do(t, 1, "connections", "open", "nope")
	})
	t.Run("connections status", func(t *testing.T) {
		res := r.do(t, 0, "connections", "status", "cli-1")
		wantContains(t, res.stdout, "desired status", "live status", "RESOURCE", "client")
		res = r.do(t, 0, "connections", "status", "cli-1", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "connectivity.responses:retrieveConnectionStatus", "type")
		r.do(t, 1, "connections", "status", "nope")
	})
	t.Run("connections metrics", func(t *testing.T) {
		res := r.do(t, 0, "connections", "metrics", "cli-1")
		if !strings.Contains(res.stdout, "no metrics") && !strings.Contains(res.stdout, "ADDRESS") {
			t.Errorf("metrics = %q", res.stdout)
		}
		res = r.do(t, 0, "connections", "metrics", "cli-1", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "cli-1", "connectionId")
		r.do(t, 0, "connections", "metrics", "cli-1", "--reset")
		r.do(t, 1, "connections", "metrics", "nope")
	})
	t.Run("connections logs", func(t *testing.T) {
		r.do(t, 0, "connections", "logs", "cli-1", "--enable")
		res := r.do(t, 0, "connections", "logs", "cli-1")
		wantContains(t, res.stdout, "logging enabled since")
		r.do(t, 0, "connections", "logs", "--reset", "cli-1")
		res = r.do(t, 0, "connections", "logs", "cli-1", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "cli-1", "connectionId")
		r.do(t, 2, "connections", "logs", "cli-1", "--enable", "--reset")
		r.do(t, 1, "connections", "logs", "nope")
	})
	t.Run("connections test", func(t *testing.T) {
		res := r.do(t, 0, "connections", "test", "-f", writeJSON(t, conn))
		wantContains(t, res.stdout, "connection test succeeded")
		res = r.do(t, 1, "connections", "test", "-f", writeJSON(t, apiPushConn("", "http://127.0.0.1:1")))
		wantContains(t, res.stderr, "HTTP 504 connectivity:connection.failed")
	})
	t.Run("connections delete", func(t *testing.T) {
		res := r.do(t, 0, "connections", "delete", "cli-2")
		wantContains(t, res.stdout, "deleted connection cli-2")
		r.do(t, 1, "connections", "delete", "cli-2")
	})
	t.Run("usage errors", func(t *testing.T) {
		r.do(t, 2, "connections")
		r.do(t, 2, "connections", "frob")
		r.do(t, 2, "connections", "get")
		r.do(t, 2, "connections", "get", "a", "b")
		r.do(t, 2, "connections", "list", "-o", "yaml")
		r.do(t, 2, "connections", "create")
		r.do(t, 2, "connections", "create", "-f", "/nonexistent/conn.json")
		r.do(t, 2, "connections", "list", "--no-such-flag")
		r.do(t, 2, "migration", "start", "extra")
		r.do(t, 2, "connections", "list", "--url", "ftp://x")
	})
	t.Run("connection problems", func(t *testing.T) {
		res := r.do(t, 2, "connections", "list", "--url", "http://127.0.0.1:1")
		wantContains(t, res.stderr, "cannot reach")
		res = r.run(t, []string{"DITTOCONN_URL=http://devops:" + cliPassword + "@127.0.0.1:1"}, "connections", "list")
		if res.code != 2 || strings.Contains(res.stderr, cliPassword) {
			t.Errorf("URL with credentials: exit %d, stderr %q", res.code, res.stderr)
		}
	})
	t.Run("wrong password", func(t *testing.T) {
		res := r.run(t, []string{"DEVOPS_PASSWORD=wrong-one"}, "connections", "list")
		if res.code != 1 || !strings.Contains(res.stderr, "HTTP 401") || strings.Contains(res.stderr, "wrong-one") {
			t.Errorf("exit %d, stderr %q", res.code, res.stderr)
		}
	})
	t.Run("cors preflight", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodOptions, "http://"+r.addr+"/api/2/connections", nil)
		req.Header.Set("Origin", "http://ui.example:9000")
		req.Header.Set("Access-Control-Request-Method", "GET")
		resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != "http://ui.example:9000" {
			t.Errorf("preflight: %d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("migration", func(t *testing.T) {
		res := r.do(t, 0, "migration", "status")
		wantContains(t, res.stdout, "phase", "snapshots", "journal events")
		res = r.do(t, 0, "migration", "status", "-o", "json")
		blackbox.WantField(t, blackbox.Decode(t, []byte(res.stdout)), "connectivity.responses:migrateEncryptionStatus", "type")

		res = r.do(t, 0, "migration", "start", "--dry-run")
		wantContains(t, res.stdout, "migration started (dry run")
		res = r.do(t, 0, "migration", "status", "--watch", "--interval", "100ms")
		wantContains(t, res.stdout, "docs/s", "migration completed")

		res = r.do(t, 0, "migration", "start")
		wantContains(t, res.stdout, "migration started at")
		res = r.do(t, 0, "migration", "status", "--watch", "--interval", "100ms", "-o", "json")
		lines := strings.Split(strings.TrimSpace(res.stdout), "\n")
		blackbox.WantField(t, blackbox.Decode(t, []byte(lines[len(lines)-1])), "completed", "phase")

		res = r.do(t, 0, "migration", "start", "--resume")
		wantContains(t, res.stdout, "nothing to resume")
		res = r.do(t, 1, "migration", "abort")
		if res.stderr == "" {
			t.Error("abort without a running migration printed no error")
		}
	})
}
