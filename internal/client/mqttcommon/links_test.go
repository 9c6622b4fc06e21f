package mqttcommon

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

func TestLinksRedeliver(t *testing.T) {
	var l Links[int]
	l.Set(1, 1)
	var calls atomic.Int32
	release := make(chan struct{})
	replace := func(old int) (int, error) {
		calls.Add(1)
		<-release // under way until both calls below were made
		return old + 1, nil
	}
	fail := func(error) { t.Error("lost") }
	l.Redeliver(time.Millisecond, replace, func(int) { t.Error("discarded") }, fail)
	l.Redeliver(time.Millisecond, replace, func(int) { t.Error("discarded") }, fail) // one at a time
	close(release)
	poll.Check(t, 5*time.Second, func() error {
		if l.Sub() != 2 || l.Pub() != 2 {
			return fmt.Errorf("sub %d pub %d, want both replaced", l.Sub(), l.Pub())
		}
		return nil
	})
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d reconnects, want 1", n)
	}

	// separate publisher: only the consumer moves; a failure is a loss
	l.Set(5, 9)
	lost := make(chan error, 1)
	l.Redeliver(time.Millisecond, func(int) (int, error) { return 0, errors.New("refused") }, nil, func(err error) { lost <- err })
	select {
	case err := <-lost:
		if err == nil || l.Sub() != 5 || l.Pub() != 9 {
			t.Fatalf("after a failed reconnect: %v sub %d pub %d", err, l.Sub(), l.Pub())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a failed reconnect was not reported")
	}

	// closed: nothing more is scheduled
	var m Links[int]
	m.Set(1, 1)
	if sub, pub := m.Close(); sub != 1 || pub != 1 {
		t.Fatalf("Close returned %d %d", sub, pub)
	}
	m.Redeliver(time.Millisecond, func(int) (int, error) { t.Error("reconnected after Close"); return 0, nil }, nil, nil)
	time.Sleep(20 * time.Millisecond) // would the timer fire, it fails the test
}
