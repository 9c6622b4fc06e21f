package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	amqp10 "github.com/Azure/go-amqp"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// AMQP 1.0 source (a RabbitMQ queue) → HTTP push target issuing the
// requested label; the endpoint answers 503 for 5 s, then 200 again: every
// message is answered 200 at least once (AMQP 1.0 released → redelivered).
func TestIntegrationAckProofAMQP10ToHTTP(t *testing.T) {
	needAMQP10(t)
	const n = 50
	var failing atomic.Bool
	ok := blackbox.NewArrivals()
	var refused atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if failing.Load() {
			refused.Add(1)
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		ok.AddPayload(t, b)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(srv.Close)

	n0 := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	a := newRabbitAdmin(t)
	qin := uniqueRabbitName("ackp-a10")
	a.queue(qin)
	run := fmt.Sprint(runID)
	reqID, issID := dpID("apa-req"), dpID("apa-iss")
	auth := []string{"nginx:ditto"}
	in := "/amq/queue/" + qin
	dpOpen(t, n0, map[string]any{"id": issID, "connectionType": "http-push", "uri": srv.URL,
		"targets": []any{map[string]any{"address": "POST:/ticks/{{ thing:id }}", "authorizationContext": auth,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	dpOpen(t, n0, map[string]any{"id": reqID, "connectionType": "amqp-10", "uri": "amqp://" + rabbitLogin + "@" + rabbitAddr,
		"sources": []any{map[string]any{"addresses": []string{in}, "authorizationContext": auth,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}}}}})

	sess := amqp10Session(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	snd, err := sess.NewSender(ctx, in, nil)
	if err != nil {
		t.Fatalf("sender: %v", err)
	}
	ct := "application/json"
	pub := func(from, to int) {
		for i := from; i < to; i++ {
			m := amqp10.NewMessage([]byte(ackProofMessage(run, i, "2s")))
			m.Properties = &amqp10.MessageProperties{ContentType: &ct}
			if err := snd.Send(ctx, m, nil); err != nil {
				t.Fatalf("send %d: %v", i, err)
			}
		}
	}

	pub(0, 10)
	ok.WaitAll(t, 10, 15*time.Second)
	failing.Store(true)
	cut := time.Now()
	pub(10, 40)
	time.Sleep(time.Until(cut.Add(5 * time.Second)))
	failing.Store(false)
	pub(40, n)

	total := ok.WaitAll(t, n, 25*time.Second)
	m := waitSourceAcks(t, n0, reqID, in, n)
	if refused.Load() == 0 {
		t.Errorf("no request was answered 503: the outage was not exercised")
	}
	if f := dpCount(m, "source", in, "acknowledged", "failure"); f == 0 {
		t.Errorf("no acknowledged failure at the source during the outage")
	}
	wantDuplicatesBounded(t, n, total, dpCount(m, "source", in, "consumed", "success"))
}

// kafkaOnPort is a one-broker kfake cluster on a fixed port with the given
// topics: down closes it (its records go with it), up starts an empty one.
type kafkaOnPort struct {
	t      *testing.T
	port   int
	topics []string
	c      *kfake.Cluster
}

func (k *kafkaOnPort) addr() string { return "127.0.0.1:" + strconv.Itoa(k.port) }

func (k *kafkaOnPort) up() {
	k.t.Helper()
	poll.Until(k.t, 10*time.Second, "kfake on "+k.addr(), func() bool {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(k.port), kfake.SeedTopics(1, k.topics...))
		if err == nil {
			k.c = c
			k.t.Cleanup(c.Close)
		}
		return err == nil
	})
}

// consume records every record of topic on the current cluster into got
// until the returned stop is called.
func (k *kafkaOnPort) consume(t *testing.T, topic string, got *blackbox.Arrivals) (stop func()) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.addr()), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatalf("kafka consumer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { got.AddPayload(t, r.Value) })
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait(); cl.Close() }) }
	t.Cleanup(stop)
	return stop
}

// AMQP 0.9.1 source (a RabbitMQ queue) → Kafka target issuing the requested
// label; the Kafka broker is down for 5 s: every message reaches Kafka at
// least once (AMQP 0.9.1 nack with requeue → redelivered).
func TestIntegrationAckProofAMQP091ToKafka(t *testing.T) {
	blackbox.NeedBroker(t, "RabbitMQ", rabbitAddr)
	const n = 50
	run := fmt.Sprint(runID)
	topic := "ackp-" + run
	kb := &kafkaOnPort{t: t, port: blackbox.FreePort(t), topics: []string{topic}}
	kb.up()
	got := blackbox.NewArrivals()
	stopFirst := kb.consume(t, topic, got)

	n0 := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	a := newRabbitAdmin(t)
	qin := uniqueRabbitName("ackp-091")
	a.queue(qin)
	reqID, issID := dpID("apk-req"), dpID("apk-iss")
	auth := []string{"nginx:ditto"}
	dpOpen(t, n0, map[string]any{"id": issID, "connectionType": "kafka", "uri": "tcp://" + kb.addr(),
		"specificConfig": map[string]any{"bootstrapServers": kb.addr()},
		"targets": []any{map[string]any{"address": topic + "/{{ thing:id }}", "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/live/messages"}, "issuedAcknowledgementLabel": "{{connection:id}}:ack"}}})
	dpOpen(t, n0, map[string]any{"id": reqID, "connectionType": "amqp-091", "uri": "amqp://" + rabbitLogin + "@" + rabbitAddr + "/",
		"sources": []any{map[string]any{"addresses": []string{qin}, "authorizationContext": auth,
			"acknowledgementRequests": map[string]any{"includes": []string{issID + ":ack"}}}}})

	pub := func(from, to int) {
		a.do("publish", func(ch *amqp.Channel) error {
			for i := from; i < to; i++ {
				if err := ch.PublishWithContext(context.Background(), "", qin, false, false, amqp.Publishing{
					ContentType: "application/json", Body: []byte(ackProofMessage(run, i, "2s"))}); err != nil {
					return err
				}
			}
			return nil
		})
	}

	pub(0, 10)
	got.WaitAll(t, 10, 15*time.Second)
	// every record so far is confirmed; the cluster and its records go
	waitSourceAcks(t, n0, reqID, qin, 10)
	stopFirst()
	kb.c.Close()
	cut := time.Now()
	pub(10, 40)
	time.Sleep(time.Until(cut.Add(5 * time.Second)))
	kb.up()
	kb.consume(t, topic, got)
	pub(40, n)

	total := got.WaitAll(t, n, 25*time.Second)
	m := waitSourceAcks(t, n0, reqID, qin, n)
	if f := dpCount(m, "source", qin, "acknowledged", "failure"); f == 0 {
		t.Errorf("no acknowledged failure at the source during the outage")
	}
	wantDuplicatesBounded(t, n, total, dpCount(m, "source", qin, "consumed", "success"))
}
