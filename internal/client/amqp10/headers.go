package amqp10

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/Azure/go-amqp"
)

// Ditto header names of the AMQP 1.0 message properties. Every other header
// is an application property.
const (
	hMessageID          = "message-id"
	hUserID             = "user-id"
	hTo                 = "to"
	hSubject            = "subject"
	hReplyTo            = "reply-to"
	hCorrelationID      = "correlation-id"
	hContentType        = "content-type"
	hContentEncoding    = "content-encoding"
	hAbsoluteExpiryTime = "absolute-expiry-time"
	hCreationTime       = "creation-time"
	hGroupID            = "group-id"
	hGroupSequence      = "group-sequence"
	hReplyToGroupID     = "reply-to-group-id"

	// Prefixes that address an application property shadowed by a property
	// name, and a message annotation.
	prefixAppProperty = "amqp.application.property:"
	prefixAnnotation  = "amqp.message.annotation:"
)

func isPropertyName(k string) bool {
	switch k {
	case hMessageID, hUserID, hTo, hSubject, hReplyTo, hCorrelationID, hContentType, hContentEncoding,
		hAbsoluteExpiryTime, hCreationTime, hGroupID, hGroupSequence, hReplyToGroupID:
		return true
	}
	return false
}

// messageHeaders turns a received message into Ditto-named headers.
func messageHeaders(m *amqp.Message) map[string]string {
	h := make(map[string]string, len(m.ApplicationProperties)+4)
	for k, v := range m.ApplicationProperties {
		if isPropertyName(k) {
			k = prefixAppProperty + k
		}
		h[k] = valueString(v)
	}
	for k, v := range m.Annotations {
		h[prefixAnnotation+fmt.Sprint(k)] = valueString(v)
	}
	p := m.Properties
	if p == nil {
		return h
	}
	str := func(k string, v *string) {
		if v != nil {
			h[k] = *v
		}
	}
	if p.MessageID != nil {
		h[hMessageID] = valueString(p.MessageID)
	}
	if len(p.UserID) > 0 {
		h[hUserID] = string(p.UserID)
	}
	str(hTo, p.To)
	str(hSubject, p.Subject)
	str(hReplyTo, p.ReplyTo)
	if p.CorrelationID != nil {
		h[hCorrelationID] = valueString(p.CorrelationID)
	}
	str(hContentType, p.ContentType)
	str(hContentEncoding, p.ContentEncoding)
	if p.AbsoluteExpiryTime != nil {
		h[hAbsoluteExpiryTime] = strconv.FormatInt(p.AbsoluteExpiryTime.UnixMilli(), 10)
	}
	if p.CreationTime != nil {
		h[hCreationTime] = strconv.FormatInt(p.CreationTime.UnixMilli(), 10)
	}
	str(hGroupID, p.GroupID)
	if p.GroupSequence != nil {
		h[hGroupSequence] = strconv.FormatUint(uint64(*p.GroupSequence), 10)
	}
	str(hReplyToGroupID, p.ReplyToGroupID)
	return h
}

// valueString renders an AMQP value as a header string.
func valueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return strconv.FormatInt(x.UnixMilli(), 10)
	case amqp.UUID:
		b := x[:]
		return hex.EncodeToString(b[0:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) +
			"-" + hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:16])
	}
	return fmt.Sprint(v)
}

// payload is the message body: data sections, or a string/binary
// amqp-value (what JMS text messages carry).
func payload(m *amqp.Message) []byte {
	if len(m.Data) == 1 {
		return m.Data[0]
	}
	if len(m.Data) > 1 {
		var out []byte
		for _, d := range m.Data {
			out = append(out, d...)
		}
		return out
	}
	switch v := m.Value.(type) {
	case nil:
		return nil
	case string:
		return []byte(v)
	case []byte:
		return v
	default:
		return []byte(fmt.Sprint(v))
	}
}

// newMessage builds an outgoing message: property names set properties,
// prefixed names set application properties or annotations, the rest are
// application properties. Values that do not parse as the property's type
// stay application properties, so nothing is silently lost.
func newMessage(headers map[string]string, body []byte) *amqp.Message {
	m := amqp.NewMessage(body)
	p := &amqp.MessageProperties{}
	app := map[string]any{}
	ann := amqp.Annotations{}
	ptr := func(s string) *string { return &s }
	setProps := false
	for k, v := range headers {
		switch lk := strings.ToLower(k); {
		case strings.HasPrefix(lk, prefixAppProperty):
			app[k[len(prefixAppProperty):]] = v
			continue
		case strings.HasPrefix(lk, prefixAnnotation):
			ann[k[len(prefixAnnotation):]] = v
			continue
		case lk == hMessageID:
			p.MessageID = v
		case lk == hUserID:
			p.UserID = []byte(v)
		case lk == hTo:
			p.To = ptr(v)
		case lk == hSubject:
			p.Subject = ptr(v)
		case lk == hReplyTo:
			p.ReplyTo = ptr(v)
		case lk == hCorrelationID:
			p.CorrelationID = v
		case lk == hContentType:
			p.ContentType = ptr(v)
		case lk == hContentEncoding:
			p.ContentEncoding = ptr(v)
		case lk == hGroupID:
			p.GroupID = ptr(v)
		case lk == hReplyToGroupID:
			p.ReplyToGroupID = ptr(v)
		case lk == hAbsoluteExpiryTime || lk == hCreationTime:
			ms, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				app[k] = v
				continue
			}
			t := time.UnixMilli(ms)
			if lk == hCreationTime {
				p.CreationTime = &t
			} else {
				p.AbsoluteExpiryTime = &t
			}
		case lk == hGroupSequence:
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				app[k] = v
				continue
			}
			seq := uint32(n)
			p.GroupSequence = &seq
		default:
			app[k] = v
			continue
		}
		setProps = true
	}
	if setProps {
		m.Properties = p
	}
	if len(app) > 0 {
		m.ApplicationProperties = app
	}
	if len(ann) > 0 {
		m.Annotations = ann
	}
	return m
}
