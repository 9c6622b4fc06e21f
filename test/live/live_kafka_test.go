package live

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// kafkaTopicsOf are the topics of the connection ids the Kafka checklist
// uses; every cluster of the test has them (dittoconn does not ask for
// topics to be created).
func kafkaTopicsOf(ids ...string) []string {
	var ts []string
	for _, id := range ids {
		ts = append(ts, "in-"+id, "announce-"+id)
	}
	return ts
}

var kafkaTopics = kafkaTopicsOf("kafka-test-ok", "kafka-test-cred", "kafka-test-unreach", "kafka-live-1", "kafka-retry-1", "kafka-reopen-1")

// startKfake starts franz-go's in-process Kafka cluster (one broker),
// closed when the test ends.
func startKfake(t *testing.T, opts ...kfake.Opt) *kfake.Cluster {
	t.Helper()
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(1, kafkaTopics...)}, opts...)...)
	if err != nil {
		t.Fatalf("kfake cluster: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// kafkaBroker is a one-broker kfake cluster on a fixed port: Down closes
// it, Up starts a new, empty one on the same port.
type kafkaBroker struct {
	t    *testing.T
	port int
	mu   sync.Mutex
	c    *kfake.Cluster
}

func startKafkaBroker(t *testing.T) *kafkaBroker {
	t.Helper()
	b := &kafkaBroker{t: t, port: blackbox.FreePort(t)}
	b.Up()
	return b
}

func (b *kafkaBroker) Addr() string { return fmt.Sprintf("127.0.0.1:%d", b.port) }

func (b *kafkaBroker) Up() {
	b.t.Helper()
	var c *kfake.Cluster
	poll.Until(b.t, 10*time.Second, "kfake on port "+strconv.Itoa(b.port), func() bool {
		var err error
		c, err = kfake.NewCluster(kfake.Ports(b.port), kfake.SeedTopics(1, kafkaTopics...))
		return err == nil
	})
	b.t.Cleanup(c.Close)
	b.mu.Lock()
	b.c = c
	b.mu.Unlock()
}

func (b *kafkaBroker) Down() {
	b.mu.Lock()
	c := b.c
	b.mu.Unlock()
	c.Close()
}

// listenKafka consumes topic from its start on the broker at addr.
func listenKafka(t *testing.T, addr, topic string) announcementReader {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafka consumer: %v", err)
	}
	t.Cleanup(cl.Close)
	var buf [][]byte
	return func(within time.Duration) []byte {
		if len(buf) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), within)
			fs := cl.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) { buf = append(buf, r.Value) })
		}
		if len(buf) == 0 {
			return nil
		}
		v := buf[0]
		buf = buf[1:]
		return v
	}
}

func kafkaConnection(id, status, addr, login string) map[string]any {
	uri := "tcp://" + addr
	sc := map[string]any{"bootstrapServers": addr}
	if login != "" {
		uri = "tcp://" + login + "@" + addr
		sc["saslMechanism"] = "PLAIN"
	}
	return map[string]any{
		"id":               id,
		"connectionType":   "kafka",
		"connectionStatus": status,
		"uri":              uri,
		"specificConfig":   sc,
		"sources": []any{map[string]any{
			"addresses":            []string{"in-" + id},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  1,
		}},
		"targets": []any{map[string]any{
			"address":              "announce-{{ connection:id }}",
			"topics":               []string{"_/_/connections/announcements", "_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"},
		}},
	}
}

// TestIntegrationKafka runs the live checklist against kfake clusters of
// the test: the outage closes the cluster and starts a new one on its port.
func TestIntegrationKafka(t *testing.T) {
	broker := startKafkaBroker(t)
	testLiveBroker(t, liveCase{
		typ:    "kafka",
		prefix: "kafka",
		conn:   kafkaConnection,
		good:   func(*testing.T) (string, string) { return broker.Addr(), "" },
		creds: func(t *testing.T) (string, string, string) {
			c := startKfake(t, kfake.EnableSASL(), kfake.Superuser("PLAIN", "ditto", "right-pw"))
			return c.ListenAddrs()[0], "ditto:right-pw", "ditto:wrong-pw"
		},
		link: func(*testing.T) brokerLink { return broker },
		listen: func(t *testing.T, link brokerLink, id string) announcementReader {
			return listenKafka(t, link.Addr(), "announce-"+id)
		},
		sources:     func(id string) []string { return []string{"in-" + id} },
		targets:     []string{"announce-{{ connection:id }}"},
		noticeDown:  20 * time.Second,
		freshBroker: true,
	})
}
