package bridge

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// control is the text control message Ditto's /ws/2 takes for a stream
// (its ProtocolMessageType identifiers); what the stream accepts besides the
// namespaces follows the WebSocket binding's tables: no RQL filter for
// messages, live commands and policy announcements, no extraFields for
// policy announcements.
type control struct {
	start               string
	filter, extraFields bool
}

var controls = map[string]control{
	model.TopicTwinEvents:          {start: "START-SEND-EVENTS", filter: true, extraFields: true},
	model.TopicLiveEvents:          {start: "START-SEND-LIVE-EVENTS", filter: true, extraFields: true},
	model.TopicLiveMessages:        {start: "START-SEND-MESSAGES", extraFields: true},
	model.TopicLiveCommands:        {start: "START-SEND-LIVE-COMMANDS", extraFields: true},
	model.TopicPolicyAnnouncements: {start: "START-SEND-POLICY-ANNOUNCEMENTS"},
}

// ackStreams maps "<START message>:ACK" to the stream it confirms.
var ackStreams = func() map[string]string {
	m := make(map[string]string, len(controls))
	for stream, c := range controls {
		m[c.start+":ACK"] = stream
	}
	return m
}()

// startMessage is the control message that subscribes sub, parameters
// URL-encoded and joined with '&' as Ditto's ProtocolMessageExtractor splits
// them (split on '&' and the first '=', then URL-decode; namespaces are the
// decoded value split on ','). Parameters a stream does not take are left
// out: the caller filters those streams locally.
func startMessage(sub Subscription) (string, error) {
	c, ok := controls[sub.Stream]
	if !ok {
		return "", fmt.Errorf("stream %q has no subscription over Ditto's WebSocket", sub.Stream)
	}
	var params []string
	if ns := strings.Join(sub.Namespaces, ","); ns != "" {
		params = append(params, "namespaces="+url.QueryEscape(ns))
	}
	if c.filter && sub.Filter != "" {
		params = append(params, "filter="+url.QueryEscape(sub.Filter))
	}
	if c.extraFields && sub.ExtraFields != "" {
		params = append(params, "extraFields="+url.QueryEscape(sub.ExtraFields))
	}
	if len(params) == 0 {
		return c.start, nil
	}
	return c.start + "?" + strings.Join(params, "&"), nil
}

// jwtMessage refreshes a session's token in place (Ditto closes the socket
// when the token it was opened with expires).
func jwtMessage(token string) string { return "JWT-TOKEN?jwtToken=" + url.QueryEscape(token) }

// frameKind is what one frame from the gateway is.
type frameKind int

const (
	frameMessage frameKind = iota // a Ditto Protocol message (JSON)
	frameAck                      // "<START-SEND-…>:ACK": the stream is subscribed
	frameOther                    // another control text (STOP-…:ACK): nothing to do
)

var errNotDittoProtocol = errors.New("neither Ditto Protocol JSON nor a control message")

// parseFrame tells the gateway's text frames apart: JSON objects are Ditto
// Protocol messages, everything else is plain text control (Ditto sends its
// ":ACK" confirmations as bare text, never as JSON).
func parseFrame(data []byte) (frameKind, string, *protocol.Message, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		m, err := protocol.Decode(trimmed)
		if err != nil {
			return frameMessage, "", nil, err
		}
		return frameMessage, "", m, nil
	}
	text := string(trimmed)
	if stream, ok := ackStreams[text]; ok {
		return frameAck, stream, nil, nil
	}
	if strings.HasPrefix(text, "STOP-SEND-") && strings.HasSuffix(text, ":ACK") {
		return frameOther, "", nil, nil
	}
	return frameOther, "", nil, errNotDittoProtocol
}

// Timeouts of a command, as Ditto's gateway bounds them (gateway.conf
// command.default-timeout via http.request-timeout = 60s, max-timeout = 1m).
const (
	DefaultTimeout = 60 * time.Second
	MaxTimeout     = 60 * time.Second
	// answerGrace is how long after the command's own timeout the bridge
	// still waits for Ditto: Ditto answers a timeout itself (408, or the
	// aggregated acknowledgements with the labels that timed out, which say
	// more), so the bridge's own 408 is only for a gateway that stays silent.
	answerGrace = time.Second
)

