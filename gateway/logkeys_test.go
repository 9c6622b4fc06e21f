package gateway

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/test/poll"
)

// TestLogLinesNeverRepeatAKey drives the gateway through lines from each of
// its loggers (construction warning, piggyback, connections API, access log,
// errors) with the logger the service gives it (the gateway names its own
// component), and fails on a JSON key written twice in one line: log
// processors keep only one of them. Every line names the component.
func TestLogLinesNeverRepeatAKey(t *testing.T) {
	logs := &poll.Buffer{}
	cfg := testConfig(t)
	cfg.DevopsSecured = false
	cfg.Logger = zerolog.New(logs).Level(zerolog.TraceLevel).With().Timestamp().Logger()
	s := New(cfg, &fakeDispatcher{err: errors.New("boom")})
	for _, r := range []request{
		{path: "/devops/piggyback/connectivity", body: retrieveBody},
		{path: "/devops/piggyback/connectivity", body: "not json"},
		{method: http.MethodGet, path: "/api/2/connections"},
		{method: http.MethodGet, path: "/api/2/connections/c-1"},
		{method: http.MethodPut, path: "/devops/piggyback"},
	} {
		serve(t, s, r)
	}
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		lines++
		if dup := repeatedKey(t, sc.Text()); dup != "" {
			t.Errorf("key %q twice in %s", dup, sc.Text())
		}
		if !strings.Contains(sc.Text(), `"component":"gateway"`) {
			t.Errorf("no component in %s", sc.Text())
		}
	}
	if lines < 5 {
		t.Fatalf("want a line per request and more, got %d: %s", lines, logs)
	}
}

// repeatedKey returns the first key that a JSON object line holds twice, at
// any depth, or "".
func repeatedKey(t *testing.T, line string) string {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(line))
	var walk func() string
	walk = func() string {
		tok, err := dec.Token()
		if err != nil {
			t.Fatalf("log line is not JSON (%v): %s", err, line)
		}
		switch tok {
		case json.Delim('{'):
			seen := map[string]bool{}
			for dec.More() {
				k, _ := dec.Token()
				key := k.(string)
				if seen[key] {
					return key
				}
				seen[key] = true
				if dup := walk(); dup != "" {
					return dup
				}
			}
			_, _ = dec.Token()
		case json.Delim('['):
			for dec.More() {
				if dup := walk(); dup != "" {
					return dup
				}
			}
			_, _ = dec.Token()
		}
		return ""
	}
	dup := walk()
	if _, err := dec.Token(); dup == "" && err != io.EOF {
		t.Fatalf("trailing data in log line: %s", line)
	}
	return dup
}

func TestRepeatedKey(t *testing.T) {
	for line, want := range map[string]string{
		`{"a":1,"b":{"a":2},"c":[{"d":1}]}`:   "",
		`{"component":"x","component":"x"}`:   "component",
		`{"a":{"b":1,"b":2}}`:                 "b",
		`{"a":[{"c":1},{"c":2,"c":3}],"d":1}`: "c",
	} {
		if got := repeatedKey(t, line); got != want {
			t.Errorf("repeatedKey(%s) = %q, want %q", line, got, want)
		}
	}
}
