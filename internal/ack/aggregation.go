package ack

import (
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Aggregation collects the acknowledgements one signal requested, as
// Ditto's AcknowledgementAggregator does: the first acknowledgement of each
// requested label counts, others and unrequested labels are ignored.
type Aggregation struct {
	requested []string
	got       []Ack // parallel to requested; Status 0 = not yet
	missing   int
	// response is the live response that fulfilled live-response.
	response *protocol.Message
}

// NewAggregation waits for labels (distinct, non-empty).
func NewAggregation(labels []string) *Aggregation {
	return &Aggregation{requested: labels, got: make([]Ack, len(labels)), missing: len(labels)}
}

// Requested are the labels waited for.
func (a *Aggregation) Requested() []string { return a.requested }

// Add records x; it reports whether x was a requested label not answered
// before.
func (a *Aggregation) Add(x Ack) bool {
	for i, l := range a.requested {
		if l == x.Label {
			if a.got[i].Status != 0 || x.Status == 0 {
				return false
			}
			a.got[i] = x
			a.missing--
			return true
		}
	}
	return false
}

// AddResponse records a live response as the live-response acknowledgement.
func (a *Aggregation) AddResponse(m *protocol.Message) bool {
	if a.Add(FromResponse(m)) {
		a.response = m
		return true
	}
	return false
}

// Done reports whether every requested label was answered.
func (a *Aggregation) Done() bool { return a.missing == 0 }

// Acks are the answers in requested order, a 408 timeout entry for each
// label nobody answered.
func (a *Aggregation) Acks(correlationID string, timeout time.Duration) []Ack {
	out := make([]Ack, len(a.requested))
	for i, l := range a.requested {
		if a.got[i].Status != 0 {
			out[i] = a.got[i]
		} else {
			out[i] = NewTimeout(l, correlationID, timeout)
		}
	}
	return out
}

// Answer is Ditto's answer to the requester once done or timed out, for
// the signal of topic t with headers (correlation-id…), and how the
// consumed message is settled on it: the live response itself when
// live-response was the only label and a response came, otherwise the
// aggregated acknowledgements.
func (a *Aggregation) Answer(t protocol.Topic, headers map[string]string, timeout time.Duration) (*protocol.Message, client.Outcome) {
	if len(a.requested) == 1 && a.response != nil {
		return a.response, Outcome(a.response.Status)
	}
	acks := a.Acks(headers[HeaderCorrelationID], timeout)
	return Aggregated(t, headers, acks), Settle(acks)
}

// Outcome is how the consumed message is settled, the same as Answer's,
// without building the answer (nobody wants it when response-required is
// false).
func (a *Aggregation) Outcome() client.Outcome {
	if len(a.requested) == 1 && a.response != nil {
		return Outcome(a.response.Status)
	}
	if a.missing > 0 {
		return client.Redeliver
	}
	return Settle(a.got)
}
