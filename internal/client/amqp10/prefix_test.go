package amqp10

import (
	"context"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestTargetNodeOfTopicAndQueuePrefixes: as Ditto's JMS client does, a
// target "topic://x" or "queue://x" sends to node x, any other address to
// the node of its own name, and Qpid JMS's jms.topicPrefix/jms.queuePrefix
// are prepended unless already there.
func TestTargetNodeOfTopicAndQueuePrefixes(t *testing.T) {
	plain := config{}
	prefixed := config{queuePrefix: "/queue/", topicPrefix: "/topic/"}
	for _, tc := range []struct {
		cfg           config
		address, node string
	}{
		{plain, "topic:///exchange/amq.topic/rk", "/exchange/amq.topic/rk"},
		{plain, "queue:///queue/q", "/queue/q"},
		{plain, "/amq/queue/q", "/amq/queue/q"},
		{plain, "topic://a/topic://b", "a/b"},
		{prefixed, "topic://rk", "/topic/rk"},
		{prefixed, "topic:///topic/rk", "/topic/rk"},
		{prefixed, "queue://q", "/queue/q"},
		{prefixed, "q", "/queue/q"},
	} {
		if got := tc.cfg.node(tc.address); got != tc.node {
			t.Errorf("%+v %q: node %q, want %q", tc.cfg, tc.address, got, tc.node)
		}
	}
	cfg, err := parseConfig(&model.Connection{URI: "amqp://h:5672",
		SpecificConfig: map[string]string{"jms.queuePrefix": "/queue/", "jms.topicPrefix": "/topic/"}})
	if err != nil || cfg.queuePrefix != "/queue/" || cfg.topicPrefix != "/topic/" {
		t.Fatalf("parseConfig: %+v %v", cfg, err)
	}
}

// TestIntegrationTopicAndQueueTargetPrefixes: against RabbitMQ's AMQP 1.0
// plugin, messages to "topic://…" and "queue://…" targets reach the node
// named after the prefix (an exchange with a routing key, a queue), and
// with jms.topicPrefix "/topic/" a "topic://rk" target reaches amq.topic
// with routing key rk, as they would from Ditto.
func TestIntegrationTopicAndQueueTargetPrefixes(t *testing.T) {
	needBroker(t)
	a := newAdmin(t)
	viaExchange, viaQueue, viaTopic := uniqueName(t, "ex-out"), uniqueName(t, "q-out"), uniqueName(t, "topic-out")
	ex := uniqueName(t, "ex")
	for _, q := range []string{viaExchange, viaQueue, viaTopic} {
		a.Queue(q)
	}
	a.Exchange(ex, "direct")
	a.Bind(viaExchange, "rk", ex)
	a.Bind(viaTopic, viaTopic, "amq.topic")
	p := newPeer(t)
	for _, tc := range []struct {
		specific map[string]string
		address  string
		read     string
	}{
		{nil, "topic:///exchange/" + ex + "/rk", viaExchange},
		{nil, "queue:///queue/" + viaQueue, viaQueue},
		{map[string]string{"jms.topicPrefix": "/topic/"}, "topic://" + viaTopic, viaTopic},
	} {
		conn := testConnection("amqp10-prefixes", brokerURI, nil, []model.Target{{Address: tc.address}})
		conn.SpecificConfig = tc.specific
		c, _ := newTestClient(t, conn)
		if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		// the sender attaches to the node at connect
		if s := clienttest.Entries(c, "target")[0]; s.Status != client.StatusOpen {
			t.Fatalf("%s: %+v", tc.address, s)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Publish(ctx, client.Message{Address: tc.address, Payload: []byte("to " + tc.read)})
		cancel()
		if err != nil {
			t.Fatalf("Publish %s: %v", tc.address, err)
		}
		if m := p.receive("/amq/queue/" + tc.read); string(payload(m)) != "to "+tc.read {
			t.Fatalf("%s: queue %s received %q", tc.address, tc.read, payload(m))
		}
		_ = c.Close(clienttest.Context(t, 5*time.Second))
	}
}
