// Package poll is how tests wait: they check a condition until it holds or a
// deadline passes, never sleep a fixed time, and fail with what they saw
// last. It imports nothing of the project, so any package's tests can use it
// (the test kit imports the gateway, whose own tests cannot import the kit).
package poll

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Interval is the pause between two checks.
const Interval = 10 * time.Millisecond

// Until checks cond until it holds and fails the test, naming what, when it
// still does not hold after within.
func Until(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	Check(t, within, func() error {
		if cond() {
			return nil
		}
		return fmt.Errorf("%s: not reached", what)
	})
}

// Check calls f until it returns nil and fails the test with f's last error
// when that does not happen within the given time.
func Check(t testing.TB, within time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		time.Sleep(Interval)
	}
}

// Buffer is a log sink safe for concurrent writers, read while they write
// (tests poll it for the lines they expect).
type Buffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
