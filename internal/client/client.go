// Package client is the contract between a connection and its broker
// clients: one Client per client actor, built by the Factory registered for
// the connection type. Protocol packages (internal/client/mqtt, amqp091, …)
// import this package and their broker library only.
//
// The contract:
//   - The connection grain owns reconnection: it builds a fresh Client
//     (Factory) for every connect attempt, calls Connect once, and waits
//     between failed attempts with exponential backoff. A Client reports
//     ConnectionLost when its connection dropped and it will NOT recover by
//     itself; the grain then calls Close and reconnects with a new Client. A
//     Client whose library recovers by itself may instead report
//     Reconnecting and later Connected.
//   - Connect returns an error wrapping ErrUnauthorized, ErrUnreachable or
//     ErrTimeout (or another error: 504 connection.failed with its text).
//     Error texts must never contain passwords or tokens.
//   - Status and Publish may be called from any goroutine, concurrently with
//     each other and with Events; Status must not block on I/O. Publish
//     returns once the broker confirmed the message (MQTT PUBACK for QoS 1
//     and 2, AMQP 0.9.1 publisher confirm, AMQP 1.0 accepted disposition,
//     Kafka produce acknowledgement), its error saying what the broker
//     answered otherwise.
//   - Every consumed message handed to Env.Inbound carries a Settle, which
//     the client performs asynchronously: a Settler per consumer queues the
//     settlements on a goroutine of its own and bounds the consumer's
//     unsettled messages (MaxUnsettled, Ditto's throttling limit ×
//     max-in-flight-factor); at the bound the consumer stops consuming, so
//     memory stays bounded whatever the targets do. Concurrency costs one
//     goroutine per consumer and a channel send per message. The protocol
//     packages document what each Outcome does on their broker.
//
// Lifecycle implements all of this once; a protocol supplies a Protocol
// (open a session) and its Session (start consuming, publish, close). The
// suite in internal/client/clienttest holds every protocol to the contract
// against its real broker.
package client

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/model"
)

// Errors a Client returns, wrapped with their cause; the grain maps them to
// Ditto's answers (504 connectivity:connection.failed, 401
// connectivity:connection.unauthorized).
var (
	// ErrUnauthorized: the broker rejected the credentials.
	ErrUnauthorized = errors.New("client: unauthorized")
	// ErrUnreachable: no connection to the endpoint could be established.
	ErrUnreachable = errors.New("client: endpoint unreachable")
	// ErrTimeout: connecting did not finish in time.
	ErrTimeout = errors.New("client: timed out")
)

// Status is a status as Ditto names it: the live status of a client, source
// or target (any of the five), and the desired status of a connection (open
// or closed). The clients report it; the connection grain aggregates it.
type Status string

const (
	StatusOpen          Status = "open"
	StatusClosed        Status = "closed"
	StatusFailed        Status = "failed"
	StatusMisconfigured Status = "misconfigured"
	StatusUnknown       Status = "unknown"
)

// Recovery is a client's recovery status in retrieveConnectionStatus.
type Recovery string

const (
	RecoveryOngoing             Recovery = "ongoing"
	RecoverySucceeded           Recovery = "succeeded"
	RecoveryBackOffLimitReached Recovery = "backOffLimitReached"
	RecoveryUnknown             Recovery = "unknown"
)

// ResourceStatus is one entry of retrieveConnectionStatus (client, source,
// target or ssh).
type ResourceStatus struct {
	Type           string // "client", "source", "target", "ssh"
	Address        string // sources and targets
	Status         Status
	RecoveryStatus Recovery // clients only
	Details        string
	Since          time.Time
}

// Message is one message crossing the client boundary (data plane).
type Message struct {
	Address string            // source address it came from, or target address to publish to
	Headers map[string]string // protocol headers, Ditto names (e.g. "mqtt.topic", "content-type")
	Payload []byte
	QoS     *int
	// Expired marks a consumed message whose time to live has passed (Kafka's
	// ttl + creation-time headers): the data plane counts it as consumed and
	// drops it, as Ditto does, so the consumer can still settle it.
	Expired bool
	// Settle, set by a consuming client on every message it hands to
	// Inbound, tells the broker the message's fate. The data plane calls it
	// exactly once per message, from any goroutine, possibly long after
	// Inbound returned (when the acknowledgements it waits for arrive). It
	// must not block on I/O: a client queues the settlement. A client never
	// settles a message itself when it set Settle; nil means nothing to
	// settle (published messages, or a protocol without settlement).
	Settle func(Outcome)
}

