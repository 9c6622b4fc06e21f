package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeMigration answers piggyback migration commands with scripted status
// bodies, one per status request (the last one repeats).
type fakeMigration struct {
	mu       sync.Mutex
	statuses []string
	polls    int
	// raw answers every request with this status and body when set.
	rawStatus int
	rawBody   string
	got       []map[string]any
}

func (f *fakeMigration) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if _, pass, _ := r.BasicAuth(); pass != "pw" || r.URL.Path != piggybackPath || r.URL.Query().Get("timeout") == "" {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, "The supplied authentication is invalid")
		return
	}
	var env map[string]any
	_ = json.NewDecoder(r.Body).Decode(&env)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, env)
	w.Header().Set("Content-Type", "application/json")
	if f.rawStatus != 0 {
		w.WriteHeader(f.rawStatus)
		_, _ = io.WriteString(w, f.rawBody)
		return
	}
	cmd, _ := env["piggybackCommand"].(map[string]any)
	switch cmd["type"] {
	case "connectivity.commands:migrateEncryptionStatus":
		i := min(f.polls, len(f.statuses)-1)
		f.polls++
		_, _ = io.WriteString(w, f.statuses[i])
	case "connectivity.commands:migrateEncryption":
		_, _ = io.WriteString(w, `{"type":"connectivity.responses:migrateEncryption","status":202,"phase":"started","dryRun":true,"resumed":false,"startedAt":"2026-02-16T10:00:00Z"}`)
	case "connectivity.commands:migrateEncryptionAbort":
		_, _ = io.WriteString(w, `{"type":"connectivity.responses:migrateEncryptionAbort","status":200,"phase":"aborted:journal","snapshots":{"processed":5,"skipped":1,"failed":0},"journalEvents":{"processed":2,"skipped":0,"failed":1},"abortedAt":"2026-02-16T10:01:00Z"}`)
	}
}

func status(phase string, active bool, snap, journal string) string {
	return `{"type":"connectivity.responses:migrateEncryptionStatus","status":200,"phase":"` + phase +
		`","snapshots":` + snap + `,"journalEvents":` + journal +
		`,"timing":{"startedAt":"2026-02-16T10:00:00Z","updatedAt":"2026-02-16T10:00:05Z"},"dryRun":false,"migrationActive":` +
		map[bool]string{true: "true", false: "false"}[active] + `}`
}

func runFake(t *testing.T, f *fakeMigration, args ...string) (string, string, int) {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	env := map[string]string{"DITTOCONN_URL": srv.URL, "DEVOPS_PASSWORD": "pw"}
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code := runCLI(ctx, args, func(k string) string { return env[k] }, &out, &errOut)
	return out.String(), errOut.String(), code
}

func TestMigrationWatchWithFakeServer(t *testing.T) {
	f := &fakeMigration{statuses: []string{
		status("in_progress:snapshots", true, `{"processed":10,"skipped":0,"failed":0,"total":100}`, `{"processed":0,"skipped":0,"failed":0,"total":100}`),
		status("in_progress:snapshots", true, `{"processed":90,"skipped":5,"failed":5,"total":100}`, `{"processed":0,"skipped":0,"failed":0,"total":100}`),
		status("in_progress:journal", true, `{"processed":90,"skipped":5,"failed":5,"total":100}`, `{"processed":50,"skipped":0,"failed":0,"total":100}`),
		status("completed", false, `{"processed":90,"skipped":5,"failed":5,"total":100}`, `{"processed":99,"skipped":1,"failed":0,"total":100}`),
	}}
	out, errOut, code := runFake(t, f, "migration", "status", "--watch", "--interval", "100ms")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 4 progress lines and a summary, got:\n%s", out)
	}
	for _, want := range []string{"  5% in_progress:snapshots", " 50% in_progress:snapshots", " 75% in_progress:journal", "100% completed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(lines[1], "docs/s") || !strings.Contains(lines[1], "ETA ") || strings.Contains(lines[1], "ETA unknown") {
		t.Errorf("second line has no rate and estimate: %s", lines[1])
	}
	if !strings.Contains(lines[1], "snapshots 90/5/5") {
		t.Errorf("counters missing: %s", lines[1])
	}
	if !strings.HasPrefix(lines[4], "migration completed") {
		t.Errorf("summary = %q", lines[4])
	}
}

