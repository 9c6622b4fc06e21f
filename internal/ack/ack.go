// Package ack is Ditto's acknowledgement vocabulary, without I/O: labels and
// the requested-acks header, single acknowledgements and their Ditto
// Protocol form, the aggregation of the acknowledgements one signal
// requested into Ditto's answer (a plain response, or one aggregated
// ".../acks" message with Ditto's combined status), and the settlement of a
// consumed broker message on that answer (Ditto's BaseConsumerActor).
//
// Everything here is a value or a function of values; the data plane owns
// the state (pending aggregations, timers) and its locking. An Aggregation
// is not safe for concurrent use: its owner serialises the calls.
package ack

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Ditto's built-in labels (DittoAcknowledgementLabel).
const (
	TwinPersisted   = "twin-persisted"
	LiveResponse    = "live-response"
	SearchPersisted = "search-persisted"
)

// Headers Ditto uses for acknowledgements.
const (
	HeaderRequestedAcks    = "requested-acks"
	HeaderWeakAck          = "ditto-weak-ack"
	HeaderTimeout          = "timeout"
	HeaderResponseRequired = "response-required"
	HeaderCorrelationID    = "correlation-id"
)

const (
	// DefaultTimeout is Ditto's command timeout when a signal has none.
	DefaultTimeout = ditto.DefaultAskTimeout
	// MaxTimeout is the largest timeout Ditto accepts (60 s).
	MaxTimeout = 60 * time.Second
)

// Error codes of Ditto's acknowledgement exceptions.
const (
	CodeRequestTimeout   = "acknowledgement:request.timeout"
	CodeLabelNotDeclared = "acknowledgement:label.not.declared"
)

// labelPattern is Ditto's AcknowledgementLabels.ACK_LABEL_REGEX (a label may
// start with an unresolved {{connection:id}}-style placeholder).
var labelPattern = regexp.MustCompile(`^(\{\{\s*[a-z]+:[a-z]+\s*}}:)?[a-zA-Z0-9\-_:]{3,165}$`)

// ValidLabel reports whether l is a label Ditto accepts.
func ValidLabel(l string) bool { return labelPattern.MatchString(l) }

// ParseRequested reads a requested-acks header: Ditto's JSON array of labels
// or, as the HTTP API accepts it, a comma-separated list. Invalid labels
// and duplicates are left out (Ditto fails the signal; a header a device
// wrongly set must not make its message undeliverable for ever).
func ParseRequested(v string) []string {
	v = strings.TrimSpace(v)
	var raw []string
	if strings.HasPrefix(v, "[") {
		if json.Unmarshal([]byte(v), &raw) != nil {
			return nil
		}
	} else if v != "" {
		raw = strings.Split(v, ",")
	}
	out := make([]string, 0, len(raw))
	for _, l := range raw {
		l = strings.TrimSpace(l)
		if ValidLabel(l) && !contains(out, l) {
			out = append(out, l)
		}
	}
	return out
}

// FormatRequested is the header value of labels (a JSON array, as Ditto
// writes it).
func FormatRequested(labels []string) string {
	b := make([]byte, 0, 2+len(labels)*24)
	b = append(b, '[')
	for i, l := range labels {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendQuote(b, l) // labels are [a-zA-Z0-9-_:{} ]: no escaping differences
	}
	return string(append(b, ']'))
}

