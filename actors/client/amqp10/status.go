package amqp10

import (
	"time"

	"github.com/dittoconn/dittoconn/actors/client"
)

// Status details, worded like Ditto's.
const (
	detailConnected       = client.DetailsConnected
	detailDisconnected    = "[DISCONNECTED] connection is closed"
	detailNotConnected    = "not connected"
	detailConsumerStarted = client.DetailsConsumerStarted
	detailConsumerStopped = "Consumer stopped."
	detailProducerStarted = client.DetailsProducerStarted
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
	e := client.ResourceStatus{
		Type:    r.typ,
		Address: r.address,
		Status:  r.status,
		Details: r.details,
		Since:   r.since,
	}
	if r.typ == "client" {
		// Recovery is the grain's business; it knows more once it retries.
		e.RecoveryStatus = "unknown"
		if r.status == client.StatusOpen {
			e.RecoveryStatus = "succeeded"
		}
	}
	return e
}
