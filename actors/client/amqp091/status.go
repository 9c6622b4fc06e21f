package amqp091

import (
	"time"

	"github.com/dittoconn/dittoconn/actors/client"
)

// Status details, worded like Ditto's.
const (
	detailConnected       = "CONNECTED"
	detailDisconnected    = "[DISCONNECTED] connection is closed"
	detailNotConnected    = "not connected"
	detailConsumerStarted = "Consumer started."
	detailConsumerStopped = "Consumer stopped."
	detailProducerStarted = "Producer started."
	detailProducerStopped = "Producer stopped."
)

// resource is the live state behind one status entry; guarded by the
// client's mutex.
type resource struct {
	typ, address    string
	status, details string
	since           time.Time
}

// set moves r to status; since changes only when the status does, so it
// reads as "in this state since".
func (r *resource) set(status, details string, now time.Time) {
	if r.status != status || r.since.IsZero() {
		r.since = now
	}
	r.status, r.details = status, details
}

func (r *resource) entry() client.ResourceStatus {
	return client.ResourceStatus{
		Type:    r.typ,
		Address: r.address,
		Status:  r.status,
		Details: r.details,
		Since:   r.since,
	}
}
