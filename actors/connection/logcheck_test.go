package connection

import (
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/monitor"
)

// Enabled logging is checked periodically and expires by itself, so the
// data plane stops writing entries without anybody retrieving them.
func TestLogsExpireByPeriodicCheck(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	checks := make(chan any, 10)
	l := liveState{
		logs: monitor.NewLogs(monitor.LogOptions{ConnectionID: "c", Now: clock,
			Config: monitor.LogConfig{LogDuration: time.Hour, ActiveCheckInterval: 10 * time.Millisecond}}),
		send: func(m any) { checks <- m },
	}
	l.enableLogs()
	wait := func() {
		t.Helper()
		select {
		case m := <-checks:
			if _, ok := m.(*logsCheck); !ok {
				t.Fatalf("sent %T", m)
			}
		case <-time.After(2 * time.Second):
			t.Fatal("no check")
		}
	}
	wait()
	l.onCheck(clock()) // still enabled: checks again
	if !l.logs.Enabled() {
		t.Fatal("expired too early")
	}
	wait()
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	l.onCheck(clock())
	if l.logs.Enabled() || l.check != nil {
		t.Fatalf("enabled %v, check armed %v", l.logs.Enabled(), l.check != nil)
	}
	select {
	case <-checks:
		t.Fatal("checked after expiry")
	case <-time.After(50 * time.Millisecond):
	}
	var _ interface{ NotInfluenceReceiveTimeout() } = &logsCheck{}
}
