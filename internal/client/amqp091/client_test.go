package amqp091

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

func TestParseEndpoint(t *testing.T) {
	for _, tc := range []struct {
		uri                     string
		secure                  bool
		user, pass, vhost, addr string
	}{
		{"amqp://u:p@h:5672", false, "u", "p", "/", "h:5672"},
		{"amqp://u:p@h:5672/", false, "u", "p", "/", "h:5672"},
		{"amqps://u:p%40ss@h:5671/vh", true, "u", "p@ss", "vh", "h:5671"},
		{"amqp://h:5672/%2F", false, "", "", "/", "h:5672"},
		{"amqp://u:p@[::1]:5672/a", false, "u", "p", "a", "[::1]:5672"},
	} {
		t.Run(tc.uri, func(t *testing.T) {
			e, err := parseEndpoint(&model.Connection{URI: tc.uri})
			if err != nil {
				t.Fatal(err)
			}
			if e.secure != tc.secure || e.user != tc.user || e.pass != tc.pass || e.vhost != tc.vhost || e.addr() != tc.addr {
				t.Fatalf("got %+v", e)
			}
		})
	}
	for _, bad := range []string{"tcp://u:secret@h:1", "amqp://u:secret@h", "::secret"} {
		_, err := parseEndpoint(&model.Connection{URI: bad})
		if err == nil {
			t.Fatalf("%s: no error", bad)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("error leaks the password: %v", err)
		}
	}
}

func TestSplitTarget(t *testing.T) {
	for in, want := range map[string][2]string{
		"ex/key":     {"ex", "key"},
		"ex/a/b":     {"ex", "a/b"},
		"/queue":     {"", "queue"},
		"exchange":   {"exchange", ""},
		"amq.topic/": {"amq.topic", ""},
	} {
		ex, key := splitTarget(in)
		if ex != want[0] || key != want[1] {
			t.Errorf("%q: got %q %q", in, ex, key)
		}
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	p := publishing(map[string]string{
		"content-type": "application/json", "correlation-id": "c1", "reply-to": "rq",
		"message-id": "m1", "priority": "3", "delivery-mode": "2", "timestamp": "1700000000000",
		"device_id": "d1", "priority-x": "y",
	}, []byte("body"))
	if p.ContentType != "application/json" || p.CorrelationId != "c1" || p.ReplyTo != "rq" ||
		p.MessageId != "m1" || p.Priority != 3 || p.DeliveryMode != 2 || p.Timestamp.UnixMilli() != 1700000000000 {
		t.Fatalf("properties: %+v", p)
	}
	if p.Headers["device_id"] != "d1" || p.Headers["priority-x"] != "y" || len(p.Headers) != 2 {
		t.Fatalf("application headers: %v", p.Headers)
	}
	d := amqp.Delivery{
		Headers:     amqp.Table{"device_id": "d1", "n": int32(7), "b": true, "nested": amqp.Table{"a": "b"}},
		ContentType: "text/plain", CorrelationId: "c1", ReplyTo: "rq", MessageId: "m1",
		Priority: 3, DeliveryMode: 2, Timestamp: time.UnixMilli(1700000000000),
	}
	h := deliveryHeaders(&d)
	want := map[string]string{
		"device_id": "d1", "n": "7", "b": "true", "nested": `{"a":"b"}`, "content-type": "text/plain",
		"correlation-id": "c1", "reply-to": "rq", "message-id": "m1", "priority": "3",
		"delivery-mode": "2", "timestamp": "1700000000000",
	}
	for k, v := range want {
		if h[k] != v {
			t.Errorf("%s: got %q want %q", k, h[k], v)
		}
	}
}

func TestIntegrationConnectConsumePublish(t *testing.T) {
	needBroker(t)
	a := newAdmin(t)
	q1, q2, q3 := uniqueName(t, "in1"), uniqueName(t, "in2"), uniqueName(t, "in3")
	out1, out2 := uniqueName(t, "out1"), uniqueName(t, "out2")
	ex := uniqueName(t, "ex")
	for _, q := range []string{q1, q2, q3, out1, out2} {
		a.Queue(q)
	}
	a.Exchange(ex, "direct")
	a.Bind(out1, "rk", ex)
	qos := 1
	conn := testConnection("amqp091-it", brokerURI,
		[]model.Source{
			{Addresses: []string{q1, q2}, ConsumerCount: 1, QoS: &qos},
			{Addresses: []string{q3}, ConsumerCount: 2},
		},
		[]model.Target{{Address: ex + "/rk"}, {Address: "/" + out2}})
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	rec.WaitEvent(t, client.Connected, time.Second)

	// Consume from every source address, with properties and headers.
	for _, q := range []string{q1, q2, q3} {
		a.Publish("", q, amqp.Publishing{
			ContentType: "application/vnd.eclipse.ditto+json", CorrelationId: "corr-" + q,
			ReplyTo: "replies", MessageId: "mid-" + q, Headers: amqp.Table{"device_id": "dev-1"},
			Body: []byte("payload-" + q),
		})
	}
	for _, q := range []string{q1, q2, q3} {
		m := rec.WaitMessage(t, "payload-"+q, 5*time.Second)
		if m.Address != q {
			t.Errorf("address: got %q want %q", m.Address, q)
		}
		for k, v := range map[string]string{
			"content-type": "application/vnd.eclipse.ditto+json", "correlation-id": "corr-" + q,
			"reply-to": "replies", "message-id": "mid-" + q, "device_id": "dev-1",
		} {
			if m.Headers[k] != v {
				t.Errorf("%s header %s: got %q want %q", q, k, m.Headers[k], v)
			}
		}
		if q == q1 && (m.QoS == nil || *m.QoS != 1) {
			t.Errorf("qos of %s: %v", q, m.QoS)
		}
	}

	// Publish to both target forms.
	for i, target := range []struct{ address, queue string }{{ex + "/rk", out1}, {"/" + out2, out2}} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Publish(ctx, client.Message{
			Address: target.address,
			Headers: map[string]string{"content-type": "text/plain", "correlation-id": "pc", "thing-id": "t:1"},
			Payload: []byte("out-" + target.queue),
		})
		cancel()
		if err != nil {
			t.Fatalf("Publish %d: %v", i, err)
		}
		d := a.Get(target.queue)
		if string(d.Body) != "out-"+target.queue || d.ContentType != "text/plain" || d.CorrelationId != "pc" ||
			d.Headers["thing-id"] != "t:1" {
			t.Fatalf("published message: %+v", d)
		}
	}

	// Every delivery was acked: nothing went back to the queues on close.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	a.AssertEmpty(q1, q2, q3)
}

