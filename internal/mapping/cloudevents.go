package mapping

import (
	"encoding/base64"
	"strings"

	"github.com/google/uuid"

	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// CloudEvents content type of structured mode.
const ContentTypeCloudEvents = "application/cloudevents+json"

// cloudEventsMapper is the "CloudEvents" engine: binary mode (ce-* headers
// around a Ditto Protocol body) and structured mode in, structured mode out.
type cloudEventsMapper struct{ cfg Config }

func newCloudEventsMapper(_ string, _ Options, cfg Config) (Mapper, error) {
	return cloudEventsMapper{cfg: cfg}, nil
}

const notACloudEvent = "this is not a CloudEvent"

func (m cloudEventsMapper) MapIncoming(ext protocol.External) ([]protocol.Message, error) {
	text, err := payloadText(ext)
	if err != nil {
		return nil, err
	}
	ct, _ := headerIgnoreCase(ext.Headers, "content-type")
	switch ct {
	case ContentTypeDitto:
		for _, h := range []string{"ce-id", "ce-source", "ce-type", "ce-specversion"} {
			if _, ok := ext.Headers[h]; !ok {
				return nil, mappingFailed(notACloudEvent)
			}
		}
		msg, _, err := parseMessage([]byte(text))
		if err != nil {
			return nil, err
		}
		msg.Headers = withHeader(msg.Headers, "correlation-id", ext.Headers["ce-id"])
		return []protocol.Message{msg}, nil
	case ContentTypeCloudEvents:
		ev, err := gojson.ParseObject([]byte(text))
		if err != nil {
			return nil, mappingFailed("failed to parse JSON: %v", err)
		}
		for _, k := range []string{"specversion", "type", "id", "source"} {
			if _, ok := ev.Get(k); !ok {
				return nil, mappingFailed(notACloudEvent)
			}
		}
		var data []byte
		if b64, ok := ev.Get("data_base64"); ok {
			s, _ := ojson.Unquote(b64)
			dec, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, mappingFailed("invalid data_base64: %v", err)
			}
			data = dec
		} else if d, ok := ev.Get("data"); ok {
			data = gojson.Marshal(d)
		} else {
			return nil, mappingFailed(notACloudEvent)
		}
		msg, _, err := parseMessage(data)
		if err != nil {
			return nil, err
		}
		id, _ := ev.Get("id")
		msg.Headers = withHeader(msg.Headers, "correlation-id", gojson.FormatAsString(id))
		return []protocol.Message{msg}, nil
	}
	return nil, nil
}

func (m cloudEventsMapper) MapOutgoing(msg protocol.Message) ([]protocol.External, error) {
	parts := strings.SplitN(msg.Topic, "/", 3)
	if len(parts) < 3 {
		return nil, mappingFailed("invalid topic <%s>", msg.Topic)
	}
	id, ok := msg.Headers["correlation-id"]
	if !ok {
		id = uuid.NewString()
	}
	ts := msg.Timestamp
	if ts == "" {
		ts = javaInstant(m.cfg.now())
	}
	ev := ojson.NewObject()
	ev.Set("data", messageObject(msg))
	ev.Set("specversion", gojson.Quote("1.0"))
	ev.Set("id", gojson.Quote(id))
	ev.Set("source", gojson.Quote("https://github.com/eclipse-ditto/ditto"))
	ev.Set("type", gojson.Quote("org.eclipse.ditto.outbound:"+parts[2]))
	ev.Set("datacontenttype", gojson.Quote(ContentTypeDitto))
	ev.Set("time", gojson.Quote(ts))
	ev.Set("subject", gojson.Quote(parts[0]+":"+parts[1]))
	return []protocol.External{{Headers: map[string]string{"content-type": ContentTypeCloudEvents}, Text: string(gojson.Marshal(ev)), IsText: true}}, nil
}

// withHeader returns a copy of h with k=v.
func withHeader(h map[string]string, k, v string) map[string]string {
	out := make(map[string]string, len(h)+1)
	for hk, hv := range h {
		out[hk] = hv
	}
	out[k] = v
	return out
}
