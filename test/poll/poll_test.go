package poll

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeT records a Fatalf and stops the goroutine as testing.T does.
type fakeT struct {
	testing.TB
	msg string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}

func run(f func(t testing.TB)) (failed string) {
	ft := &fakeT{}
	defer func() {
		if r := recover(); r != nil {
			failed = r.(*fakeT).msg
		}
	}()
	f(ft)
	return ""
}

func TestCheck(t *testing.T) {
	n := 0
	if msg := run(func(t testing.TB) {
		Check(t, time.Second, func() error {
			if n++; n < 3 {
				return errors.New("not yet")
			}
			return nil
		})
	}); msg != "" || n != 3 {
		t.Fatalf("Check failed (%q) or stopped early after %d calls", msg, n)
	}
	start := time.Now()
	msg := run(func(t testing.TB) {
		Check(t, 50*time.Millisecond, func() error { return errors.New("last seen 7") })
	})
	if !strings.Contains(msg, "last seen 7") {
		t.Fatalf("failure %q does not carry the last error", msg)
	}
	if took := time.Since(start); took < 50*time.Millisecond {
		t.Fatalf("gave up after %v, before the deadline", took)
	}
}

func TestUntil(t *testing.T) {
	if msg := run(func(t testing.TB) { Until(t, 20*time.Millisecond, "the moon", func() bool { return false }) }); !strings.Contains(msg, "the moon") {
		t.Fatalf("failure %q does not name what was awaited", msg)
	}
	if msg := run(func(t testing.TB) { Until(t, time.Second, "x", func() bool { return true }) }); msg != "" {
		t.Fatalf("a holding condition failed: %q", msg)
	}
}

func TestBufferConcurrentWrites(t *testing.T) {
	var b Buffer
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				_, _ = b.Write([]byte("x"))
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	if got := len(b.String()); got != 800 {
		t.Fatalf("%d bytes, want 800", got)
	}
}
