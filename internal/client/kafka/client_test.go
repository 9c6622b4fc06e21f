package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		in        string
		topic     string
		key       string
		hasKey    bool
		partition int32
	}{
		{"events", "events", "", false, -1},
		{"events/thing:1", "events", "thing:1", true, -1},
		{"events/a/b", "events", "a/b", true, -1},
		{"events#3", "events", "", false, 3},
	} {
		got, err := parseTarget(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got.topic != tc.topic || string(got.key) != tc.key || (got.key != nil) != tc.hasKey || got.partition != tc.partition {
			t.Errorf("%s: got %+v", tc.in, got)
		}
	}
	for _, bad := range []string{"events#x", "events#-1", "", "/key", "#1"} {
		if _, err := parseTarget(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestParseConfig(t *testing.T) {
	conn := &model.Connection{ID: "conn-1", URI: "tcp://user:secret@h:9092", SpecificConfig: map[string]string{
		"bootstrapServers": "a:9092, b:9093", "saslMechanism": "scram-sha-512",
	}}
	cfg, err := parseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.seeds, ",") != "a:9092,b:9093" || cfg.mechanism != "SCRAM-SHA-512" || cfg.sasl == nil ||
		cfg.groupID != "conn-1" || cfg.secure {
		t.Fatalf("got %+v", cfg)
	}
	if cfg.reset != kgo.NewOffset().AtEnd() {
		t.Fatal("default reset must be latest")
	}
	conn = &model.Connection{ID: "c", URI: "ssl://h:9093", SpecificConfig: map[string]string{
		"groupId": "g", "consumerOffsetReset": "earliest",
	}}
	cfg, err = parseConfig(conn)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.secure || cfg.sasl != nil || cfg.groupID != "g" || cfg.seeds[0] != "h:9093" || cfg.reset != kgo.NewOffset().AtStart() {
		t.Fatalf("got %+v", cfg)
	}
	for _, bad := range []*model.Connection{
		{URI: "amqp://u:secret@h:1"},
		{URI: "tcp://u:secret@h:1", SpecificConfig: map[string]string{"saslMechanism": "GSSAPI"}},
		{URI: "tcp://u:secret@h:1", SpecificConfig: map[string]string{"consumerOffsetReset": "middle"}},
	} {
		_, err := parseConfig(bad)
		if !errors.Is(err, client.ErrConfig) || strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: %v", bad.URI, err)
		}
	}
}

func TestIntegrationConsumePublish(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "in1", "in2", "in3", "out"))
	admin := adminClient(t, cluster)
	qos1 := 1
	conn := testConnection("kafka-it", "tcp://"+cluster.ListenAddrs()[0], cluster.ListenAddrs(),
		[]model.Source{
			{Addresses: []string{"in1", "in2"}, ConsumerCount: 1, QoS: &qos1},
			{Addresses: []string{"in3"}, ConsumerCount: 2},
		},
		[]model.Target{{Address: "out"}, {Address: "out/key-1"}, {Address: "out#1"}})
	conn.SpecificConfig[cfgGroupID] = "group-it"
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	rec.WaitEvent(t, client.Connected, time.Second)

	// Consume from every source address: key, topic and headers.
	for _, topic := range []string{"in1", "in2", "in3"} {
		produce(t, admin, &kgo.Record{Topic: topic, Key: []byte("k-" + topic), Value: []byte("payload-" + topic),
			Headers: []kgo.RecordHeader{{Key: "content-type", Value: []byte("application/json")},
				{Key: "device_id", Value: []byte("dev-1")}}})
	}
	for _, topic := range []string{"in1", "in2", "in3"} {
		m := rec.WaitMessage(t, "payload-"+topic, 10*time.Second)
		if m.Address != topic || m.Headers["kafka.topic"] != topic || m.Headers["kafka.key"] != "k-"+topic ||
			m.Headers["content-type"] != "application/json" || m.Headers["device_id"] != "dev-1" ||
			m.Headers["kafka.timestamp"] == "" {
			t.Fatalf("message from %s: %+v", topic, m)
		}
		if topic == "in1" && (m.QoS == nil || *m.QoS != 1) {
			t.Fatalf("qos: %v", m.QoS)
		}
	}
	// qos 1: the offsets are committed after processing.
	adm := kadm.NewClient(admin)
	poll.Check(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, "group-it")
		if err != nil {
			return err
		}
		var committed int64
		offs.Each(func(o kadm.OffsetResponse) {
			if o.Topic == "in1" || o.Topic == "in2" {
				committed += o.At
			}
		})
		if committed != 2 {
			return fmt.Errorf("in1+in2 committed offsets sum to %d", committed)
		}
		return nil
	})

	// Publish to every target form.
	for _, target := range []string{"out", "out/key-1", "out#1"} {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Publish(ctx, client.Message{Address: target, Payload: []byte("to " + target),
			Headers: map[string]string{"content-type": "text/plain", "correlation-id": "c-1"}})
		cancel()
		if err != nil {
			t.Fatalf("Publish %s: %v", target, err)
		}
	}
	got := map[string]*kgo.Record{}
	for _, r := range consumeN(t, cluster, "out", 3) {
		got[string(r.Value)] = r
	}
	headers := func(r *kgo.Record) map[string]string {
		h := map[string]string{}
		for _, kv := range r.Headers {
			h[kv.Key] = string(kv.Value)
		}
		return h
	}
	for _, target := range []string{"out", "out/key-1", "out#1"} {
		r := got["to "+target]
		if r == nil {
			t.Fatalf("nothing from %s in %v", target, got)
		}
		if h := headers(r); h["content-type"] != "text/plain" || h["correlation-id"] != "c-1" {
			t.Fatalf("%s headers: %v", target, h)
		}
		switch target {
		case "out":
			if r.Key != nil {
				t.Fatalf("out: key %q", r.Key)
			}
		case "out/key-1":
			if string(r.Key) != "key-1" {
				t.Fatalf("key: %q", r.Key)
			}
		case "out#1":
			if r.Partition != 1 {
				t.Fatalf("partition: %d", r.Partition)
			}
		}
	}
	// A partition the topic does not have fails the publish.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, client.Message{Address: "out#7", Payload: []byte("x")}); err == nil {
		t.Fatal("publish to partition 7 of a 2-partition topic succeeded")
	}

}