func TestMigrationWatchStopsWhenRunEnds(t *testing.T) {
	// Ditto's shape without totals; the run stops (aborted elsewhere) in the journal phase.
	zero := `{"processed":0,"skipped":0,"failed":0}`
	f := &fakeMigration{statuses: []string{
		status("in_progress:journal", true, `{"processed":3,"skipped":0,"failed":0}`, zero),
		status("journal", false, `{"processed":3,"skipped":0,"failed":0}`, `{"processed":1,"skipped":0,"failed":0}`),
	}}
	out, _, code := runFake(t, f, "migration", "status", "--watch", "--interval", "100ms")
	if code != exitOK || !strings.Contains(out, "ETA unknown") || !strings.Contains(out, "stopped in phase journal") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
}

func TestMigrationCommandsWithFakeServer(t *testing.T) {
	f := &fakeMigration{}
	out, _, code := runFake(t, f, "migration", "start", "--dry-run", "--resume")
	if code != exitOK || !strings.Contains(out, "migration started (dry run") {
		t.Fatalf("start: exit %d: %s", code, out)
	}
	cmd := f.got[0]["piggybackCommand"].(map[string]any)
	if cmd["dryRun"] != true || cmd["resume"] != true || f.got[0]["targetActorSelection"] != migrationTarget {
		t.Errorf("sent %v", f.got[0])
	}
	out, _, code = runFake(t, f, "migration", "abort")
	if code != exitOK || !strings.Contains(out, "aborted:journal") || !strings.Contains(out, "processed 5  skipped 1  failed 0") {
		t.Fatalf("abort: exit %d: %s", code, out)
	}
	out, _, code = runFake(t, f, "migration", "abort", "-o", "json")
	if code != exitOK || !json.Valid([]byte(out)) {
		t.Fatalf("abort -o json: exit %d: %s", code, out)
	}
}

func TestMigrationErrorsWithFakeServer(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		body       string
		wantCode   int
		wantStderr string
	}{
		{"no singleton (408 null)", 408, "null", exitServerError, "runs only when connection encryption is configured"},
		{"devops error response", 200,
			`{"type":"devops.responses:errorResponse","status":503,"serviceName":"connectivity","instance":"1","payload":{"status":503,"error":"ask.error","message":"No migration is currently running."}}`,
			exitServerError, "HTTP 503 ask.error: No migration is currently running."},
		{"Ditto error", 200, `{"status":400,"error":"connectivity:internalerror","message":"boom"}`, exitServerError, "HTTP 400 connectivity:internalerror: boom"},
		{"gateway error", 400, `{"status":400,"error":"gateway:timeout.invalid","message":"bad timeout"}`, exitServerError, "gateway:timeout.invalid"},
		{"not JSON", 200, `<html>`, exitUsage, "not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeMigration{rawStatus: tt.status, rawBody: tt.body}
			_, errOut, code := runFake(t, f, "migration", "abort")
			if code != tt.wantCode || !strings.Contains(errOut, tt.wantStderr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, errOut, tt.wantCode, tt.wantStderr)
			}
		})
	}
}

func TestCLIFlagsAndSecrets(t *testing.T) {
	c := &cli{getenv: func(k string) string {
		return map[string]string{"DITTOCONN_URL": "http://devops:url-secret@h:1/base/", "DEVOPS_PASSWORD": ""}[k]
	}, errOut: io.Discard}
	fs := c.flags("x")
	verbose := fs.Bool("v", false, "")
	pos, err := c.parse(fs, []string{"one", "-o", "json", "two", "-v"}, 2, 2, "two args")
	if err != nil || strings.Join(pos, ",") != "one,two" || c.output != "json" || !*verbose {
		t.Fatalf("parse: %v %v %q %v", err, pos, c.output, *verbose)
	}
	if c.password != "url-secret" || c.base.User != nil || c.base.String() != "http://h:1/base" {
		t.Errorf("password %q, base %q", c.password, c.base)
	}

	var usage bytes.Buffer
	c2 := &cli{getenv: func(k string) string {
		return map[string]string{"DEVOPS_PASSWORD": "env-secret", "DITTOCONN_URL": "http://u:url-secret@h"}[k]
	}, errOut: &usage}
	if _, err := c2.parse(c2.flags("x"), []string{"-h"}, 0, 0, ""); err == nil {
		t.Fatal("-h did not stop parsing")
	}
	if strings.Contains(usage.String(), "secret") {
		t.Errorf("usage shows a secret:\n%s", usage.String())
	}
}

func TestSanitize(t *testing.T) {
	if got := sanitize("ok\x1b[31m red\ttab\x07"); got != "ok[31m red tab" {
		t.Errorf("sanitize = %q", got)
	}
}
