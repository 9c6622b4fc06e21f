package test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// silentListener accepts TCP connections and never answers; it counts how
// many are open at once.
type silentListener struct {
	ln            net.Listener
	open, maxOpen atomic.Int32
	accepted      atomic.Int32
}

func newSilentListener(t *testing.T) *silentListener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &silentListener{ln: ln}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			now := s.open.Add(1)
			for {
				old := s.maxOpen.Load()
				if now <= old || s.maxOpen.CompareAndSwap(old, now) {
					break
				}
			}
			go func() {
				defer s.open.Add(-1)
				defer c.Close()
				buf := make([]byte, 512)
				for {
					if _, err := c.Read(buf); err != nil {
						return // the client gave up
					}
				}
			}()
		}
	}()
	return s
}

// TestTestConnectionBoundedAndAnswered: many concurrent testConnection
// commands against an endpoint that accepts and never answers open at most
// MaxConnecting connections at once, and every caller gets Ditto's answer
// (504 connectivity:connection.failed, the timeout message) before its own
// deadline, even when that deadline is shorter than the testing timeout.
// (Before, 150 such tests opened 150 connections and most callers got 408
// null: the test ended exactly at their deadline.)
func TestTestConnectionBoundedAndAnswered(t *testing.T) {
	const bound, tests = 4, 24
	silent := newSilentListener(t)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{MaxConnecting: bound}) // testing timeout: Ditto's 10 s
	var wg sync.WaitGroup
	for i := 0; i < tests; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c := blackbox.MQTTConnection(fmt.Sprintf("silent-test-%d", i), "closed")
			c["uri"] = "tcp://" + silent.ln.Addr().String()
			// the caller waits 2 s, less than the testing timeout
			st, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.TestConnection, "connection", c), map[string]any{"timeout": "2s"}))
			if st != http.StatusOK {
				t.Errorf("test %d: HTTP %d %s, want Ditto's answer", i, st, body)
				return
			}
			m := blackbox.Decode(t, body)
			desc, _ := m["description"].(string)
			if m["status"] != float64(http.StatusGatewayTimeout) || m["error"] != ditto.CodeConnectionFailed ||
				!strings.HasPrefix(desc, "Failed to open requested connection within <") {
				t.Errorf("test %d: %s, want 504 %s with the timeout message", i, body, ditto.CodeConnectionFailed)
			}
		}(i)
	}
	wg.Wait()
	if got := silent.maxOpen.Load(); got > bound || got == 0 {
		t.Errorf("%d connections open at once, want 1…%d", got, bound)
	}
	t.Logf("%d tests: %d connections accepted, at most %d at once", tests, silent.accepted.Load(), silent.maxOpen.Load())
}
