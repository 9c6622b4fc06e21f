package dataplane

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"strings"

	"github.com/dittoconn/dittoconn/internal/ack"
	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// exchanger is a client whose publish is a request with an answer (HTTP
// push): Exchange returns the endpoint's response whatever its status; err
// only when none came.
type exchanger interface {
	Exchange(ctx context.Context, msg client.Message) (status int, headers map[string]string, body []byte, err error)
}

// dittoContentType marks a response body that is a Ditto Protocol message.
const dittoContentType = "application/vnd.eclipse.ditto+json"

// answersWithResponse reports whether the endpoint's response to s is
// needed: s waits for acknowledgements or is a live request.
func (t *target) answersWithResponse(s *bus.Signal) bool {
	return s.Origin != "" && (isLiveRequest(&s.Topic, s.Message) || s.Message.Headers[ack.HeaderRequestedAcks] != "")
}

// exchange publishes msg through an HTTP push client and turns the HTTP
// response into what Ditto's HTTP binding makes of it: with an issued label,
// its acknowledgement (status, headers, body); with the issued label
// live-response, the live response to a live message or command; without
// one, a Ditto Protocol acknowledgement or live response the endpoint sent
// as its body (content type application/vnd.eclipse.ditto+json).
func (t *target) exchange(w *worker, ex exchanger, s *bus.Signal, msg client.Message, info monitor.Info) {
	p := t.p
	ctx, cancel := context.WithTimeout(w.ctx, p.publishTimeout(ex.(client.Client)))
	status, headers, body, err := ex.Exchange(ctx, msg)
	cancel()
	if err != nil {
		t.published(s, info, err)
		return
	}
	if status >= 300 {
		t.st.c[monitor.Published].RecordAt(false, p.now())
		t.st.l[monitor.Published].Failure(info, fmt.Sprintf("%s: HTTP %d", msg.Address, status))
	} else {
		t.st.c[monitor.Published].RecordAt(true, p.now())
		t.st.l[monitor.Published].Success(info)
	}
	cid := s.Message.Headers[ack.HeaderCorrelationID]
	if t.issued == "" {
		if isMediaType(headers["content-type"], dittoContentType) {
			t.explicitAnswer(s, body, cid, info)
		}
		return
	}
	h := make(map[string]string, len(headers)+1)
	for k, v := range headers {
		h[k] = v
	}
	h[ack.HeaderCorrelationID] = cid
	value := bodyValue(headers["content-type"], body)
	if t.issued == ack.LiveResponse {
		if !isLiveRequest(&s.Topic, s.Message) {
			return
		}
		resp := &protocol.Message{Topic: s.Message.Topic, Headers: h, Path: s.Message.Path, Value: value, Status: status}
		t.p.cfg.Bus.Publish(&bus.Signal{Message: resp, Topic: s.Topic, Stream: ResponseStream(s.Origin), Origin: p.id})
		return
	}
	if requests(s, t.issued) {
		t.issue(s, ack.Ack{Label: t.issued, Status: status, Headers: h, Payload: value}, info, true)
	}
}

// explicitAnswer forwards a Ditto Protocol acknowledgement (of a label the
// signal requested) or live response the endpoint answered with.
func (t *target) explicitAnswer(s *bus.Signal, body []byte, cid string, info monitor.Info) {
	m, err := protocol.Decode(body)
	if err != nil || m.Status == 0 {
		return
	}
	at, err := protocol.ParseTopic(m.Topic)
	if err != nil {
		return
	}
	if m.Headers == nil {
		m.Headers = map[string]string{}
	}
	if m.Headers[ack.HeaderCorrelationID] != cid {
		return // Ditto: it must answer this signal
	}
	switch {
	case ack.IsAck(&at):
		if requests(s, at.Action) {
			a, _ := ack.FromMessage(m, &at)
			t.issue(s, a, info, true)
		}
	case isLiveResponse(&at, m) && isLiveRequest(&s.Topic, s.Message) && at.EntityID() == s.Topic.EntityID():
		t.p.cfg.Bus.Publish(&bus.Signal{Message: m, Topic: at, Stream: ResponseStream(s.Origin), Origin: t.p.id})
	}
}

// bodyValue is an HTTP body as a Ditto Protocol value: inlined when it is
// JSON, a JSON string otherwise; nil when empty.
func bodyValue(contentType string, body []byte) json.RawMessage {
	if len(body) == 0 {
		return nil
	}
	if isJSONType(contentType) && json.Valid(body) {
		return json.RawMessage(body)
	}
	return ojson.Ditto.AppendString(nil, string(body))
}

func isMediaType(contentType, want string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && strings.EqualFold(mt, want)
}

func isJSONType(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return mt == "application/json" || strings.HasSuffix(mt, "+json")
}
