// Package protocol is the Ditto Protocol envelope that crosses dittoconn's
// data plane: what an inbound payload mapping produces, what the signal bus
// routes by topic, and what an outbound payload mapping consumes.
package protocol

import "encoding/json"

// Message is one Ditto Protocol message (an "adaptable"). Field names and
// JSON are the Ditto Protocol's: topic, headers, path, value, status, extra,
// fields, revision, timestamp, metadata.
type Message struct {
	Topic     string            `json:"topic"`
	Headers   map[string]string `json:"headers,omitempty"`
	Path      string            `json:"path"`
	Value     json.RawMessage   `json:"value,omitempty"`
	Status    int               `json:"status,omitempty"`
	Extra     json.RawMessage   `json:"extra,omitempty"`
	Fields    string            `json:"fields,omitempty"`
	Revision  int64             `json:"revision,omitempty"`
	Timestamp string            `json:"timestamp,omitempty"`
	Metadata  json.RawMessage   `json:"metadata,omitempty"`
}

// External is a message as a broker carries it: headers (Ditto names, e.g.
// "content-type", "mqtt.topic", "correlation-id"), a text or bytes payload,
// and the source or target address it belongs to.
type External struct {
	Address string
	Headers map[string]string
	Text    string // payload when it is text (content type text/* or JSON)
	Bytes   []byte // payload when it is binary
	IsText  bool
	// AuthSubject is the first subject of the consuming source's resolved
	// authorization context (request:subjectId); "" = none. It never comes
	// from a message header, which a sender could forge.
	AuthSubject string
}
