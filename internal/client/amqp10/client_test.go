package amqp10

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

func TestParseConfig(t *testing.T) {
	conn := &model.Connection{ID: "c", URI: "amqps://user:p%40ss@broker:5671", SpecificConfig: map[string]string{
		"jms.connectTimeout": "2000", "jms.sendTimeout": "3000", "jms.prefetchPolicy.all": "5",
		"jms.clientID": "cid", "transport.verifyHost": "false", "jms.closeTimeout": "99",
	}}
	cfg, err := parseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.secure || cfg.user != "user" || cfg.pass != "p@ss" || cfg.anonymous || cfg.addr() != "broker:5671" ||
		cfg.connectTimeout != 2*time.Second || cfg.sendTimeout != 3*time.Second || cfg.prefetch != 5 ||
		cfg.clientID != "cid" || cfg.verifyHost || cfg.trustAll {
		t.Fatalf("got %+v", cfg)
	}
	tc := cfg.tlsConfig(nil)
	if !tc.InsecureSkipVerify || tc.VerifyConnection == nil || tc.ServerName != "broker" {
		t.Fatal("verifyHost=false must verify the chain in VerifyConnection")
	}

	cfg, err = parseConfig(&model.Connection{URI: "amqp://h:5672", SpecificConfig: map[string]string{
		"jms.username": "ju", "jms.password": "jp", "amqp.saslMechanisms": "EXTERNAL,PLAIN"}})
	if err != nil || cfg.user != "ju" || cfg.pass != "jp" || cfg.anonymous {
		t.Fatalf("jms.username: %+v %v", cfg, err)
	}
	cfg, err = parseConfig(&model.Connection{URI: "amqp://h:5672"})
	if err != nil || !cfg.anonymous {
		t.Fatalf("no user-info must log in anonymously: %+v %v", cfg, err)
	}
	for _, bad := range []*model.Connection{
		{URI: "tcp://u:secret@h:1"},
		{URI: "amqp://u:secret@h:1", SpecificConfig: map[string]string{"jms.sendTimeout": "soon"}},
		{URI: "amqp://u:secret@h:1", SpecificConfig: map[string]string{"amqp.saslMechanisms": "GSSAPI"}},
	} {
		if _, err := parseConfig(bad); !errors.Is(err, client.ErrConfig) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%v: %v", bad.SpecificConfig, err)
		}
	}
	if _, err := New(client.Env{Connection: &model.Connection{URI: "amqp://h:5672",
		Credentials: &model.Credentials{Type: "hmac"}}}); !errors.Is(err, client.ErrConfig) {
		t.Fatalf("hmac: %v", err)
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	m := newMessage(map[string]string{
		"content-type": "application/json", "correlation-id": "c1", "reply-to": "r", "message-id": "m1",
		"subject": "s", "to": "dest", "group-sequence": "7", "creation-time": "1700000000000",
		"device_id": "d1", "amqp.application.property:to": "app-to", "amqp.message.annotation:x-opt": "ann",
	}, []byte("body"))
	p := m.Properties
	if *p.ContentType != "application/json" || p.CorrelationID != "c1" || *p.ReplyTo != "r" || p.MessageID != "m1" ||
		*p.Subject != "s" || *p.To != "dest" || *p.GroupSequence != 7 || p.CreationTime.UnixMilli() != 1700000000000 {
		t.Fatalf("properties: %+v", p)
	}
	if m.ApplicationProperties["device_id"] != "d1" || m.ApplicationProperties["to"] != "app-to" || len(m.ApplicationProperties) != 2 {
		t.Fatalf("application properties: %v", m.ApplicationProperties)
	}
	if m.Annotations["x-opt"] != "ann" {
		t.Fatalf("annotations: %v", m.Annotations)
	}
	h := messageHeaders(m)
	for k, v := range map[string]string{
		"content-type": "application/json", "correlation-id": "c1", "reply-to": "r", "message-id": "m1",
		"subject": "s", "to": "dest", "group-sequence": "7", "creation-time": "1700000000000",
		"device_id": "d1", "amqp.application.property:to": "app-to", "amqp.message.annotation:x-opt": "ann",
	} {
		if h[k] != v {
			t.Errorf("%s: got %q want %q", k, h[k], v)
		}
	}
	if string(payload(m)) != "body" || string(payload(&amqp.Message{Value: "text"})) != "text" {
		t.Fatal("payload")
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
	src := func(q string) string { return "/amq/queue/" + q }
	qos := 1
	conn := testConnection("amqp10-it", brokerURI,
		[]model.Source{
			{Addresses: []string{src(q1), src(q2)}, ConsumerCount: 1, QoS: &qos},
			{Addresses: []string{src(q3)}, ConsumerCount: 2},
		},
		[]model.Target{{Address: "/exchange/" + ex + "/rk"}, {Address: "/amq/queue/" + out2}, {Address: "/queue/{{ thing:id }}"}})
	conn.SpecificConfig = map[string]string{"jms.prefetchPolicy.all": "4", "jms.closeTimeout": "1000"}
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	rec.WaitEvent(t, client.Connected, time.Second)

	// A target with placeholders is attached on first use, and unknown
	// meanwhile, as in Ditto.
	for i, s := range clienttest.Entries(c, "target") {
		want, details := client.StatusOpen, client.DetailsProducerStarted
		if i == 2 {
			want, details = client.StatusUnknown, client.DetailsProducerOnDemand
		}
		if s.Address != conn.Targets[i].Address || s.Status != want || s.Details != details {
			t.Fatalf("target %d: %+v", i, s)
		}
	}

	p := newPeer(t)
	for _, q := range []string{q1, q2, q3} {
		ct, corr, reply := "application/vnd.eclipse.ditto+json", "corr-"+q, "replies"
		m := amqp.NewMessage([]byte("payload-" + q))
		m.Properties = &amqp.MessageProperties{ContentType: &ct, CorrelationID: corr, ReplyTo: &reply, MessageID: "mid-" + q}
		m.ApplicationProperties = map[string]any{"device_id": "dev-1", "count": int64(3)}
		p.send("/amq/queue/"+q, m)
	}
	for _, q := range []string{q1, q2, q3} {
		m := rec.WaitMessage(t, "payload-"+q, 5*time.Second)
		if m.Address != src(q) {
			t.Errorf("address: %q", m.Address)
		}
		for k, v := range map[string]string{
			"content-type": "application/vnd.eclipse.ditto+json", "correlation-id": "corr-" + q,
			"reply-to": "replies", "message-id": "mid-" + q, "device_id": "dev-1", "count": "3",
		} {
			if m.Headers[k] != v {
				t.Errorf("%s header %s: got %q want %q", q, k, m.Headers[k], v)
			}
		}
	}

	// Publish to an exchange, a queue and a resolved placeholder address.
	resolved := uniqueName(t, "resolved")
	a.Queue(resolved)
	for _, tc := range []struct{ address, read string }{
		{"/exchange/" + ex + "/rk", "/amq/queue/" + out1},
		{"/amq/queue/" + out2, "/amq/queue/" + out2},
		{"/queue/" + resolved, "/amq/queue/" + resolved},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Publish(ctx, client.Message{Address: tc.address, Payload: []byte("to " + tc.address),
			Headers: map[string]string{"content-type": "text/plain", "correlation-id": "pc", "thing-id": "t:1"}})
		cancel()
		if err != nil {
			t.Fatalf("Publish %s: %v", tc.address, err)
		}
		m := p.receive(tc.read)
		h := messageHeaders(m)
		if string(payload(m)) != "to "+tc.address || h["content-type"] != "text/plain" || h["correlation-id"] != "pc" ||
			h["thing-id"] != "t:1" {
			t.Fatalf("%s: %q %v", tc.address, payload(m), h)
		}
	}
	// A target the broker refuses fails the publish, not the client.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, client.Message{Address: "/exchange/" + uniqueName(t, "noex") + "/k", Payload: []byte("x")}); err == nil {
		t.Fatal("publish to a missing exchange succeeded")
	}
	if st := c.Status(); st[0].Status != client.StatusOpen {
		t.Fatalf("client after a refused target: %+v", st[0])
	}

	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Every message was accepted: nothing went back to the queues.
	a.AssertEmpty(q1, q2, q3)
}

