package live

import (
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"testing"
	"time"

	amqp10 "github.com/Azure/go-amqp"
	paho5 "github.com/eclipse/paho.golang/paho"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Data plane end to end over MQTT 5 and AMQP 1.0: a source of one
// connection consumes Ditto Protocol twin events from the real broker
// (enforced against a header of the broker's message, header-mapped), a
// target of another connection publishes the events its namespaces and RQL
// filter let through, addressed and header-mapped by placeholders, to the
// same broker; the test reads them with a client of the protocol.

// dpTemp is a twin event of thing's temperature with a correlation id.
func dpTemp(thing string, value int) []byte { return []byte(blackbox.TwinEvent(thing, value)) }

// dpWaitCounts waits until the PT1M counts of address ("type/level" →
// count) are all as wanted, and fails with the last ones seen otherwise.
func dpWaitCounts(t *testing.T, n *kit.Node, id, dir, address string, want map[string]int) {
	t.Helper()
	poll.Check(t, 15*time.Second, func() error {
		m := dpMetrics(t, n, id)
		got := map[string]int{}
		for k := range want {
			typ, level, _ := strings.Cut(k, "/")
			got[k] = dpCount(m, dir, address, typ, level)
		}
		if maps.Equal(got, want) {
			return nil
		}
		return fmt.Errorf("%s %s %s: counts %v, want %v", id, dir, address, got, want)
	})
}

// mqtt5Client is a test client speaking MQTT 5 (paho.golang); received
// publishes go to msgs.
type mqtt5Client struct {
	c    *paho5.Client
	msgs chan *paho5.Publish
}

func newMQTT5Client(t *testing.T, addr string) *mqtt5Client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("MQTT 5 test client: %v", err)
	}
	m := &mqtt5Client{msgs: make(chan *paho5.Publish, 100)}
	m.c = paho5.NewClient(paho5.ClientConfig{Conn: conn, OnPublishReceived: []func(paho5.PublishReceived) (bool, error){
		func(pr paho5.PublishReceived) (bool, error) { m.msgs <- pr.Packet; return true, nil }}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ca, err := m.c.Connect(ctx, &paho5.Connect{ClientID: fmt.Sprintf("test-m5-%d", time.Now().UnixNano()),
		CleanStart: true, KeepAlive: 30})
	if err != nil || ca.ReasonCode != 0 {
		t.Fatalf("MQTT 5 test client connect: %v %v", err, ca)
	}
	t.Cleanup(func() { _ = m.c.Disconnect(&paho5.Disconnect{ReasonCode: 0}) })
	return m
}

func (m *mqtt5Client) subscribe(t *testing.T, filter string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.c.Subscribe(ctx, &paho5.Subscribe{Subscriptions: []paho5.SubscribeOptions{{Topic: filter, QoS: 1}}}); err != nil {
		t.Fatalf("MQTT 5 subscribe %s: %v", filter, err)
	}
}

func (m *mqtt5Client) publish(t *testing.T, topic string, payload []byte, user map[string]string) {
	t.Helper()
	m.publishWith(t, topic, payload, user, &paho5.PublishProperties{})
}

// publishWith publishes with the given properties plus a JSON content type
// and user properties.
func (m *mqtt5Client) publishWith(t *testing.T, topic string, payload []byte, user map[string]string, props *paho5.PublishProperties) {
	t.Helper()
	props.ContentType = "application/json"
	for k, v := range user {
		props.User.Add(k, v)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := m.c.Publish(ctx, &paho5.Publish{Topic: topic, QoS: 1, Payload: payload, Properties: props}); err != nil {
		t.Fatalf("MQTT 5 publish to %s: %v", topic, err)
	}
}

// TestIntegrationDataPlaneMQTT5: MQTT 5 source → enforcement on a user
// property → bus → MQTT 5 target with namespaces and RQL filter; the
// target's header mapping arrives as user properties, correlation data and
// content type.
func TestIntegrationDataPlaneMQTT5(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	srcID, tgtID := dpID("m5-src"), dpID("m5-tgt")
	in, outPrefix := "dp/"+run+"/m5/in/#", "dp/"+run+"/m5/out/"
	auth := []string{"nginx:ditto"}
	dpOpen(t, n, map[string]any{"id": srcID, "connectionType": "mqtt-5", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": srcID},
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth, "qos": 1,
			"enforcement":   map[string]any{"input": "{{ header:device-id }}", "filters": []string{"{{ thing:id }}"}},
			"headerMapping": map[string]any{"device-id": "{{ header:device-id }}"}}}})
	tgt := outPrefix + "{{ thing:id }}"
	dpOpen(t, n, map[string]any{"id": tgtID, "connectionType": "mqtt-5", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": tgtID},
		"targets": []any{map[string]any{"address": tgt, "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/twin/events?namespaces=org.acme&filter=gt(features/temp/properties/value,20)"},
			"headerMapping": map[string]any{"thing": "{{ thing:id }}", "action": "{{ topic:action }}",
				"device": "{{ header:device-id }}", "correlation-id": "{{ header:correlation-id }}"}}}})
	sub := newMQTT5Client(t, "127.0.0.1:1883")
	sub.subscribe(t, outPrefix+"#")
	dev := newMQTT5Client(t, "127.0.0.1:1883")
	topic := "dp/" + run + "/m5/in/dev"

	dev.publish(t, topic, dpTemp("org.acme:m5-2", 22), map[string]string{"device-id": "org.acme:m5-1"}) // not its thing: enforcement fails
	dev.publish(t, topic, dpTemp("org.acme:m5-1", 19), map[string]string{"device-id": "org.acme:m5-1"}) // filter: not above 20
	dev.publish(t, topic, dpTemp("other:m5-3", 30), map[string]string{"device-id": "other:m5-3"})       // namespace not subscribed
	dev.publish(t, topic, dpTemp("org.acme:m5-1", 21), map[string]string{"device-id": "org.acme:m5-1"}) // through

	var got *paho5.Publish
	select {
	case got = <-sub.msgs:
	case <-time.After(15 * time.Second):
		t.Fatal("no event reached the MQTT 5 target")
	}
	if got.Topic != outPrefix+"org.acme:m5-1" {
		t.Errorf("published to %q", got.Topic)
	}
	body := blackbox.Decode(t, got.Payload)
	blackbox.WantField(t, body, "org.acme/m5-1/things/twin/events/modified", "topic")
	blackbox.WantField(t, body, float64(21), "value")
	blackbox.WantField(t, body, "org.acme:m5-1", "headers", "device-id")
	p := got.Properties
	if p == nil || p.ContentType != "application/vnd.eclipse.ditto+json" || string(p.CorrelationData) != "c-m5-1-21" ||
		p.User.Get("thing") != "org.acme:m5-1" || p.User.Get("action") != "modified" || p.User.Get("device") != "org.acme:m5-1" {
		t.Errorf("properties %+v", p)
	}

	dpWaitCounts(t, n, srcID, "source", in, map[string]int{"consumed/success": 4, "mapped/success": 4,
		"mapped/failure": 0, "enforced/success": 3, "enforced/failure": 1})
	dpWaitCounts(t, n, tgtID, "target", tgt, map[string]int{"dispatched/success": 3, "filtered/success": 1,
		"mapped/success": 1, "published/success": 1, "published/failure": 0})
	select {
	case m := <-sub.msgs:
		t.Errorf("a filtered event was published: %s %s", m.Topic, m.Payload)
	case <-time.After(300 * time.Millisecond):
	}
	if c := dpLogCount(dpLogs(t, n, srcID), "source", "enforced", "failure", in); c != 1 {
		t.Errorf("%d enforcement failure log entries, want 1", c)
	}

	// a twin command with a response topic and correlation data: no twin
	// store, answered with 501 on the response topic (the reply target
	// {{ header:reply-to }}), correlation data kept
	replyTopic := "dp/" + run + "/m5/reply"
	replies := newMQTT5Client(t, "127.0.0.1:1883")
	replies.subscribe(t, replyTopic)
	dev.publishWith(t, topic, []byte(`{"topic":"org.acme/m5-1/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":1}`),
		map[string]string{"device-id": "org.acme:m5-1"},
		&paho5.PublishProperties{ResponseTopic: replyTopic, CorrelationData: []byte("cmd-m5-1")})
	select {
	case r := <-replies.msgs:
		resp := blackbox.Decode(t, r.Payload)
		blackbox.WantField(t, resp, "org.acme/m5-1/things/twin/errors", "topic")
		blackbox.WantField(t, resp, float64(501), "status")
		if r.Properties == nil || string(r.Properties.CorrelationData) != "cmd-m5-1" {
			t.Errorf("response properties %+v", r.Properties)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no error response on the response topic")
	}
	// the enforcement failure had no response topic: its error response was dropped
	dpWaitCounts(t, n, srcID, "target", "_responses", map[string]int{"dispatched/failure": 2, "dropped/failure": 1,
		"published/success": 1})
}

