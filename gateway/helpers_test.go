package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	pb "github.com/dittoconn/dittoconn/proto"
)

const (
	testInstance = "1"
	testPassword = "s3cret-devops"
)

// call is one Dispatch the fake received.
type call struct {
	target      string
	cmd         *pb.Command
	deadline    time.Time
	hasDeadline bool
	ctxErr      error
}

// fakeDispatcher records every command and answers with reply/err, or with
// fn when set.
type fakeDispatcher struct {
	mu    sync.Mutex
	calls []call
	reply *pb.Reply
	err   error
	fn    func(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error)
}

var _ Dispatcher = (*fakeDispatcher)(nil)

func (f *fakeDispatcher) Dispatch(ctx context.Context, target string, cmd *pb.Command) (*pb.Reply, error) {
	dl, ok := ctx.Deadline()
	f.mu.Lock()
	f.calls = append(f.calls, call{target: target, cmd: cmd, deadline: dl, hasDeadline: ok, ctxErr: ctx.Err()})
	fn, reply, err := f.fn, f.reply, f.err
	f.mu.Unlock()
	if fn != nil {
		return fn(ctx, target, cmd)
	}
	return reply, err
}

func (f *fakeDispatcher) recorded() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]call(nil), f.calls...)
}

// onlyCall returns the single recorded call, failing otherwise.
func (f *fakeDispatcher) onlyCall(t *testing.T) call {
	t.Helper()
	calls := f.recorded()
	if len(calls) != 1 {
		t.Fatalf("dispatcher got %d calls, want 1", len(calls))
	}
	return calls[0]
}

// okReply answers every command with a fixed response.
func okReply(payload string) *fakeDispatcher {
	return &fakeDispatcher{reply: &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 200, Payload: []byte(payload)}}
}

func testConfig(t *testing.T) Config {
	return Config{
		Instance:       testInstance,
		DevopsSecured:  true,
		DevopsPassword: testPassword,
		Logger:         zerolog.New(zerolog.NewTestWriter(t)),
	}
}

func newTestServer(t *testing.T, d Dispatcher) *Server {
	t.Helper()
	return New(testConfig(t), d)
}

// request describes one HTTP call in a table.
type request struct {
	method string // default POST
	path   string
	body   string
	noAuth bool
	auth   [2]string // user, password; default devops/testPassword
	header map[string]string
}

func serve(t *testing.T, s *Server, r request) *httptest.ResponseRecorder {
	t.Helper()
	method := r.method
	if method == "" {
		method = http.MethodPost
	}
	req := httptest.NewRequest(method, r.path, strings.NewReader(r.body))
	if !r.noAuth {
		user, pass := r.auth[0], r.auth[1]
		if user == "" && pass == "" {
			user, pass = devopsUser, testPassword
		}
		req.SetBasicAuth(user, pass)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// envelopeBody builds a piggyback body with the given headers and command.
func envelopeBody(target, headers, command string) string {
	return `{"targetActorSelection":"` + target + `","headers":` + headers + `,"piggybackCommand":` + command + `}`
}

func assertStatus(t *testing.T, rec *httptest.ResponseRecorder, want int) {
	t.Helper()
	if rec.Code != want {
		t.Fatalf("status = %d, want %d; body %s", rec.Code, want, rec.Body.String())
	}
}

func assertContentType(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if got := rec.Header().Get("Content-Type"); got != want {
		t.Fatalf("Content-Type = %q, want %q", got, want)
	}
}

// assertJSONBody compares the body with want as parsed JSON.
func assertJSONBody(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	assertContentType(t, rec, "application/json")
	assertJSONEqual(t, rec.Body.Bytes(), []byte(want))
}

func assertJSONEqual(t *testing.T, got, want []byte) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("bad expectation %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

// assertBody compares the body byte for byte.
func assertBody(t *testing.T, rec *httptest.ResponseRecorder, want string) {
	t.Helper()
	if got := rec.Body.String(); got != want {
		t.Fatalf("body\n got %s\nwant %s", got, want)
	}
}

// assert408 checks Ditto's "nobody answered": 408, JSON null.
func assert408(t *testing.T, rec *httptest.ResponseRecorder) {
	t.Helper()
	assertStatus(t, rec, http.StatusRequestTimeout)
	assertContentType(t, rec, "application/json")
	assertBody(t, rec, "null")
}
