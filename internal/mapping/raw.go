package mapping

import (
	"github.com/dittoconn/dittoconn/internal/placeholder/template"

	"encoding/base64"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// rawDefaults are RawMessageMapper's default options (the Ditto mapper's
// blocklist, the outgoing fallback content type and the incoming message
// headers, all placeholders).
const rawDefaults = `{"content-type-blocklist":"application/vnd.eclipse-hono-empty-notification,application/vnd.eclipse-hono-device-provisioning-notification,application/vnd.eclipse-hono-dc-notification+json,application/vnd.eclipse-hono-delivery-failure-notification+json",` +
	`"outgoingContentType":"text/plain; charset=UTF-8",` +
	`"incomingMessageHeaders":{"content-type":"{{header:content-type|fn:default('application/octet-stream')}}",` +
	`"ditto-message-direction":"{{header:ditto-message-direction|fn:default('TO')}}",` +
	`"ditto-message-thing-id":"{{header:ditto-message-thing-id}}","ditto-message-subject":"{{header:ditto-message-subject}}",` +
	`"status":"{{header:status}}","ditto-message-feature-id":"{{header:ditto-message-feature-id}}"}}`

// rawMessageMapper is the "RawMessage" engine: live message payloads map
// to and from the broker payload as they are; anything else (and Ditto
// Protocol content) goes through the Ditto mapper.
type rawMessageMapper struct {
	outgoingContentType string
	incomingHeaders     map[string]compiled // in rawScope, modeOptional
	cfg                 Config
}

func newRawMessageMapper(_ string, opts Options, cfg Config) (Mapper, error) {
	m := &rawMessageMapper{outgoingContentType: "text/plain; charset=UTF-8", cfg: cfg}
	if s, ok := opts.String("outgoingContentType"); ok {
		m.outgoingContentType = s
	}
	// Configured headers are laid over the defaults.
	def, _ := gojson.ParseObject([]byte(rawDefaults))
	dh, _ := def.Get("incomingMessageHeaders")
	m.incomingHeaders = map[string]compiled{}
	for _, k := range dh.(*ojson.Object).Keys() {
		m.incomingHeaders[k] = compileIn(rawScope, gojson.FormatAsString(dh.(*ojson.Object).Value(k)), modeOptional)
	}
	if o, ok := opts.object("incomingMessageHeaders"); ok {
		for _, k := range o.Keys() {
			m.incomingHeaders[k] = compileIn(rawScope, gojson.FormatAsString(o.Value(k)), modeOptional)
		}
	}
	return m, nil
}

func isDittoContentType(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	return strings.EqualFold(strings.TrimSpace(base), ContentTypeDitto)
}

// textLike is MessageDeserializer.shouldBeInterpretedAsTextOrJson.
func textLike(ct string) bool {
	base := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return strings.HasPrefix(base, "text/") || jsonLike(base) ||
		base == "application/javascript" || base == "application/xml"
}

func jsonLike(ct string) bool {
	base := strings.ToLower(strings.TrimSpace(strings.SplitN(ct, ";", 2)[0]))
	return base == ContentTypeJSON || strings.HasSuffix(base, "+json")
}

// rawScope is what the RawMessage mapper's header templates may use.
var rawScope = template.Set{template.Header, template.Time}

func (m *rawMessageMapper) lookup(ext protocol.External) values {
	return values{now: m.cfg.now, lk: func(prefix, name string) (string, bool) {
		if prefix == "header" {
			return headerIgnoreCase(ext.Headers, name)
		}
		return "", false
	}}
}

func (m *rawMessageMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	lk := m.lookup(ext)
	ct, ok, _ := m.incomingHeaders["content-type"].resolve(lk)
	if !ok {
		return nil, mappingFailed("the RawMessage mapper failed to resolve content-type of an incoming message")
	}
	if isDittoContentType(ct) {
		return dittoMapper{}.MapIncoming(ext)
	}
	h := map[string]string{}
	for k, tmpl := range m.incomingHeaders {
		if v, ok, _ := tmpl.resolve(lk); ok {
			h[k] = v
		}
	}
	thingID, subject := h["ditto-message-thing-id"], h["ditto-message-subject"]
	ns, name, okID := strings.Cut(thingID, ":")
	if !okID || name == "" {
		return nil, mappingFailed("the message header 'ditto-message-thing-id' is missing or not a thing ID: <%s>", thingID)
	}
	if subject == "" {
		return nil, mappingFailed("the message header 'ditto-message-subject' is missing")
	}
	box := "inbox"
	switch strings.ToUpper(h["ditto-message-direction"]) {
	case "TO":
	case "FROM":
		box = "outbox"
	default:
		return nil, mappingFailed("the message header 'ditto-message-direction' must be TO or FROM")
	}
	path := "/" + box + "/messages/" + subject
	if f := h["ditto-message-feature-id"]; f != "" {
		path = "/features/" + f + path
	}
	msg := protocol.Message{Topic: ns + "/" + name + "/things/live/messages/" + subject, Path: path,
		Headers: map[string]string{"content-type": ct}}
	if s := h["status"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 100 || n > 599 {
			return nil, mappingFailed("the message header 'status' is not an HTTP status: <%s>", s)
		}
		msg.Status = n
	}
	if textLike(ct) {
		text := ext.Text
		if !ext.IsText {
			if ext.Bytes == nil {
				return []protocol.Message{msg}, nil
			}
			text = decodeCharset(ext.Bytes, "utf-8")
		}
		if jsonLike(ct) {
			v, err := gojson.Parse([]byte(text))
			if err != nil {
				return nil, mappingFailed("failed to parse JSON payload: %v", err)
			}
			msg.Value = gojson.Marshal(v)
		} else {
			msg.Value = gojson.Quote(text)
		}
	} else {
		b := ext.Bytes
		if ext.IsText {
			b = []byte(ext.Text)
		}
		if b != nil {
			msg.Value = gojson.Quote(base64.StdEncoding.EncodeToString(b))
		}
	}
	return []protocol.Message{msg}, nil
}

func (m *rawMessageMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	t, err := parseTopic(msg.Topic)
	if err != nil || t.Criterion != "messages" {
		return dittoMapper{}.MapOutgoing(msg)
	}
	ct, ok := headerIgnoreCase(msg.Headers, "content-type")
	if !ok {
		ct = m.outgoingContentType
	}
	if isDittoContentType(ct) {
		return dittoMapper{}.MapOutgoing(msg)
	}
	keys := pointerKeys(msg.Path)
	h := map[string]string{"ditto-message-thing-id": t.entityID(), "ditto-message-subject": t.Subject, "content-type": ct}
	if len(keys) >= 2 && keys[0] == "features" {
		h["ditto-message-feature-id"] = keys[1]
		keys = keys[2:]
	}
	switch {
	case len(keys) > 0 && keys[0] == "inbox":
		h["ditto-message-direction"] = "TO"
	case len(keys) > 0 && keys[0] == "outbox":
		h["ditto-message-direction"] = "FROM"
	default:
		return nil, mappingFailed("message path <%s> has no direction", msg.Path)
	}
	if msg.Status != 0 {
		h["status"] = strconv.Itoa(msg.Status)
	}
	ext := protocol.External{Headers: h}
	if len(msg.Value) == 0 {
		return []protocol.External{ext}, nil
	}
	v, err := gojson.Parse(msg.Value)
	if err != nil {
		return nil, mappingFailed("invalid value: %v", err)
	}
	if textLike(ct) {
		if s, ok := ojson.Unquote(v); ok {
			ext.Text = s
		} else {
			ext.Text = string(gojson.Marshal(v))
		}
		ext.IsText = true
		return []protocol.External{ext}, nil
	}
	s, ok := ojson.Unquote(v)
	b, err := base64.StdEncoding.DecodeString(s)
	if !ok || err != nil {
		return nil, mappingFailed("expect payload of a message of content-type <%s> to be a base64 encoded string", ct)
	}
	ext.Bytes = b
	return []protocol.External{ext}, nil
}
