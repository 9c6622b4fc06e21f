package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func TestPerClientCap(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 4)
	d := &fakeDispatcher{fn: func(ctx context.Context, _ string, _ *pb.Command) (*pb.Reply, error) {
		entered <- struct{}{}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return &pb.Reply{Kind: pb.Reply_RESPONSE, Status: 200, Payload: []byte(`{"status":200}`)}, nil
	}}
	cfg := testConfig(t)
	cfg.Limits.MaxConcurrentPerClient = 1
	s := New(cfg, d)
	body := `{"targetActorSelection":"/system/sharding/connection","headers":{"aggregate":false},"piggybackCommand":{"type":"` + ditto.RetrieveConnection + `","connectionId":"x"}}`
	send := func(remote string) int {
		req, _ := http.NewRequest(http.MethodPost, "/devops/piggyback/connectivity", strings.NewReader(body))
		req.RemoteAddr = remote
		req.Header.Set("X-Forwarded-For", "10.9.9.9") // must not matter
		req.SetBasicAuth("devops", testPassword)
		rec := newRecorder()
		s.Handler().ServeHTTP(rec, req)
		return rec.Code
	}
	var wg sync.WaitGroup
	wg.Add(1)
	first := 0
	go func() { defer wg.Done(); first = send("192.0.2.1:1000") }()
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("first request never reached the dispatcher")
	}
	if got := send("192.0.2.1:1001"); got != http.StatusTooManyRequests {
		t.Errorf("second request from the same address: %d, want 429", got)
	}
	go func() { <-entered }()
	other := make(chan int, 1)
	go func() { other <- send("192.0.2.2:1000") }()
	close(release)
	if got := <-other; got != http.StatusOK {
		t.Errorf("another address: %d, want 200", got)
	}
	wg.Wait()
	if first != http.StatusOK {
		t.Errorf("first request: %d", first)
	}
	if got := send("192.0.2.1:1002"); got != http.StatusOK {
		t.Errorf("after the first finished: %d, want 200", got)
	}
}

func TestLimitsConfigurable(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits = Limits{ReadHeaderTimeout: time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 90 * time.Second,
		IdleTimeout: 3 * time.Second, MaxHeaderBytes: 1000}
	s := New(cfg, okReply(`{}`))
	if s.srv.ReadHeaderTimeout != time.Second || s.srv.ReadTimeout != 2*time.Second || s.srv.WriteTimeout != 90*time.Second ||
		s.srv.IdleTimeout != 3*time.Second || s.srv.MaxHeaderBytes != 1000 {
		t.Errorf("limits not applied: %+v", s.srv)
	}
}

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }
