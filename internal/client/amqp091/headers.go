package amqp091

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Ditto header names of the AMQP 0.9.1 basic properties. Every other header
// travels in the application headers table.
const (
	hContentType     = "content-type"
	hContentEncoding = "content-encoding"
	hDeliveryMode    = "delivery-mode"
	hPriority        = "priority"
	hCorrelationID   = "correlation-id"
	hReplyTo         = "reply-to"
	hExpiration      = "expiration"
	hMessageID       = "message-id"
	hTimestamp       = "timestamp"
	hType            = "type"
	hUserID          = "user-id"
	hAppID           = "app-id"
)

// deliveryHeaders turns a delivery into Ditto-named headers: application
// headers first, then the basic properties, which win on a name clash.
func deliveryHeaders(d *amqp.Delivery) map[string]string {
	h := make(map[string]string, len(d.Headers)+4)
	for k, v := range d.Headers {
		h[k] = tableValueString(v)
	}
	set := func(k, v string) {
		if v != "" {
			h[k] = v
		}
	}
	set(hContentType, d.ContentType)
	set(hContentEncoding, d.ContentEncoding)
	if d.DeliveryMode != 0 {
		h[hDeliveryMode] = strconv.Itoa(int(d.DeliveryMode))
	}
	if d.Priority != 0 {
		h[hPriority] = strconv.Itoa(int(d.Priority))
	}
	set(hCorrelationID, d.CorrelationId)
	set(hReplyTo, d.ReplyTo)
	set(hExpiration, d.Expiration)
	set(hMessageID, d.MessageId)
	if !d.Timestamp.IsZero() {
		h[hTimestamp] = strconv.FormatInt(d.Timestamp.UnixMilli(), 10)
	}
	set(hType, d.Type)
	set(hUserID, d.UserId)
	set(hAppID, d.AppId)
	return h
}

// tableValueString renders an AMQP field value as a header string.
func tableValueString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return strconv.FormatInt(x.UnixMilli(), 10)
	case amqp.Table, []any:
		if b, err := json.Marshal(x); err == nil {
			return string(b)
		}
	}
	return fmt.Sprint(v)
}

// publishing builds the outgoing message: known property names become basic
// properties, the rest application headers. Values that do not parse as the
// property's type (priority, delivery-mode, timestamp) stay application
// headers, so nothing is silently lost.
func publishing(headers map[string]string, body []byte) amqp.Publishing {
	p := amqp.Publishing{Body: body}
	table := amqp.Table{}
	for k, v := range headers {
		switch strings.ToLower(k) {
		case hContentType:
			p.ContentType = v
		case hContentEncoding:
			p.ContentEncoding = v
		case hCorrelationID:
			p.CorrelationId = v
		case hReplyTo:
			p.ReplyTo = v
		case hExpiration:
			p.Expiration = v
		case hMessageID:
			p.MessageId = v
		case hType:
			p.Type = v
		case hUserID:
			p.UserId = v
		case hAppID:
			p.AppId = v
		case hDeliveryMode:
			if n, err := strconv.ParseUint(v, 10, 8); err == nil {
				p.DeliveryMode = uint8(n)
			} else {
				table[k] = v
			}
		case hPriority:
			if n, err := strconv.ParseUint(v, 10, 8); err == nil {
				p.Priority = uint8(n)
			} else {
				table[k] = v
			}
		case hTimestamp:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				p.Timestamp = time.UnixMilli(n)
			} else {
				table[k] = v
			}
		default:
			table[k] = v
		}
	}
	if len(table) > 0 {
		p.Headers = table
	}
	return p
}

// splitTarget parses a target address "exchange/routingKey". Without a '/'
// the whole address is the exchange and the routing key is empty; "/queue"
// publishes to the default exchange, i.e. straight to a queue.
func splitTarget(address string) (exchange, routingKey string) {
	if i := strings.IndexByte(address, '/'); i >= 0 {
		return address[:i], address[i+1:]
	}
	return address, ""
}
