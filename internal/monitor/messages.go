package monitor

import (
	"sort"
	"strings"
)

// Default messages of Ditto's ConnectionLoggerFactory (facts: the texts the
// API shows). {0} is the log type, {1} the failure reason.
const (
	defaultSuccessMessage   = "Message was {0}"
	defaultFailureMessage   = "Failure while message was {0}: {1}"
	defaultExceptionMessage = "Unexpected failure while message was {0}: {1}"
	emptyMappingMessage     = "Payload mapping returned null, message is dropped."
	fallbackReason          = "not specified"

	// ResetLogsMessage is the entry a client logs after resetConnectionLogs.
	ResetLogsMessage = "Successfully reset the logs."
	// DefaultCorrelationID stands for "no correlation id" in log entries.
	DefaultCorrelationID = "<not-provided>"
)

type loggerTexts struct {
	success, failure, exception string
	headersAndPayload           bool
}

// textsFor returns the default texts of a logger of category c and type t.
func textsFor(c LogCategory, t LogType) loggerTexts {
	x := loggerTexts{defaultSuccessMessage, defaultFailureMessage, defaultExceptionMessage, false}
	set := func(s, f, e string, hp bool) {
		if s != "" {
			x.success = s
		}
		if f != "" {
			x.failure = f
		}
		if e != "" {
			x.exception = e
		}
		x.headersAndPayload = hp
	}
	switch c {
	case CategorySource:
		switch t {
		case Consumed:
			set("Received signal.", "Ran into a failure when parsing an input command: {1}",
				"Ran into an unexpected failure when parsing an input command: {1}", true)
		case Mapped:
			set("Mapped incoming signal.", "Ran into a failure when mapping incoming signal: {1}",
				"Unexpected failure when mapping incoming signal: {1}", false)
		case Dropped:
			set(emptyMappingMessage, "", "", false)
		case Enforced:
			set("Successfully applied enforcement on incoming signal.",
				"Ran into a failure when enforcing incoming signal: {1}",
				"Unexpected failure when enforcing incoming signal: {1}", true)
		case Acknowledged:
			set("Successfully acknowledged incoming signal.",
				"Ran into a failure when acknowledging incoming signal: {1}",
				"Unexpected failure when acknowledging incoming signal: {1}", true)
		}
	case CategoryTarget:
		switch t {
		case Dispatched:
			set("Successfully dispatched signal.", "", "", true)
		case Filtered:
			set("Signal successfully passed possible filters.", "", "", false)
		case Mapped:
			set("Successfully mapped outgoing signal.", "Ran into a failure when mapping outgoing signal: {1}",
				"Unexpected failure when mapping outgoing signal: {1}", false)
		case Dropped:
			set(emptyMappingMessage, "", "", true)
		case Published:
			set("Successfully published signal.", "Ran into a failure when publishing signal: {1}",
				"Unexpected failure when publishing signal: {1}", true)
		case Acknowledged:
			set("Received successful acknowledgement for published signal.",
				"Ran into a failure for expected acknowledgement of published signal: {1}",
				"Unexpected failure for expected acknowledgement of published signal: {1}", true)
		}
	case CategoryResponse:
		switch t {
		case Dispatched:
			const notOK = "Response was not successful. This may be the case for when a thing could not be found " +
				"or the 'authorization subject' of the consuming source was not allowed to write a thing."
			set("Received response.", notOK, notOK, true)
		case Filtered:
			// Ditto formats this text with one argument only, so {1} stays as is.
			set("Dropped response since requester did not require response via Header {1}", "", "", false)
		case Mapped:
			set("Successfully mapped outbound response.", "Ran into a failure when mapping outgoing signal: {1}",
				"Unexpected failure when mapping outgoing signal: {1}", false)
		case Dropped:
			set(emptyMappingMessage, "Response dropped, missing replyTo address.", "", true)
		case Published:
			set("Successfully published response.", "Ran into a failure when publishing response: {1}",
				"Unexpected failure when publishing response: {1}", true)
		case Acknowledged:
			set("Received successful acknowledgement for published response.",
				"Ran into a failure for expected acknowledgement of published response: {1}",
				"Unexpected failure for expected acknowledgement of published response: {1}", true)
		}
	}
	return x
}

// format fills {0}, {1} like java.text.MessageFormat, which Ditto applies
// to every default text: a single quote starts or ends a literal part (so it
// disappears), ” is one quote, a placeholder without an argument stays
// literal.
func format(msg string, args ...string) string {
	if !strings.ContainsAny(msg, "{'") {
		return msg
	}
	var b strings.Builder
	quoted := false
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		switch {
		case c == '\'' && i+1 < len(msg) && msg[i+1] == '\'':
			b.WriteByte('\'')
			i++
		case c == '\'':
			quoted = !quoted
		case c == '{' && !quoted && i+2 < len(msg) && msg[i+2] == '}' && msg[i+1] >= '0' && msg[i+1] <= '9':
			if n := int(msg[i+1] - '0'); n < len(args) {
				b.WriteString(args[n])
			} else {
				b.WriteString(msg[i : i+3])
			}
			i += 2
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// String is the suffix Ditto appends to messages of loggers that log headers
// and payload: header values and payload unless the message's
// connectivity-debug-log header asks for less (HEADER: no payload, PAYLOAD:
// only header keys, anything else: keys only).
func (d *details) String() string {
	mode := "ALL"
	n := len(d.kv) / 2
	keys := make([]int, n) // indexes into kv
	for i := range keys {
		keys[i] = 2 * i
		if d.kv[2*i] == "connectivity-debug-log" {
			mode = d.kv[2*i+1]
		}
	}
	// Java's HashMap order is arbitrary; sorted is stable for tests and readers
	sort.Slice(keys, func(a, b int) bool { return d.kv[keys[a]] < d.kv[keys[b]] })
	var b strings.Builder
	if mode == "HEADER" || mode == "ALL" {
		b.WriteString(" - Message headers: [")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.kv[k])
			b.WriteByte('=')
			b.WriteString(d.kv[k+1])
		}
	} else {
		b.WriteString(" - Message header keys: [")
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(d.kv[k])
		}
	}
	b.WriteByte(']')
	if mode == "PAYLOAD" || mode == "ALL" {
		b.WriteString(" - Message payload: ")
		if d.payload == "" {
			b.Write(d.payloadBytes)
		} else {
			b.WriteString(d.payload)
		}
	}
	return b.String()
}