func TestIntegrationMissingSource(t *testing.T) {
	needBroker(t)
	missing := "/amq/queue/" + uniqueName(t, "missing")
	c, _ := newTestClient(t, testConnection("missing", brokerURI,
		[]model.Source{{Addresses: []string{missing}, ConsumerCount: 1}}, nil))
	err := c.Connect(clienttest.Context(t, 10*time.Second))
	if err == nil || !strings.Contains(err.Error(), missing) {
		t.Fatalf("want an error naming the address, got %v", err)
	}
	clienttest.AssertAll(t, c, client.StatusFailed)
}

func TestIntegrationConnectionLost(t *testing.T) {
	needBroker(t)
	t.Run("source queue deleted", func(t *testing.T) {
		a := newAdmin(t)
		q := uniqueName(t, "in")
		a.Queue(q)
		c, rec := newTestClient(t, testConnection("qdel", brokerURI,
			[]model.Source{{Addresses: []string{"/amq/queue/" + q}, ConsumerCount: 1}}, nil))
		if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		// The broker registers the link's consumer a little after the attach;
		// a queue deleted before that has nobody to detach.
		poll.Check(t, 10*time.Second, func() error {
			info, err := a.Channel().QueueDeclarePassive(q, false, false, false, false, nil)
			if err == nil && info.Consumers == 0 {
				err = fmt.Errorf("no consumer on %s", q)
			}
			return err
		})
		if _, err := a.Channel().QueueDelete(q, false, false, false); err != nil {
			t.Fatal(err)
		}
		if ev := rec.WaitEvent(t, client.ConnectionLost, 10*time.Second); ev.Err == nil {
			t.Fatal("ConnectionLost without a cause")
		}
		clienttest.AssertAll(t, c, client.StatusFailed)
	})
}