// amqp10Session opens an AMQP 1.0 session of the test to RabbitMQ.
func amqp10Session(t *testing.T) *amqp10.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := amqp10.Dial(ctx, "amqp://"+rabbitAddr, &amqp10.ConnOptions{SASLType: amqp10.SASLTypePlain("guest", "guest")})
	if err != nil {
		t.Fatalf("AMQP 1.0 test connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	s, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("AMQP 1.0 test session: %v", err)
	}
	return s
}

// amqp10Receive waits for the next message of r and accepts it.
func amqp10Receive(t *testing.T, r *amqp10.Receiver, within time.Duration, what string) *amqp10.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	m, err := r.Receive(ctx, nil)
	if err != nil {
		t.Fatalf("%s: nothing received within %v: %v", what, within, err)
	}
	_ = r.AcceptMessage(context.Background(), m)
	return m
}

// TestIntegrationDataPlaneAMQP10: AMQP 1.0 source (a RabbitMQ queue) →
// enforcement on an application property → bus → AMQP 1.0 target (an
// exchange, routing key from a placeholder) with an RQL filter; the target's
// header mapping arrives as message properties and application properties.
// A twin command consumed by the source is answered with Ditto's error at
// its reply-to address.
func TestIntegrationDataPlaneAMQP10(t *testing.T) {
	needAMQP10(t)
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	a := newRabbitAdmin(t)
	qin, qout, qreply, ex := uniqueRabbitName("dpin"), uniqueRabbitName("dpout"), uniqueRabbitName("dpreply"), uniqueRabbitName("dpex")
	for _, q := range []string{qin, qout, qreply} {
		a.queue(q)
	}
	a.exchange(ex)
	a.do("bind "+qout, func(ch *amqp.Channel) error { return ch.QueueBind(qout, "org.acme", ex, false, nil) })

	srcID, tgtID := dpID("a10-src"), dpID("a10-tgt")
	in := "/amq/queue/" + qin
	auth := []string{"nginx:ditto"}
	uri := "amqp://" + rabbitLogin + "@" + rabbitAddr
	dpOpen(t, n, map[string]any{"id": srcID, "connectionType": "amqp-10", "uri": uri,
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth,
			"enforcement":   map[string]any{"input": "{{ header:device-id }}", "filters": []string{"{{ thing:id }}"}},
			"headerMapping": map[string]any{"device-id": "{{ header:device-id }}"}}}})
	tgt := "/exchange/" + ex + "/{{ thing:namespace }}"
	dpOpen(t, n, map[string]any{"id": tgtID, "connectionType": "amqp-10", "uri": uri,
		"targets": []any{map[string]any{"address": tgt, "authorizationContext": auth,
			"topics": []string{"_/_/things/twin/events?filter=gt(features/temp/properties/value,20)"},
			"headerMapping": map[string]any{"thing": "{{ thing:id }}", "subject": "{{ topic:action }}",
				"device": "{{ header:device-id }}", "correlation-id": "{{ header:correlation-id }}"}}}})

	sess := amqp10Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	snd, err := sess.NewSender(ctx, in, nil)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	out, err := sess.NewReceiver(ctx, "/amq/queue/"+qout, nil)
	if err != nil {
		t.Fatalf("receiver: %v", err)
	}
	replies, err := sess.NewReceiver(ctx, "/amq/queue/"+qreply, nil)
	if err != nil {
		t.Fatalf("reply receiver: %v", err)
	}
	send := func(body []byte, props map[string]any, p *amqp10.MessageProperties) {
		t.Helper()
		m := amqp10.NewMessage(body)
		m.ApplicationProperties = props
		m.Properties = p
		if err := snd.Send(ctx, m, nil); err != nil {
			t.Fatalf("send: %v", err)
		}
	}
	ct := "application/json"
	dev := map[string]any{"device-id": "org.acme:a10-1"}
	send(dpTemp("org.acme:a10-2", 22), dev, &amqp10.MessageProperties{ContentType: &ct}) // enforcement fails
	send(dpTemp("org.acme:a10-1", 19), dev, &amqp10.MessageProperties{ContentType: &ct}) // filtered out
	send(dpTemp("org.acme:a10-1", 21), dev, &amqp10.MessageProperties{ContentType: &ct}) // through

	got := amqp10Receive(t, out, 15*time.Second, "the routed event")
	body := blackbox.Decode(t, got.GetData())
	blackbox.WantField(t, body, "org.acme/a10-1/things/twin/events/modified", "topic")
	blackbox.WantField(t, body, float64(21), "value")
	p := got.Properties
	if p == nil || p.Subject == nil || *p.Subject != "modified" || fmt.Sprint(p.CorrelationID) != "c-a10-1-21" ||
		p.ContentType == nil || *p.ContentType != "application/vnd.eclipse.ditto+json" {
		t.Errorf("message properties %+v", p)
	}
	if ap := got.ApplicationProperties; ap["thing"] != "org.acme:a10-1" || ap["device"] != "org.acme:a10-1" {
		t.Errorf("application properties %v", ap)
	}

	// a twin command: no twin store, answered with 501 at reply-to
	replyTo, cid := "/amq/queue/"+qreply, "cmd-a10-1"
	send([]byte(`{"topic":"org.acme/a10-1/things/twin/commands/modify","headers":{},"path":"/attributes/a","value":1}`),
		dev, &amqp10.MessageProperties{ContentType: &ct, ReplyTo: &replyTo, CorrelationID: cid})
	r := amqp10Receive(t, replies, 15*time.Second, "the error response")
	resp := blackbox.Decode(t, r.GetData())
	blackbox.WantField(t, resp, "org.acme/a10-1/things/twin/errors", "topic")
	blackbox.WantField(t, resp, float64(501), "status")
	if r.Properties == nil || fmt.Sprint(r.Properties.CorrelationID) != cid {
		t.Errorf("response properties %+v", r.Properties)
	}

	dpWaitCounts(t, n, srcID, "source", in, map[string]int{"consumed/success": 4, "mapped/success": 4,
		"mapped/failure": 0, "enforced/success": 3, "enforced/failure": 1, "dropped/failure": 1})
	// two error responses: the enforcement failure's has no reply-to (dropped), the twin command's is published
	dpWaitCounts(t, n, srcID, "target", "_responses", map[string]int{"dispatched/failure": 2, "dropped/failure": 1,
		"published/success": 1})
	dpWaitCounts(t, n, tgtID, "target", tgt, map[string]int{"dispatched/success": 2, "filtered/success": 1,
		"mapped/success": 1, "published/success": 1, "published/failure": 0})
	short, cancelShort := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelShort()
	if m, err := out.Receive(short, nil); err == nil {
		t.Errorf("a filtered event was published: %s", m.GetData())
	}
}
