package blackbox

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

// Arrivals counts, per message number, how often a message arrived at a
// target: the at-least-once proofs (#13) want every number at least once
// and the duplicates, beyond that, bounded. Safe for concurrent use.
type Arrivals struct {
	mu   sync.Mutex
	seen map[int]int
}

// NewArrivals is an empty count.
func NewArrivals() *Arrivals { return &Arrivals{seen: map[int]int{}} }

// add counts one arrival of message number i.
func (a *Arrivals) add(i int) {
	a.mu.Lock()
	a.seen[i]++
	a.mu.Unlock()
}

// AddPayload counts the arrival of a Ditto Protocol message whose value is
// its number; one without a number fails the test (not at once) and is not
// counted. Safe off the test goroutine.
func (a *Arrivals) AddPayload(t *testing.T, payload []byte) {
	var m struct {
		Value *float64 `json:"value"`
	}
	if err := json.Unmarshal(payload, &m); err != nil || m.Value == nil {
		t.Errorf("published message without a number: %s", payload)
		return
	}
	a.add(int(*m.Value))
}

// CountFrom counts every message s receives until the test ends.
func (a *Arrivals) CountFrom(t *testing.T, s *Subscriber) {
	stop := make(chan struct{})
	var drained sync.WaitGroup
	drained.Add(1)
	go func() {
		defer drained.Done()
		for {
			select {
			case m := <-s.Msgs:
				a.AddPayload(t, m.Payload())
			case <-stop:
				return
			}
		}
	}()
	// registered after Subscribe's: runs before the subscriber disconnects
	t.Cleanup(func() { close(stop); drained.Wait() })
}

// counts is the distinct and total arrivals of the numbers 0…n-1 and those
// of them not seen.
func (a *Arrivals) counts(n int) (distinct, total int, missing []int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := 0; i < n; i++ {
		c := a.seen[i]
		if c > 0 {
			distinct++
		} else {
			missing = append(missing, i)
		}
		total += c
	}
	return distinct, total, missing
}

// WaitAll waits until each of the messages 0…n-1 arrived at least once and
// returns the total arrivals of them.
func (a *Arrivals) WaitAll(t *testing.T, n int, within time.Duration) (total int) {
	t.Helper()
	poll.Check(t, within, func() error {
		d, _, missing := a.counts(n)
		if d == n {
			return nil
		}
		return fmt.Errorf("%d of %d messages arrived; missing %v", d, n, missing)
	})
	_, total, _ = a.counts(n)
	return total
}
