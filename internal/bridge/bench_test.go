package bridge

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/model"
)

// idleServer accepts WebSockets, confirms subscriptions and otherwise only reads.
func idleServer(b *testing.B) *httptest.Server {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, data, err := ws.ReadMessage()
			if err != nil {
				return
			}
			if name, _, _ := strings.Cut(string(data), "?"); strings.HasPrefix(name, "START-SEND-") {
				_ = ws.WriteMessage(websocket.TextMessage, []byte(name+":ACK"))
			}
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

func inUse() int64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc + m.StackInuse)
}

// settle waits until the goroutines of closed sockets (both sides) are gone.
func settle(b *testing.B, goroutines int) {
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > goroutines {
		if time.Now().After(deadline) {
			b.Fatalf("%d goroutines, want %d", runtime.NumGoroutine(), goroutines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkIdleSessionMemory measures what an idle target session costs
// (heap and stacks, this process: client and the test server's side), against
// a baseline measured in the same run: a bare gorilla client socket with one
// reader goroutine, the least any WebSocket client holds. The ratio is what
// to read; docs/BENCHMARKS.md has a run.
func BenchmarkIdleSessionMemory(b *testing.B) {
	const n = 200
	srv := idleServer(b)
	uri := "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws/2"
	var raw, bridge float64
	for range b.N {
		// baseline: bare sockets
		g := runtime.NumGoroutine()
		before := inUse()
		conns := make([]*websocket.Conn, 0, n)
		for range n {
			ws, _, err := websocket.DefaultDialer.Dial(uri, nil)
			if err != nil {
				b.Fatal(err)
			}
			go func() {
				for {
					if _, _, err := ws.ReadMessage(); err != nil {
						return
					}
				}
			}()
			conns = append(conns, ws)
		}
		raw = float64(inUse()-before) / n
		for _, ws := range conns {
			ws.Close()
		}
		settle(b, g)

		before = inUse()
		l := Open(Config{URI: uri, Logger: zerolog.Nop(), PingInterval: time.Hour}, "bench")
		for i := range n {
			l.Target([]string{"pre:s" + strconv.Itoa(i)}, nil, []Subscription{{Stream: model.TopicTwinEvents}}, func(Delivery) {})
		}
		deadline := time.Now().Add(30 * time.Second)
		for !l.Ready() {
			if time.Now().After(deadline) {
				b.Fatal("sessions not ready")
			}
			time.Sleep(10 * time.Millisecond)
		}
		bridge = float64(inUse()-before) / n
		l.Close()
		settle(b, g)
	}
	b.ReportMetric(raw, "B/raw-socket")
	b.ReportMetric(bridge, "B/session")
	b.ReportMetric(bridge/raw, "session/raw")
}