// ParseTimeout reads Ditto's timeout header ("10s", "250ms", "1m", or a
// bare number of seconds). Absent or unreadable: DefaultTimeout; above
// MaxTimeout: MaxTimeout.
func ParseTimeout(v string) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return DefaultTimeout
	}
	unit, num := time.Second, v
	switch {
	case strings.HasSuffix(v, "ms"):
		unit, num = time.Millisecond, v[:len(v)-2]
	case strings.HasSuffix(v, "s"):
		num = v[:len(v)-1]
	case strings.HasSuffix(v, "m"):
		unit, num = time.Minute, v[:len(v)-1]
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 {
		return DefaultTimeout
	}
	if n > int64(MaxTimeout/unit) {
		return MaxTimeout
	}
	return time.Duration(n) * unit
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Ack is one acknowledgement: its label, status, Ditto headers and optional
// payload (Ditto's Acknowledgement).
type Ack struct {
	Label   string
	Status  int
	Headers map[string]string
	Payload json.RawMessage
}

// Success reports whether the status is 2xx.
func (a *Ack) Success() bool { return a.Status >= 200 && a.Status < 300 }

// Weak reports whether a carries ditto-weak-ack: true.
func (a *Ack) Weak() bool { return a.Headers[HeaderWeakAck] == "true" }

// NewWeak is the weak acknowledgement (200, ditto-weak-ack: true) of a
// subscriber whose filter dropped the signal.
func NewWeak(label, correlationID string) Ack {
	return Ack{Label: label, Status: 200, Headers: map[string]string{HeaderCorrelationID: correlationID, HeaderWeakAck: "true"}}
}

// NewTimeout is the 408 entry of a label nobody answered in time
// (AcknowledgementRequestTimeoutException as the payload).
func NewTimeout(label, correlationID string, timeout time.Duration) Ack {
	return NewError(label, correlationID, RequestTimeout(timeout))
}

// NewError is a failed acknowledgement carrying e as its payload.
func NewError(label, correlationID string, e *ditto.Error) Ack {
	return Ack{Label: label, Status: e.Status, Headers: map[string]string{HeaderCorrelationID: correlationID},
		Payload: json.RawMessage(e.JSON())}
}

// RequestTimeout is Ditto's AcknowledgementRequestTimeoutException.
func RequestTimeout(timeout time.Duration) *ditto.Error {
	return ditto.New(408, CodeRequestTimeout,
		"The acknowledgement request reached the specified timeout of "+ditto.GroupThousands(timeout.Milliseconds())+"ms.",
		"Try increasing the timeout and make sure that the requested acknowledgement is sent back in time.")
}

// LabelNotDeclared is Ditto's AcknowledgementLabelNotDeclaredException.
func LabelNotDeclared(label string) *ditto.Error {
	return ditto.New(400, CodeLabelNotDeclared,
		"Cannot send acknowledgement with label <"+label+">, which is not declared.",
		"Each connection may only send acknowledgements whose label matches one declared for the connection.")
}

// Topic is the topic of the single acknowledgement label for the entity and
// channel of t: <ns>/<name>/things/<channel>/acks/<label>.
func Topic(t protocol.Topic, label string) string {
	return aggregatedTopic(t) + "/" + label
}

func aggregatedTopic(t protocol.Topic) string {
	ch := t.Channel
	if ch != protocol.ChannelLive {
		ch = protocol.ChannelTwin
	}
	return t.Namespace + "/" + t.EntityName + "/" + protocol.GroupThings + "/" + ch + "/" + protocol.CriterionAcks
}

// Message is a's Ditto Protocol form (protocol-ack.json) for the entity and
// channel of t.
func (a *Ack) Message(t protocol.Topic) *protocol.Message {
	return &protocol.Message{Topic: Topic(t, a.Label), Headers: a.Headers, Path: "/", Value: a.Payload, Status: a.Status}
}

// IsAck reports whether t is a single acknowledgement's topic.
func IsAck(t *protocol.Topic) bool {
	return t.Group == protocol.GroupThings && t.Criterion == protocol.CriterionAcks && t.Action != ""
}

// FromMessage reads a single acknowledgement (topic .../acks/<label>); ok is
// false for anything else or an acknowledgement without a status.
func FromMessage(m *protocol.Message, t *protocol.Topic) (Ack, bool) {
	if !IsAck(t) || m.Status == 0 {
		return Ack{}, false
	}
	return Ack{Label: t.Action, Status: m.Status, Headers: m.Headers, Payload: m.Value}, true
}

// FromResponse is the live-response acknowledgement a live response
// fulfils; it keeps the response for the plain answer.
func FromResponse(m *protocol.Message) Ack {
	return Ack{Label: LiveResponse, Status: m.Status, Headers: m.Headers, Payload: m.Value}
}

// Status is Ditto's combined status of acks: one keeps its own, several are
// 200 when all succeeded and 424 (failed dependency) otherwise.
func Status(acks []Ack) int {
	if len(acks) == 1 {
		return acks[0].Status
	}
	for i := range acks {
		if !acks[i].Success() {
			return 424
		}
	}
	return 200
}

// Aggregated is Ditto's aggregated acknowledgements message
// (protocol-acks.json) for the entity and channel of t: value maps each
// label to {status, payload, headers}; status is the combined one.
func Aggregated(t protocol.Topic, headers map[string]string, acks []Ack) *protocol.Message {
	b := make([]byte, 0, 64*len(acks)+2)
	b = append(b, '{')
	for i := range acks {
		a := &acks[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, a.Label)
		b = append(b, `:{"status":`...)
		b = strconv.AppendInt(b, int64(a.Status), 10)
		if len(a.Payload) > 0 {
			b = append(b, `,"payload":`...)
			b = append(b, a.Payload...)
		}
		if len(a.Headers) > 0 {
			b = append(b, `,"headers":`...)
			b = appendHeaders(b, a.Headers)
		}
		b = append(b, '}')
	}
	b = append(b, '}')
	return &protocol.Message{Topic: aggregatedTopic(t), Headers: headers, Path: "/", Value: b, Status: Status(acks)}
}

// appendString escapes as Ditto's JSON library does (<, > and & as they are).
func appendString(b []byte, s string) []byte { return ojson.Ditto.AppendString(b, s) }

// appendHeaders writes Ditto headers as DittoHeaders.toJson does: booleans
// and numbers of Ditto's typed headers as JSON values, the rest as strings.
func appendHeaders(b []byte, h map[string]string) []byte {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sortStrings(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		v := h[k]
		switch k {
		case HeaderWeakAck, HeaderResponseRequired, "ditto-dry-run":
			if v == "true" || v == "false" {
				b = append(b, v...)
				continue
			}
		case "version":
			if _, err := strconv.Atoi(v); err == nil {
				b = append(b, v...)
				continue
			}
		case HeaderRequestedAcks:
			if json.Valid([]byte(v)) && strings.HasPrefix(v, "[") {
				b = append(b, v...)
				continue
			}
		}
		b = appendString(b, v)
	}
	return append(b, '}')
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// Outcome is how a consumed message is settled on the status of one answer,
// as Ditto's BaseConsumerActor settles it: 2xx and 412 (a failed condition
// is an answer) → Accept; 408, 424 and 5xx → Redeliver (retrying may
// succeed); any other 4xx → Reject.
func Outcome(status int) client.Outcome {
	switch {
	case status >= 200 && status < 300, status == 412, status < 400:
		return client.Accept
	case status == 408, status == 424, status >= 500:
		return client.Redeliver
	}
	return client.Reject
}

// Settle is the outcome of a set of acknowledgements, judged entry by entry
// as Ditto's BaseConsumerActor does (not by the combined 424): all
// successful → Accept; else Redeliver when a failed one asks for it,
// otherwise Reject. No acks (nothing arrived) → Redeliver.
func Settle(acks []Ack) client.Outcome {
	if len(acks) == 0 {
		return client.Redeliver
	}
	out := client.Accept
	for i := range acks {
		out = Worse(out, Outcome(acks[i].Status))
	}
	return out
}

// Worse combines the outcomes of the signals mapped from one message:
// Redeliver over Reject over Accept.
func Worse(a, b client.Outcome) client.Outcome {
	rank := func(o client.Outcome) int {
		switch o {
		case client.Redeliver:
			return 2
		case client.Reject:
			return 1
		}
		return 0
	}
	if rank(b) > rank(a) {
		return b
	}
	return a
}

// CodeSendingFailed is Ditto's MessageSendingFailedException.
const CodeSendingFailed = "connectivity:message.sending.failed"

// NewSendingFailed is the acknowledgement a target issues when its broker
// did not confirm the publish: 503 with Ditto's MessageSendingFailedException
// as the payload, without its status, as Ditto's exception converter writes
// it.
func NewSendingFailed(label, correlationID string, cause error) Ack {
	e := ditto.New(503, CodeSendingFailed, "Failed to send message: "+cause.Error(),
		"Sending the message to an external system failed, please check if your connection is configured "+
			"properly and the target system is available and consuming messages.")
	noStatus := *e
	noStatus.Status = 0
	return Ack{Label: label, Status: e.Status, Headers: map[string]string{HeaderCorrelationID: correlationID},
		Payload: errorWithoutStatus(&noStatus)}
}

func errorWithoutStatus(e *ditto.Error) json.RawMessage {
	b := []byte(`{"error":`)
	b = appendString(b, e.Code)
	b = append(b, `,"message":`...)
	b = appendString(b, e.Message)
	if e.Description != "" {
		b = append(b, `,"description":`...)
		b = appendString(b, e.Description)
	}
	return append(b, '}')
}

// NewIssued is the successful acknowledgement of a target whose broker
// confirmed the publish.
func NewIssued(label, correlationID string) Ack {
	return Ack{Label: label, Status: 200, Headers: map[string]string{HeaderCorrelationID: correlationID}}
}
