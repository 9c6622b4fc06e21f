package mqttcommon

import (
	"sync"
	"time"
)

// Links are the consuming and the publishing broker connection of an MQTT
// session (one and the same unless separatePublisherClient), and the
// reconnect for redelivery that replaces the consuming one. C is the
// protocol's connection type. Safe for concurrent use; a mutex guards the
// two connections, and no I/O happens under it.
type Links[C comparable] struct {
	mu        sync.Mutex
	sub, pub  C
	scheduled bool // a reconnect for redelivery is scheduled or under way
	closed    bool
}

// Set sets both connections (on open, before anyone else uses them).
func (l *Links[C]) Set(sub, pub C) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sub, l.pub = sub, pub
}

// Sub is the consuming connection.
func (l *Links[C]) Sub() C {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.sub
}

// Pub is the publishing connection.
func (l *Links[C]) Pub() C {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.pub
}

// Close ends reconnecting for good and returns both connections to close.
func (l *Links[C]) Close() (sub, pub C) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	return l.sub, l.pub
}

// Redeliver schedules, after delay, replace(consuming connection): it
// disconnects that connection and returns its connected successor with
// the same client id, so that the broker redelivers from the session what
// was not acknowledged. The successor takes the old one's place (as the
// publisher too when it was that). At most one reconnect is scheduled at a
// time, none after Close; a successor arriving after Close is handed to
// discard, and a failed replace to lost (the grain reconnects then).
func (l *Links[C]) Redeliver(delay time.Duration, replace func(old C) (C, error), discard func(C), lost func(error)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.scheduled || l.closed {
		return
	}
	l.scheduled = true
	time.AfterFunc(delay, func() {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		old := l.sub
		l.mu.Unlock()
		next, err := replace(old)
		l.mu.Lock()
		closed := l.closed
		if err == nil && !closed {
			if l.pub == old {
				l.pub = next
			}
			l.sub = next
			l.scheduled = false
		}
		l.mu.Unlock()
		switch {
		case err != nil && !closed:
			lost(err)
		case err == nil && closed:
			discard(next)
		}
	})
}
