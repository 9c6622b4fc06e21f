package client

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

func TestSettlerBoundsAndSettlesOnce(t *testing.T) {
	s := NewSettler(2)
	s.Start()
	defer s.Close(nil)
	stop := make(chan struct{})
	var mu sync.Mutex
	var got []Outcome
	record := func(o Outcome) {
		mu.Lock()
		got = append(got, o)
		mu.Unlock()
	}
	for range 2 {
		if !s.Acquire(stop) {
			t.Fatal("Acquire below the bound failed")
		}
	}
	first, second := s.Settle(record), s.Settle(record)
	third := make(chan bool, 1)
	go func() { third <- s.Acquire(stop) }()
	select {
	case <-third:
		t.Fatal("Acquire above the bound did not wait")
	case <-time.After(50 * time.Millisecond):
	}
	first(Redeliver)
	first(Accept) // ignored
	if !<-third {
		t.Fatal("Acquire after a settlement failed")
	}
	second(Reject)
	poll.Check(t, 5*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if len(got) != 2 || got[0] != Redeliver || got[1] != Reject {
			return fmt.Errorf("settlements %v, want [redeliver reject]", got)
		}
		return nil
	})
	if n := s.Unsettled(); n != 1 {
		t.Fatalf("%d unsettled, want 1", n)
	}
	close(stop)
	if s.Acquire(stop) {
		t.Fatal("Acquire after stop succeeded")
	}
}

func TestSettlerCloseDrainsAndUnblocks(t *testing.T) {
	s := NewSettler(2)
	for range 2 {
		if !s.Acquire(nil) {
			t.Fatal("Acquire below the bound failed")
		}
	}
	late := s.Settle(func(Outcome) { t.Error("settled after Close") })
	var drained atomic.Bool
	s.Settle(func(Outcome) { drained.Store(true) })(Accept) // queued before the goroutine runs
	done := make(chan bool, 1)
	go func() { done <- s.Acquire(nil) }()
	s.Start()
	s.Close(nil)
	if !drained.Load() {
		t.Fatal("a settlement queued before Close was not performed")
	}
	if ok := <-done; ok && s.Unsettled() > 2 {
		t.Fatal("Acquire overran the bound")
	}
	if s.Acquire(nil) {
		t.Fatal("Acquire succeeded after Close")
	}
	late(Accept)             // dropped, not blocking
	NewSettler(1).Close(nil) // never started: returns at once
}

func TestMaxUnsettled(t *testing.T) {
	const limit, factor = "KAFKA_CONSUMER_THROTTLING_LIMIT", "KAFKA_CONSUMER_THROTTLING_MAX_IN_FLIGHT_FACTOR"
	for _, tc := range []struct {
		env           map[string]string
		limit, factor string
		want          int
	}{
		{nil, limit, factor, 200},
		{nil, "", "", 200},
		{map[string]string{limit: "10"}, limit, factor, 20},
		{map[string]string{limit: "10", factor: "1.5"}, limit, factor, 15},
		{map[string]string{limit: "10", factor: "1.5"}, limit, "", 20},
		{map[string]string{limit: "-3", factor: "0.5"}, limit, factor, 200},
		{map[string]string{"AMQP10_CONSUMER_THROTTLING_LIMIT": "10"}, limit, factor, 200},
		{map[string]string{"DITTOCONN_CONSUMER_MAX_UNSETTLED": "7", limit: "10"}, limit, factor, 7},
		{map[string]string{"DITTOCONN_CONSUMER_MAX_UNSETTLED": "x"}, "", "", 200},
	} {
		if got := maxUnsettled(tc.limit, tc.factor, func(k string) string { return tc.env[k] }); got != tc.want {
			t.Errorf("maxUnsettled(%q, %q) with %v = %d, want %d", tc.limit, tc.factor, tc.env, got, tc.want)
		}
	}
}
