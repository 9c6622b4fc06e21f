package client

import "time"

// Status details the clients share, worded like Ditto's.
const (
	DetailsDisconnected    = "[DISCONNECTED] connection is closed"
	DetailsConsumerStopped = "Consumer stopped."
	DetailsProducerStopped = "Producer stopped."
)

// resource is the live state behind one status entry of a client; the
// Lifecycle guards it with its mutex.
type resource struct {
	Type, Address string
	Status        Status
	Details       string
	Since         time.Time
	// onDemand: a target whose address holds placeholders, which has no
	// producer of its own until a message resolves the address; open, it
	// reads unknown, as in Ditto.
	onDemand bool
}

// Set moves r to status; Since changes only when the status does, so it
// reads as "in this state since".
func (r *resource) Set(status Status, details string, now time.Time) {
	if r.Status != status || r.Since.IsZero() {
		r.Since = now
	}
	r.Status, r.Details = status, details
}

// Entry is r as a status entry. Recovery is the grain's business (it knows
// more once it retries), so a client only says whether it is open.
func (r *resource) Entry() ResourceStatus {
	e := ResourceStatus{Type: r.Type, Address: r.Address, Status: r.Status, Details: r.Details, Since: r.Since}
	if r.Type == "client" {
		e.RecoveryStatus = RecoveryUnknown
		if r.Status == StatusOpen {
			e.RecoveryStatus = RecoverySucceeded
		}
	}
	return e
}