func TestIntegrationSASL(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "t"), kfake.EnableSASL(),
		kfake.Superuser("PLAIN", "plainuser", "plainpw"),
		kfake.Superuser("SCRAM-SHA-256", "scram256", "pw256"),
		kfake.Superuser("SCRAM-SHA-512", "scram512", "pw512"))
	addr := cluster.ListenAddrs()[0]
	for _, tc := range []struct{ mechanism, user, pass string }{
		{"", "plainuser", "plainpw"},
		{"PLAIN", "plainuser", "plainpw"},
		{"SCRAM-SHA-256", "scram256", "pw256"},
		{"scram-sha-512", "scram512", "pw512"},
	} {
		t.Run("ok "+tc.mechanism, func(t *testing.T) {
			conn := testConnection("sasl", "tcp://"+tc.user+":"+tc.pass+"@"+addr, []string{addr},
				[]model.Source{{Addresses: []string{"t"}, ConsumerCount: 1}}, []model.Target{{Address: "t"}})
			conn.SpecificConfig[cfgSASLMechanism] = tc.mechanism
			c, _ := newTestClient(t, conn)
			if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
				t.Fatalf("Connect: %v", err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := c.Publish(ctx, client.Message{Address: "t", Payload: []byte("x")}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
		})
		t.Run("wrong password "+tc.mechanism, func(t *testing.T) {
			conn := testConnection("sasl", "tcp://"+tc.user+":not-the-password@"+addr, []string{addr}, nil,
				[]model.Target{{Address: "t"}})
			conn.SpecificConfig[cfgSASLMechanism] = tc.mechanism
			c, _ := newTestClient(t, conn)
			err := c.Connect(clienttest.Context(t, 10*time.Second))
			if !errors.Is(err, client.ErrUnauthorized) {
				t.Fatalf("want ErrUnauthorized, got %v", err)
			}
			if strings.Contains(err.Error(), "not-the-password") {
				t.Fatalf("error leaks the password: %v", err)
			}
		})
	}
}

func TestIntegrationClusterClosed(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	if err != nil {
		t.Fatal(err)
	}
	addr := cluster.ListenAddrs()[0]
	c, rec := newTestClient(t, testConnection("lost", "tcp://"+addr, []string{addr},
		[]model.Source{{Addresses: []string{"in"}, ConsumerCount: 1}}, []model.Target{{Address: "in"}}))
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	cluster.Close()
	ev := rec.WaitEvent(t, client.ConnectionLost, 15*time.Second)
	if !errors.Is(ev.Err, client.ErrUnreachable) {
		t.Fatalf("cause: %v", ev.Err)
	}
	clienttest.AssertAll(t, c, client.StatusFailed)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Close(ctx); err != nil {
		t.Fatalf("Close after loss: %v", err)
	}
}
