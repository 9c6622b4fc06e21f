package dataplane

import (
	"context"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// endpoint is an HTTP push client answering every request with one response.
type endpoint struct {
	recorder
	status  int
	headers map[string]string
	body    string
}

func (e *endpoint) Exchange(_ context.Context, m client.Message) (int, map[string]string, []byte, error) {
	return e.status, e.headers, []byte(e.body), nil
}

func httpPlane(t *testing.T, b bus.Bus, js string, ep *endpoint) {
	t.Helper()
	p, err := New(parse(t, js), Config{Bus: b})
	if err != nil {
		t.Fatal(err)
	}
	p.Connected(0, ep)
	t.Cleanup(func() { p.Close(); p.Wait() })
}

// Ditto's HTTP binding: with an issued label, the HTTP response is the
// acknowledgement (status, headers, JSON body inlined).
func TestHTTPResponseIsTheAcknowledgement(t *testing.T) {
	const httpConn = `{"id":"iss","connectionType":"http-push","connectionStatus":"open","uri":"http://h:80",
 "targets":[{"address":"POST:/in","authorizationContext":["a:b"],"topics":["_/_/things/live/messages"],
   "issuedAcknowledgementLabel":"{{connection:id}}:ack"}]}`
	b := bus.NewLocal()
	req, replies := start(t, b, requesterConn)
	httpPlane(t, b, httpConn, &endpoint{status: 201, headers: map[string]string{"content-type": "application/json", "x-a": "b"},
		body: `{"stored":true}`})
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-http", `,"response-required":false`)))
	if o := s.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("settled %v", o)
	}
	replies.none(t)

	// an endpoint answering 503: redelivery
	b2 := bus.NewLocal()
	req2, _ := start(t, b2, requesterConn)
	httpPlane(t, b2, httpConn, &endpoint{status: 503, headers: map[string]string{"content-type": "text/plain"}, body: "busy"})
	req2.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-http2", `,"response-required":false`)))
	if o := s.wait(t, 5*time.Second); o != client.Redeliver {
		t.Fatalf("503 settled %v", o)
	}
}

// With the issued label live-response, the HTTP response to a live message
// is its live response: the requester gets the plain response.
func TestHTTPResponseIsTheLiveResponse(t *testing.T) {
	const httpConn = `{"id":"svc","connectionType":"http-push","connectionStatus":"open","uri":"http://h:80",
 "targets":[{"address":"POST:/in","authorizationContext":["a:b"],"topics":["_/_/things/live/messages"],
   "issuedAcknowledgementLabel":"live-response"}]}`
	const reqConn = `{"id":"req","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "sources":[{"addresses":["in"],"authorizationContext":["a:b"],
   "replyTarget":{"enabled":true,"address":"replies","expectedResponseTypes":["response"]}}]}`
	b := bus.NewLocal()
	req, replies := start(t, b, reqConn)
	httpPlane(t, b, httpConn, &endpoint{status: 200, headers: map[string]string{"content-type": "text/plain"}, body: "pong"})
	s := make(settled, 2)
	req.Inbound(0)(s.msg("in", liveMsg("org.acme", "c-live", `,"timeout":"5s"`)))
	if o := s.wait(t, 5*time.Second); o != client.Accept {
		t.Fatalf("settled %v", o)
	}
	resp, err := protocol.Decode(replies.next(t).Payload)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Topic != "org.acme/dev/things/live/messages/ask" || resp.Status != 200 || string(resp.Value) != `"pong"` ||
		resp.Headers["correlation-id"] != "c-live" {
		t.Fatalf("response %s", protocol.Encode(resp))
	}
}
