package gateway

import (
	"context"
	"errors"
	"net"
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

// TestSlowClientsAreCut: a client that trickles its headers or body is
// disconnected by the read timeouts instead of holding a connection forever.
func TestSlowClientsAreCut(t *testing.T) {
	cfg := testConfig(t)
	cfg.Limits = Limits{ReadHeaderTimeout: 200 * time.Millisecond, ReadTimeout: 400 * time.Millisecond}
	s := New(cfg, okReply(`{}`))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Start(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = s.Shutdown(ctx)
	})
	for name, partial := range map[string]string{
		"headers never finish": "POST /devops/piggyback/connectivity HTTP/1.1\r\nHost: x\r\n",
		"body never finishes":  "POST /devops/piggyback/connectivity HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"targetActor",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", ln.Addr().String(), time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write([]byte(partial)); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			buf := make([]byte, 4096)
			for {
				_, err := c.Read(buf)
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatalf("the server kept the connection open for 5 s")
					}
					break // closed by the server (EOF or reset), possibly after an error answer
				}
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("cut after %v", d)
			}
		})
	}
}
