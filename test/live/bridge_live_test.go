package live

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
)

// TestIntegrationBridgeLiveMessageOverAMQP: a live message an HTTP client
// sends to Ditto's message inbox reaches the device through an AMQP 0.9.1
// target whose subject may READ the thing; the device's live response,
// consumed by the connection's AMQP source, goes back on the session that
// delivered the message, and the requester gets the device's status,
// content type and payload. A live command of another client takes the
// same way (START-SEND-LIVE-COMMANDS) and changes no twin.
func TestIntegrationBridgeLiveMessageOverAMQP(t *testing.T) {
	blackbox.NeedBroker(t, "RabbitMQ", rabbitAddr)
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := bridgeNode(t, emu)
	thing := fmt.Sprintf("org.acme:valve-%d", runID)
	ns, name, _ := strings.Cut(thing, ":")
	createThing(t, emu, thing, map[string]any{"site": "north"}, map[string][2]bool{
		"integration:device": {true, false}, // the target's subject: READ only
		"integration:app":    {true, true},  // the requester: WRITE to send messages
	})
	a := newRabbitAdmin(t)
	ex, qin := uniqueRabbitName("bridge-ex"), uniqueRabbitName("bridge-in")
	a.exchange(ex)
	a.queue(qin)
	device := a.listen(t, ex, thing)

	id := dpID("bridge-live-amqp")
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "amqp-091", "uri": "amqp://" + rabbitLogin + "@" + rabbitAddr + "/",
		"sources": []any{map[string]any{"addresses": []string{qin},
			"authorizationContext": []string{"integration:device"}}},
		"targets": []any{map[string]any{"address": ex + "/{{ thing:id }}",
			"authorizationContext": []string{"integration:device"},
			"topics": []string{"_/_/things/live/messages?namespaces=" + ns,
				"_/_/things/live/commands?namespaces=" + ns}}},
	})

	type httpAnswer struct {
		status int
		ct     string
		body   string
		err    error
	}
	answered := make(chan httpAnswer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodPost,
			emu.HTTPURL()+"/api/2/things/"+thing+"/inbox/messages/open?timeout=10s", strings.NewReader(`{"percent":40}`))
		req.Header.Set("x-ditto-pre-authenticated", "integration:app")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("correlation-id", "ask-1")
		cl := &http.Client{Timeout: 20 * time.Second}
		resp, err := cl.Do(req)
		if err != nil {
			answered <- httpAnswer{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		answered <- httpAnswer{status: resp.StatusCode, ct: resp.Header.Get("Content-Type"), body: string(b), err: err}
	}()

	body := device(15 * time.Second)
	if body == nil {
		select {
		case ans := <-answered:
			t.Fatalf("the device got no live message; the requester got %d %s %v", ans.status, ans.body, ans.err)
		default:
			t.Fatalf("the device got no live message; Ditto's sessions %+v", emu.Sessions())
		}
	}
	m := blackbox.Decode(t, body)
	blackbox.WantField(t, m, ns+"/"+name+"/things/live/messages/open", "topic")
	blackbox.WantField(t, m, "/inbox/messages/open", "path")
	blackbox.WantField(t, m, float64(40), "value", "percent")
	blackbox.WantField(t, m, "integration:app", "headers", "ditto-originator")
	cid, _ := blackbox.Field(m, "headers", "correlation-id").(string)
	if !strings.HasPrefix(cid, "ask-1") {
		t.Fatalf("correlation-id %q of the delivered message, want ask-1 (with Ditto's suffix at most)", cid)
	}

	// the device answers with a Ditto Protocol live response on the source
	// queue; the source's default header mapping makes the AMQP content
	// type the response's, as in Ditto
	resp, _ := json.Marshal(map[string]any{"topic": ns + "/" + name + "/things/live/messages/open",
		"headers": map[string]string{"correlation-id": cid, "content-type": "application/json"},
		"path":    "/inbox/messages/open", "value": map[string]any{"opened": 40}, "status": 201})
	a.do("publish the device's response", func(ch *amqp.Channel) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return ch.PublishWithContext(ctx, "", qin, false, false, amqp.Publishing{
			ContentType: "application/json", Body: resp})
	})

	var got httpAnswer
	select {
	case got = <-answered:
	case <-time.After(20 * time.Second):
		t.Fatalf("the requester got no answer; logs %v", dpLogs(t, n, id))
	}
	if got.err != nil {
		t.Fatalf("the requester's request: %v", got.err)
	}
	if got.status != http.StatusCreated || got.ct != "application/json" || got.body != `{"opened":40}` {
		t.Fatalf("the requester got %d %q %s, want the device's 201 application/json {\"opened\":40}; logs %v",
			got.status, got.ct, got.body, dpLogs(t, n, id))
	}
	// the device got the message once: Ditto does not deliver it twice
	if extra := device(200 * time.Millisecond); extra != nil {
		t.Errorf("the device got a second message: %s", extra)
	}

	// a live command of another client of Ditto takes the same way
	done := make(chan *protocol.Message, 1)
	go func() {
		ans, err := emu.SendLive("integration:app", &protocol.Message{
			Topic: ns + "/" + name + "/things/live/commands/modify", Path: "/attributes/site", Value: []byte(`"south"`),
			Headers: map[string]string{"correlation-id": "live-cmd-1"}}, 10*time.Second)
		if err != nil {
			t.Errorf("live command: %v", err)
		}
		done <- ans
	}()
	body = device(15 * time.Second)
	if body == nil {
		t.Fatalf("the device got no live command")
	}
	m = blackbox.Decode(t, body)
	blackbox.WantField(t, m, ns+"/"+name+"/things/live/commands/modify", "topic")
	blackbox.WantField(t, m, "south", "value")
	cid, _ = blackbox.Field(m, "headers", "correlation-id").(string)
	resp, _ = json.Marshal(map[string]any{"topic": ns + "/" + name + "/things/live/commands/modify",
		"headers": map[string]string{"correlation-id": cid}, "path": "/attributes/site", "status": 204})
	a.do("publish the device's live command response", func(ch *amqp.Channel) error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return ch.PublishWithContext(ctx, "", qin, false, false, amqp.Publishing{ContentType: "application/json", Body: resp})
	})
	select {
	case ans := <-done:
		if ans == nil || ans.Status != 204 || ans.Headers["correlation-id"] != "live-cmd-1" ||
			ans.Topic != ns+"/"+name+"/things/live/commands/modify" {
			t.Fatalf("the live command's requester got %+v, want the device's 204", ans)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the live command's requester got no answer")
	}
	// a live command changes no twin
	if v, _ := attribute(emu, thing, "site"); v != "north" {
		t.Errorf("attribute site = %v after a live command, want north", v)
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
