package live

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// dpScript is a device mapper: {"ns","id","temp","cid"} → a twin event
// modifying the temperature feature property.
const dpScript = `function mapToDittoProtocolMsg(headers, textPayload, bytePayload, contentType) {
  var d = JSON.parse(textPayload);
  return Ditto.buildDittoProtocolMsg(d.ns, d.id, 'things', 'twin', 'events', 'modified',
    '/features/temp/properties/value', {'correlation-id': d.cid}, d.temp);
}`

type dpHTTPRequest struct {
	method, path, contentType string
	body                      []byte
}

// TestIntegrationDataPlaneProof is the end-to-end proof of the data plane: an MQTT
// source with a JavaScript mapper turns device payloads into twin events;
// an AMQP 0.9.1 target with a namespace and RQL filter gets only the
// matching ones, under the resolved routing key and with mapped headers;
// a Kafka target gets every one keyed by thing id; an HTTP push target gets
// Normalized bodies; metrics count exactly per address, logs hold one entry
// per step, and a bad payload is a failure in both.
func TestIntegrationDataPlaneProof(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	blackbox.NeedBroker(t, "RabbitMQ", "127.0.0.1:5672")
	run := fmt.Sprint(runID)

	// Kafka: franz-go's in-process cluster
	kafkaTopic := "dp-events-" + run
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, kafkaTopic))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(kc.Close)
	kafkaAddr := kc.ListenAddrs()[0]

	// HTTP endpoint
	var mu sync.Mutex
	var reqs []dpHTTPRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reqs = append(reqs, dpHTTPRequest{r.Method, r.URL.Path, r.Header.Get("Content-Type"), b})
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)

	// RabbitMQ: a topic exchange with one queue bound to everything
	exchange := "dp-x-" + run
	rc, err := amqp.DialConfig("amqp://guest:guest@127.0.0.1:5672/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("RabbitMQ: %v", err)
	}
	t.Cleanup(func() { _ = rc.Close() })
	ch, err := rc.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if err := ch.ExchangeDeclare(exchange, "topic", false, true, false, false, nil); err != nil {
		t.Fatalf("declare exchange: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare queue: %v", err)
	}
	if err := ch.QueueBind(q.Name, "#", exchange, false, nil); err != nil {
		t.Fatalf("bind: %v", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}

	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Collector: monitor.NewCollector()})
	devID, amqpID, kafkaID, httpID := dpID("dev"), dpID("amqp"), dpID("kafka"), dpID("http")
	srcAddr := "dp/" + run + "/telemetry/#"
	amqpAddr := exchange + "/{{ thing:id }}"
	kafkaAddrTmpl := kafkaTopic + "/{{ thing:id }}"
	httpAddr := "POST:/events/{{ thing:id }}"
	auth := []string{"nginx:ditto"}

	dpOpen(t, n, map[string]any{"id": amqpID, "connectionType": "amqp-091", "uri": "amqp://guest:guest@127.0.0.1:5672/",
		"targets": []any{map[string]any{"address": amqpAddr, "authorizationContext": auth,
			"topics": []string{"_/_/things/twin/events?namespaces=org.acme&filter=gt(features/temp/properties/value,20)"},
			"headerMapping": map[string]any{"thing-id": "{{ thing:id }}", "correlation-id": "{{ header:correlation-id }}",
				"action": "{{ topic:action }}", "missing": "{{ header:nope }}"}}}})
	dpOpen(t, n, map[string]any{"id": kafkaID, "connectionType": "kafka", "uri": "tcp://" + kafkaAddr,
		"specificConfig": map[string]any{"bootstrapServers": kafkaAddr},
		"targets": []any{map[string]any{"address": kafkaAddrTmpl, "authorizationContext": auth, "qos": 1,
			"topics": []string{"_/_/things/twin/events"}}}})
	dpOpen(t, n, map[string]any{"id": httpID, "connectionType": "http-push", "uri": srv.URL,
		"targets": []any{map[string]any{"address": httpAddr, "authorizationContext": auth,
			"topics": []string{"_/_/things/twin/events"}, "payloadMapping": []string{"Normalized"}}}})
	dpOpen(t, n, map[string]any{"id": devID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": devID},
		"mappingDefinitions": map[string]any{"device": map[string]any{"mappingEngine": "JavaScript",
			"options": map[string]any{"incomingScript": dpScript}}},
		"sources": []any{map[string]any{"addresses": []string{srcAddr}, "authorizationContext": auth, "qos": 1,
			"payloadMapping": []string{"device"}}}})

	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	for _, p := range []string{
		`{"ns":"org.acme","id":"dev-1","temp":21.5,"cid":"c-1"}`, // all three targets
		`{"ns":"org.acme","id":"dev-2","temp":15,"cid":"c-2"}`,   // filtered out for AMQP by the RQL filter
		`{"ns":"other.ns","id":"dev-3","temp":30,"cid":"c-3"}`,   // filtered out for AMQP by namespace
		`this is not JSON`, // the mapper fails
	} {
		blackbox.PublishMQTT(t, dev, "dp/"+run+"/telemetry/x", p)
	}

	// AMQP 0.9.1: exactly the matching event
	select {
	case d := <-deliveries:
		if d.RoutingKey != "org.acme:dev-1" || d.Exchange != exchange {
			t.Errorf("AMQP message on %s/%s", d.Exchange, d.RoutingKey)
		}
		if d.CorrelationId != "c-1" {
			t.Errorf("AMQP correlation id %q", d.CorrelationId)
		}
		if d.Headers["thing-id"] != "org.acme:dev-1" || d.Headers["action"] != "modified" {
			t.Errorf("AMQP headers %v", d.Headers)
		}
		if _, ok := d.Headers["missing"]; ok {
			t.Errorf("an unresolvable header mapping was sent: %v", d.Headers)
		}
		if d.ContentType != "application/vnd.eclipse.ditto+json" {
			t.Errorf("AMQP content type %q", d.ContentType)
		}
		m := blackbox.Decode(t, d.Body)
		blackbox.WantField(t, m, "org.acme/dev-1/things/twin/events/modified", "topic")
		blackbox.WantField(t, m, 21.5, "value")
	case <-time.After(15 * time.Second):
		t.Fatal("no AMQP message")
	}

	// Kafka: all three, keyed by thing id
	kcl, err := kgo.NewClient(kgo.SeedBrokers(kafkaAddr), kgo.ConsumeTopics(kafkaTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kcl.Close)
	var keys []string
	deadline := time.Now().Add(15 * time.Second)
	for len(keys) < 3 && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		kcl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			keys = append(keys, string(r.Key))
			m := blackbox.Decode(t, r.Value)
			if !strings.HasSuffix(m["topic"].(string), "/things/twin/events/modified") {
				t.Errorf("kafka record %s", r.Value)
			}
		})
		cancel()
	}
	sort.Strings(keys)
	if strings.Join(keys, ",") != "org.acme:dev-1,org.acme:dev-2,other.ns:dev-3" {
		t.Errorf("kafka keys %v", keys)
	}

	// HTTP push: three Normalized bodies
	poll.Until(t, 15*time.Second, "3 HTTP requests", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(reqs) >= 3
	})
	mu.Lock()
	got := append([]dpHTTPRequest(nil), reqs...)
	mu.Unlock()
	byPath := map[string]dpHTTPRequest{}
	for _, r := range got {
		byPath[r.path] = r
	}
	r1, ok := byPath["/events/org.acme:dev-1"]
	if !ok || r1.method != http.MethodPost {
		t.Fatalf("HTTP requests %v", got)
	}
	body := blackbox.Decode(t, r1.body)
	blackbox.WantField(t, body, "org.acme:dev-1", "thingId")
	blackbox.WantField(t, body, 21.5, "features", "temp", "properties", "value")
	blackbox.WantField(t, body, "org.acme/dev-1/things/twin/events/modified", "_context", "topic")
	if _, isDitto := body["topic"]; isDitto {
		t.Errorf("HTTP body is a Ditto Protocol message, not Normalized: %s", r1.body)
	}

	// metrics: exact counts per address
	dpWaitCount(t, n, devID, "source", srcAddr, "consumed", "success", 4)
	dm := dpWaitCount(t, n, devID, "source", srcAddr, "mapped", "failure", 1)
	for _, c := range []struct {
		typ, level string
		want       int
	}{{"mapped", "success", 3}, {"consumed", "failure", 0}, {"dropped", "success", 0}} {
		if got := dpCount(dm, "source", srcAddr, c.typ, c.level); got != c.want {
			t.Errorf("source %s %s = %d, want %d", c.typ, c.level, got, c.want)
		}
	}
	if dm["containsFailures"] != true {
		t.Errorf("the failed mapping is not in containsFailures: %v", dm["containsFailures"])
	}
	am := dpWaitCount(t, n, amqpID, "target", amqpAddr, "published", "success", 1)
	for typ, want := range map[string]int{"dispatched": 3, "filtered": 1, "mapped": 1} {
		if got := dpCount(am, "target", amqpAddr, typ, "success"); got != want {
			t.Errorf("AMQP target %s = %d, want %d", typ, got, want)
		}
	}
	km := dpWaitCount(t, n, kafkaID, "target", kafkaAddrTmpl, "published", "success", 3)
	for _, typ := range []string{"dispatched", "filtered", "mapped"} {
		if got := dpCount(km, "target", kafkaAddrTmpl, typ, "success"); got != 3 {
			t.Errorf("Kafka target %s = %d, want 3", typ, got)
		}
	}
	hm := dpWaitCount(t, n, httpID, "target", httpAddr, "published", "success", 3)
	for _, m := range []map[string]any{am, km, hm} {
		if m["containsFailures"] != false {
			t.Errorf("containsFailures of a target connection: %v", m)
		}
	}

	// Prometheus: the same counts as totals, without authentication
	prom := scrapeMetrics(t, n)
	for _, want := range []string{
		`connection_messages_total{address="` + amqpAddr + `",category="published",direction="outbound",id="` + amqpID + `",success="true",type="amqp-091"} 1`,
		`connection_messages_total{address="` + amqpAddr + `",category="dispatched",direction="outbound",id="` + amqpID + `",success="true",type="amqp-091"} 3`,
		`connection_messages_total{address="` + srcAddr + `",category="mapped",direction="inbound",id="` + devID + `",success="false",type="mqtt"} 1`,
		`connection_messages_total{address="` + kafkaAddrTmpl + `",category="published",direction="outbound",id="` + kafkaID + `",success="true",type="kafka"} 3`,
	} {
		if !strings.Contains(prom, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}

	// logs: one entry per step
	dl := dpLogs(t, n, devID)
	for _, c := range []struct {
		typ, level string
		want       int
	}{{"consumed", "success", 4}, {"mapped", "success", 3}, {"mapped", "failure", 1}} {
		if got := dpLogCount(dl, "source", c.typ, c.level, srcAddr); got != c.want {
			t.Errorf("source log %s/%s: %d entries, want %d: %v", c.typ, c.level, got, c.want, dl)
		}
	}
	for _, e := range dl {
		if e["type"] == "mapped" && e["level"] == "failure" {
			if msg, _ := e["message"].(string); !strings.Contains(msg, "mapping") {
				t.Errorf("mapping failure entry %v", e)
			}
		}
		if e["type"] == "mapped" && e["level"] == "success" && e["entityType"] != "thing" {
			t.Errorf("mapped entry without the thing: %v", e)
		}
	}
	al := dpLogs(t, n, amqpID)
	for typ, want := range map[string]int{"dispatched": 3, "filtered": 1, "mapped": 1, "published": 1} {
		if got := dpLogCount(al, "target", typ, "success", amqpAddr); got != want {
			t.Errorf("AMQP target log %s: %d entries, want %d", typ, got, want)
		}
	}
	if got := dpLogCount(al, "target", "published", "failure", ""); got != 0 {
		t.Errorf("AMQP publish failures logged: %v", al)
	}
}