func TestIntegrationMissingQueue(t *testing.T) {
	needBroker(t)
	missing := uniqueName(t, "missing")
	c, _ := newTestClient(t, testConnection("missingq", brokerURI,
		[]model.Source{{Addresses: []string{missing}, ConsumerCount: 1}}, nil))
	err := c.Connect(clienttest.Context(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("want an error naming the queue, got %v", err)
	}
	if errors.Is(err, client.ErrUnauthorized) || errors.Is(err, client.ErrUnreachable) {
		t.Fatalf("wrong class: %v", err)
	}
	for _, s := range c.Status() {
		if s.Status != client.StatusFailed {
			t.Fatalf("status: %+v", s)
		}
	}
}

// Publishing to a missing exchange fails, and the next publish works (the
// broker closed the publisher channel; the client reopens it).
func TestIntegrationPublishMissingExchange(t *testing.T) {
	needBroker(t)
	a := newAdmin(t)
	out := uniqueName(t, "out")
	a.Queue(out)
	c, _ := newTestClient(t, testConnection("missingex", brokerURI, nil,
		[]model.Target{{Address: "/" + out}}))
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := c.Publish(ctx, client.Message{Address: uniqueName(t, "noex") + "/k", Payload: []byte("x")})
	if err == nil || !strings.Contains(err.Error(), "NOT_FOUND") {
		t.Fatalf("want NOT_FOUND, got %v", err)
	}
	if err := c.Publish(ctx, client.Message{Address: "/" + out, Payload: []byte("ok")}); err != nil {
		t.Fatalf("publish after a channel error: %v", err)
	}
	if d := a.Get(out); string(d.Body) != "ok" {
		t.Fatalf("got %q", d.Body)
	}
	if st := c.Status(); st[0].Status != client.StatusOpen {
		t.Fatalf("a channel error must not fail the client: %+v", st[0])
	}
}

func TestIntegrationConnectionLost(t *testing.T) {
	needBroker(t)
	t.Run("server closes the connection", func(t *testing.T) {
		a := newAdmin(t)
		q := uniqueName(t, "in")
		a.Queue(q)
		conn := testConnection(uniqueName(t, "conn"), brokerURI,
			[]model.Source{{Addresses: []string{q}, ConsumerCount: 1}}, nil)
		c, rec := newTestClient(t, conn)
		if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if !killConnection(t, connectionName(conn, 0)) {
			t.Skip("rabbitmqctl cannot close the connection here")
		}
		ev := rec.WaitEvent(t, client.ConnectionLost, 10*time.Second)
		if ev.Err == nil {
			t.Fatal("ConnectionLost without a cause")
		}
		clienttest.AssertAll(t, c, client.StatusFailed)

		// The grain restarts with a fresh client.
		c2, rec2 := newTestClient(t, conn)
		if err := c2.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatalf("reconnect: %v", err)
		}
		if st := c2.Status(); st[0].Status != client.StatusOpen {
			t.Fatalf("after reconnect: %+v", st[0])
		}
		a.Publish("", q, amqp.Publishing{Body: []byte("after-reconnect")})
		rec2.WaitMessage(t, "after-reconnect", 5*time.Second)
	})
	t.Run("source queue deleted", func(t *testing.T) {
		a := newAdmin(t)
		q := uniqueName(t, "in")
		a.Queue(q)
		c, rec := newTestClient(t, testConnection("qdel", brokerURI,
			[]model.Source{{Addresses: []string{q}, ConsumerCount: 1}}, []model.Target{{Address: "amq.topic/x"}}))
		if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Channel().QueueDelete(q, false, false, false); err != nil {
			t.Fatal(err)
		}
		ev := rec.WaitEvent(t, client.ConnectionLost, 10*time.Second)
		if ev.Err == nil || !strings.Contains(ev.Err.Error(), q) {
			t.Fatalf("cause: %v", ev.Err)
		}
		clienttest.AssertAll(t, c, client.StatusFailed)
	})
}
