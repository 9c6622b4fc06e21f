package live

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	amqp10 "github.com/Azure/go-amqp"
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/poll"
)

// RabbitMQ of the machine (AMQP 0.9.1 and, with its plugin, AMQP 1.0); the
// tests never stop it: outages are cut at a proxy of their own.
const (
	rabbitAddr  = "127.0.0.1:5672"
	rabbitLogin = "guest:guest"
)

// rabbitAdmin arranges queues and exchanges on RabbitMQ over AMQP 0.9.1.
type rabbitAdmin struct {
	t    *testing.T
	conn *amqp.Connection
}

func newRabbitAdmin(t *testing.T) *rabbitAdmin {
	t.Helper()
	conn, err := amqp.DialConfig("amqp://"+rabbitLogin+"@"+rabbitAddr+"/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("RabbitMQ admin connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rabbitAdmin{t: t, conn: conn}
}

// do runs f on a fresh channel (a failed declare closes its channel).
func (a *rabbitAdmin) do(what string, f func(ch *amqp.Channel) error) {
	a.t.Helper()
	ch, err := a.conn.Channel()
	if err != nil {
		a.t.Fatalf("RabbitMQ channel: %v", err)
	}
	defer ch.Close()
	if err := f(ch); err != nil {
		a.t.Fatalf("%s: %v", what, err)
	}
}

// uniqueRabbitName is a queue or exchange name of this test run.
func uniqueRabbitName(kind string) string {
	return fmt.Sprintf("dittoconn-it-%s-%d-%d", kind, runID, time.Now().UnixNano())
}

// queue declares a queue deleted when the test ends.
func (a *rabbitAdmin) queue(name string) {
	a.t.Helper()
	a.do("declare queue "+name, func(ch *amqp.Channel) error {
		_, err := ch.QueueDeclare(name, false, false, false, false, nil)
		return err
	})
	a.t.Cleanup(func() {
		if ch, err := a.conn.Channel(); err == nil {
			_, _ = ch.QueueDelete(name, false, false, false)
			_ = ch.Close()
		}
	})
}

// exchange declares a direct exchange deleted when the test ends.
func (a *rabbitAdmin) exchange(name string) {
	a.t.Helper()
	a.do("declare exchange "+name, func(ch *amqp.Channel) error {
		return ch.ExchangeDeclare(name, "direct", false, false, false, false, nil)
	})
	a.t.Cleanup(func() {
		if ch, err := a.conn.Channel(); err == nil {
			_ = ch.ExchangeDelete(name, false, false)
			_ = ch.Close()
		}
	})
}

// listen consumes what exchange routes with key, on a connection of its
// own straight to RabbitMQ (not through the test's proxy).
func (a *rabbitAdmin) listen(t *testing.T, exchange, key string) announcementReader {
	t.Helper()
	conn, err := amqp.DialConfig("amqp://"+rabbitLogin+"@"+rabbitAddr+"/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("RabbitMQ consumer connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("RabbitMQ consumer channel: %v", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		t.Fatalf("declare the consumer's queue: %v", err)
	}
	if err := ch.QueueBind(q.Name, key, exchange, false, nil); err != nil {
		t.Fatalf("bind the consumer's queue: %v", err)
	}
	deliveries, err := ch.Consume(q.Name, "", true, true, false, false, nil)
	if err != nil {
		t.Fatalf("consume: %v", err)
	}
	return func(within time.Duration) []byte {
		select {
		case d, ok := <-deliveries:
			if !ok {
				t.Errorf("the test consumer's channel closed")
				time.Sleep(within)
				return nil
			}
			return d.Body
		case <-time.After(within):
			return nil
		}
	}
}

// amqpCase is the live checklist of "amqp-091" or "amqp-10": one source
// queue per connection and announcements to an exchange with the routing
// key announce.<connection id>.
func amqpCase(t *testing.T, typ string) liveCase {
	a := newRabbitAdmin(t)
	ex := uniqueRabbitName("ex")
	a.exchange(ex)
	queues := map[string]string{}
	queueOf := func(id string) string {
		if q, ok := queues[id]; ok {
			return q
		}
		q := uniqueRabbitName("in")
		a.queue(q)
		queues[id] = q
		return q
	}
	// Addresses of the type: "exchange/routingKey" and a queue name for
	// 0.9.1; link addresses of RabbitMQ's AMQP 1.0 plugin for 1.0.
	source := func(id string) string { return queueOf(id) }
	target := ex + "/announce.{{ connection:id }}"
	prefix := "amqp091"
	forceClose := rabbitForceClose
	if typ == "amqp-10" {
		forceClose = nil
		source = func(id string) string { return "/amq/queue/" + queueOf(id) }
		target = "/exchange/" + target
		prefix = "amqp10"
	}
	return liveCase{
		typ:    typ,
		prefix: prefix,
		conn: func(id, status, addr, login string) map[string]any {
			uri := "amqp://" + addr
			if login != "" {
				uri = "amqp://" + login + "@" + addr
			}
			return map[string]any{
				"id":               id,
				"connectionType":   typ,
				"connectionStatus": status,
				"uri":              uri,
				// The suite follows an outage through the grain's reconnect;
				// AMQP 1.0's failover (Ditto's default) would hide it inside
				// the client, and has its own tests in internal/client/amqp10.
				"failoverEnabled": false,
				"sources": []any{map[string]any{
					"addresses":            []string{source(id)},
					"authorizationContext": []string{"nginx:ditto"},
				}},
				"targets": []any{map[string]any{
					"address":              target,
					"topics":               []string{"_/_/connections/announcements", "_/_/things/twin/events"},
					"authorizationContext": []string{"nginx:ditto"},
				}},
			}
		},
		good: func(*testing.T) (string, string) { return rabbitAddr, rabbitLogin },
		creds: func(*testing.T) (string, string, string) {
			return rabbitAddr, rabbitLogin, "guest:not-the-guest-password"
		},
		link: func(t *testing.T) brokerLink { return blackbox.StartProxy(t, rabbitAddr) },
		listen: func(t *testing.T, _ brokerLink, id string) announcementReader {
			return a.listen(t, ex, "announce."+id)
		},
		sources:    func(id string) []string { return []string{source(id)} },
		targets:    []string{target},
		noticeDown: 15 * time.Second,
		forceClose: forceClose,
	}
}

func TestIntegrationAMQP091(t *testing.T) {
	blackbox.NeedBroker(t, "RabbitMQ (AMQP 0.9.1)", rabbitAddr)
	testLiveBroker(t, amqpCase(t, "amqp-091"))
}

// needAMQP10 skips (or fails under DITTOCONN_REQUIRE_BROKERS=1) when
// RabbitMQ does not speak AMQP 1.0 (its plugin is off).
func needAMQP10(t *testing.T) {
	t.Helper()
	blackbox.NeedBroker(t, "RabbitMQ", rabbitAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := amqp10.Dial(ctx, "amqp://"+rabbitAddr, &amqp10.ConnOptions{SASLType: amqp10.SASLTypePlain("guest", "guest")})
	if err == nil {
		_ = conn.Close()
		return
	}
	msg := fmt.Sprintf("RabbitMQ at %s does not speak AMQP 1.0 (plugin rabbitmq_amqp1_0 off?): %v", rabbitAddr, err)
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func TestIntegrationAMQP10(t *testing.T) {
	needAMQP10(t)
	testLiveBroker(t, amqpCase(t, "amqp-10"))
}

// rabbitForceClose has RabbitMQ close the AMQP 0.9.1 connections dittoconn
// opened for connection id (client property connection_name
// "dittoconn:<id>:<n>"), as RabbitMQ does for every client when it shuts
// down. RabbitMQ 3.10 lists AMQP 1.0 connections without their properties,
// so theirs cannot be told from other tests' and are left alone.
func rabbitForceClose(t *testing.T, id string) {
	t.Helper()
	ctl := blackbox.NeedBinary(t, "rabbitmqctl")
	var pids []string
	poll.Until(t, 10*time.Second, "RabbitMQ lists the connection of "+id, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		out, err := exec.CommandContext(ctx, ctl, "-q", "list_connections", "--no-table-headers", "pid", "client_properties").Output()
		if err != nil {
			t.Fatalf("rabbitmqctl list_connections: %v", err)
		}
		pids = pids[:0]
		for _, line := range strings.Split(string(out), "\n") {
			if pid, props, ok := strings.Cut(line, "\t"); ok && strings.Contains(props, "dittoconn:"+id+":") {
				pids = append(pids, strings.TrimSpace(pid))
			}
		}
		return len(pids) > 0
	})
	for _, pid := range pids {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		out, err := exec.CommandContext(ctx, ctl, "-q", "close_connection", pid, "closed by the dittoconn test").CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("rabbitmqctl close_connection %s: %v %s", pid, err, out)
		}
	}
}