// parseDittoDuration reads Ditto's DittoDuration syntax: an integer (an
// optional sign, ASCII digits) with ms, s, m, h or d, seconds without a unit;
// negative values are invalid ("-0" is zero), and so is a count beyond what
// an int64 holds. A count above the timeout bound comes back as the bound
// plus one unit, so that no multiplication overflows. It runs on every
// command, hence a plain scan rather than a regular expression.
func parseDittoDuration(s string) (time.Duration, bool) {
	i, neg := 0, false
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		neg = s[i] == '-'
		i++
	}
	digits := i
	var n int64
	for ; i < len(s) && '0' <= s[i] && s[i] <= '9'; i++ {
		d := int64(s[i] - '0')
		if n > (math.MaxInt64-d)/10 {
			return 0, false // beyond an int64 (negative ones are refused anyway)
		}
		n = n*10 + d
	}
	if i == digits || (neg && n != 0) {
		return 0, false
	}
	var unit time.Duration
	switch s[i:] {
	case "", "s":
		unit = time.Second
	case "ms":
		unit = time.Millisecond
	case "m":
		unit = time.Minute
	case "h":
		unit = time.Hour
	case "d":
		unit = 24 * time.Hour
	default:
		return 0, false
	}
	if n > int64(MaxTimeout/unit)+1 {
		return MaxTimeout + unit, true // beyond the bound anyway; no overflow
	}
	return time.Duration(n) * unit, true
}

// commandTimeout is how long the bridge waits for the answer to m: its
// timeout header (Ditto's duration syntax), 60 s when absent or invalid
// (Ditto then answers the invalid header itself), never more than 60 s.
// zero reports an explicit timeout of 0.
func commandTimeout(h map[string]string) (d time.Duration, zero bool) {
	v, ok := h[ditto.HeaderTimeout]
	if !ok {
		return DefaultTimeout, false
	}
	d, ok = parseDittoDuration(strings.TrimSpace(v))
	switch {
	case !ok:
		return DefaultTimeout, false
	case d == 0:
		return 0, true
	case d > MaxTimeout:
		return MaxTimeout, false
	}
	return d, false
}

// expectsAnswer reports whether Ditto's WebSocket answers m (the WebSocket
// table of basic-acknowledgements.md): responses and acknowledgements are
// never answered; response-required=false is answered only when it requests
// acknowledgements (with an error); a zero timeout only when something was
// requested (with an error); an explicitly empty requested-acks without
// response-required defaults response-required to false. Events (live events
// sent by a device) request nothing by default.
func expectsAnswer(m *protocol.Message, t protocol.Topic) bool {
	if m.Status != 0 || t.Criterion == protocol.CriterionAcks || t.Criterion == protocol.CriterionErrors {
		return false
	}
	ra, raSet := m.Headers["requested-acks"]
	requested := raSet && strings.TrimSpace(ra) != "[]" && strings.TrimSpace(ra) != ""
	if t.Criterion == protocol.CriterionEvents {
		return requested
	}
	_, zero := commandTimeout(m.Headers)
	switch strings.TrimSpace(m.Headers[ditto.HeaderResponseRequired]) {
	case "false":
		return requested
	case "true":
		return true
	}
	if zero || raSet {
		return requested
	}
	return true
}

// errorAnswer is the Ditto Protocol error response to req: the errors topic of
// its entity and channel, its external headers (correlation-id included).
func errorAnswer(req *protocol.Message, e *ditto.Error) *protocol.Message {
	return protocol.ErrorResponseFor(req.Topic, protocol.ExternalHeaders(req.Headers), e)
}

// restoreCorrelationID puts the device's correlation id back into an answer
// that went out under a suffixed wire id: the header, and every JSON string
// equal to the wire id inside the value (the per-label headers of aggregated
// acknowledgements). The wire id carries a suffix no device id has, so an
// exact string match cannot hit anything else.
func restoreCorrelationID(m *protocol.Message, wire, orig string) *protocol.Message {
	out := withCorrelationID(m, orig)
	if len(m.Value) > 0 {
		qw := ojson.Ditto.AppendString(nil, wire)
		if bytes.Contains(m.Value, qw) {
			out.Value = bytes.ReplaceAll(m.Value, qw, ojson.Ditto.AppendString(nil, orig))
		}
	}
	return out
}

// withCorrelationID is a shallow copy of m carrying id as its correlation-id;
// m and its headers stay as they are (the caller, or a device, still holds them).
func withCorrelationID(m *protocol.Message, id string) *protocol.Message {
	out := *m
	out.Headers = make(map[string]string, len(m.Headers)+1)
	for k, v := range m.Headers {
		out.Headers[k] = v
	}
	out.Headers[ditto.HeaderCorrelationID] = id
	return &out
}