// Done settles m with o when m carries a Settle function.
func (m *Message) Done(o Outcome) {
	if m.Settle != nil {
		m.Settle(o)
	}
}

// Outcome is how a consumed message is settled with its broker, as Ditto's
// consumers settle it on the aggregated acknowledgements.
type Outcome int

const (
	// Accept: processed; never delivered again (MQTT PUBACK, AMQP 0.9.1
	// ack, AMQP 1.0 accepted, Kafka offset committed).
	Accept Outcome = iota
	// Redeliver: not processed (408, 424, 5xx, no answer); the broker is to
	// deliver it again (MQTT: PUBACK withheld, redelivered on reconnect;
	// AMQP 0.9.1 nack with requeue; AMQP 1.0 released;
	// Kafka: no commit, the consumer seeks back).
	Redeliver
	// Reject: refused for good (mapping or enforcement failed, another
	// 4xx); not delivered again (MQTT PUBACK, AMQP 0.9.1 nack without
	// requeue, AMQP 1.0 rejected, Kafka offset committed).
	Reject
)

func (o Outcome) String() string {
	switch o {
	case Accept:
		return "accept"
	case Redeliver:
		return "redeliver"
	case Reject:
		return "reject"
	}
	return "outcome(" + strconv.Itoa(int(o)) + ")"
}

// Env is what a client gets from its connection.
type Env struct {
	Connection  *model.Connection
	ClientIndex int    // 0 … clientCount-1
	Instance    string // node instance id
	Logger      zerolog.Logger
	// TLS is the TLS configuration built from ca, validateCertificates and
	// client-cert credentials; nil for insecure schemes.
	TLS *tls.Config
	// Events receives connection-level happenings (connected, lost, retry…);
	// it must not block.
	Events func(Event)
	// Inbound receives consumed messages (data plane); nil drops them.
	Inbound func(Message)
	// Hosts are the service's blocked-host rules, which a client applies to
	// every dial (DialControl); nil: nothing is blocked.
	Hosts HostPolicy
}

// EventKind says what happened to a client.
type EventKind int

const (
	Connected EventKind = iota
	Disconnected
	ConnectionLost
	Reconnecting
)

// Event is a client happening, for status, logs and announcements.
type Event struct {
	Kind EventKind
	Err  error
	At   time.Time
}

// Client is one live broker connection with the consumers of the
// connection's sources and the publishers of its targets.
type Client interface {
	// Connect connects and starts consumers and publishers; it returns when
	// connected or when ctx ends.
	Connect(ctx context.Context) error
	// Publish sends msg to the target address msg.Address.
	Publish(ctx context.Context, msg Message) error
	// Status reports the client entry and its source and target entries.
	Status() []ResourceStatus
	// Close disconnects and stops everything; it returns by ctx's deadline.
	Close(ctx context.Context) error
}

// Factory builds a Client for one connection type. It must not do network
// I/O; Connect does.
type Factory func(env Env) (Client, error)

// Registry maps a connection type (model.TypeMQTT, …) to its Factory.
type Registry map[string]Factory

// AsyncPublisher is an optional extra of a Client: PublishAsync hands msg
// to the client and returns without waiting for the broker, so that a
// publisher can keep many messages in flight (Publish waits for each one's
// acknowledgement). Messages handed over one after the other are sent in
// that order. It may be called from any goroutine, like Publish.
type AsyncPublisher interface {
	PublishAsync(msg Message) Pending
}

// Pending is a publish under way.
type Pending interface {
	// Done is closed once the outcome is known.
	Done() <-chan struct{}
	// Err is the outcome after Done: what Publish would have returned.
	Err() error
}

// ResultPublisher is an optional extra of a Client whose broker reports
// details of a publish that Ditto puts into the target's issued
// acknowledgement (Kafka with debugEnabled: the record metadata).
// PublishResult publishes as Publish does; on success its Result is the
// issued acknowledgement's status and payload. The data plane calls it only
// for signals that requested the target's issued label.
type ResultPublisher interface {
	PublishResult(ctx context.Context, msg Message) (Result, error)
}

// Result is what a ResultPublisher's broker reported about a publish.
type Result struct {
	Status  int             // of the issued acknowledgement; 0: the data plane's default
	Payload json.RawMessage // its payload; nil: none
}

// Tester is an optional extra of a Client: testConnection calls Test instead
// of Connect followed by Close. Test must leave nothing running.
type Tester interface {
	Test(ctx context.Context) error
}
