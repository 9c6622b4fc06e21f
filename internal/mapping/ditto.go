package mapping

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Content types of the Ditto Protocol.
const (
	ContentTypeDitto = "application/vnd.eclipse.ditto+json"
	ContentTypeJSON  = "application/json"
)

// dittoMapper is the "Ditto" engine: the payload is Ditto Protocol JSON in
// both directions.
type dittoMapper struct{}

func newDittoMapper(string, Options, Config) (Mapper, error) { return dittoMapper{}, nil }

var _ Mapper = dittoMapper{}

// MapIncoming parses the payload as one Ditto Protocol message; the
// message's own headers are kept, the broker's are not (as Ditto).
func (dittoMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	text, err := payloadText(ext)
	if err != nil {
		return nil, err
	}
	m, _, err := parseMessage([]byte(text))
	if err != nil {
		return nil, err
	}
	return []protocol.Message{m}, nil
}

// MapOutgoing writes msg as Ditto Protocol JSON with content-type and
// correlation-id headers only.
func (dittoMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	return []protocol.External{dittoExternal(msg)}, nil
}

func dittoExternal(msg protocol.Message) protocol.External {
	h := map[string]string{"content-type": ContentTypeDitto}
	if cid, ok := msg.Headers["correlation-id"]; ok {
		h["correlation-id"] = cid
	}
	return protocol.External{Headers: h, Text: string(messageJSON(msg)), IsText: true}
}

// payloadText is AbstractMessageMapper.extractPayloadAsString: the text, or
// the bytes decoded by the content type's charset (UTF-8 unless it names
// ISO-8859-1 or US-ASCII); empty payload is an error.
func payloadText(ext protocol.External) (string, error) {
	var s string
	if ext.IsText {
		s = ext.Text
	} else {
		ct, _ := headerIgnoreCase(ext.Headers, "content-type")
		s = decodeCharset(ext.Bytes, charsetOf(ct))
	}
	if s == "" {
		return "", mappingFailed("as payload was absent or empty, please make sure to send payload in your messages")
	}
	return s, nil
}

func charsetOf(contentType string) string {
	for _, p := range strings.Split(contentType, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(strings.TrimSpace(k), "charset") {
			return strings.ToLower(strings.Trim(strings.TrimSpace(v), `"`))
		}
	}
	return "utf-8"
}

func decodeCharset(b []byte, charset string) string {
	switch charset {
	case "iso-8859-1", "latin1", "us-ascii":
		r := make([]rune, len(b))
		for i, c := range b {
			r[i] = rune(c)
		}
		return string(r)
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return strings.ToValidUTF8(string(b), "\uFFFD")
}

// javaInstant formats t as Java's Instant.toString: UTC, seconds always,
// fraction in groups of three digits only when non-zero.
func javaInstant(t time.Time) string {
	t = t.UTC()
	s := t.Format("2006-01-02T15:04:05")
	ns := t.Nanosecond()
	switch {
	case ns == 0:
	case ns%1000000 == 0:
		s += fmt.Sprintf(".%03d", ns/1000000)
	case ns%1000 == 0:
		s += fmt.Sprintf(".%06d", ns/1000)
	default:
		s += fmt.Sprintf(".%09d", ns)
	}
	return s + "Z"
}
