// Package rabbitmq arranges the RabbitMQ broker of the client tests over
// AMQP 0.9.1 (declare, bind, publish, read, delete), which the AMQP 1.0
// plugin cannot do: the AMQP 0.9.1 and AMQP 1.0 clients' tests share it.
package rabbitmq

import (
	"context"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Addr is where the tests expect RabbitMQ, with guest:guest.
const Addr = "127.0.0.1:5672"

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// UniqueName is a broker object name unique to this test and run.
func UniqueName(t *testing.T, suffix string) string {
	return fmt.Sprintf("dittoconn-%s-%s-%d", unsafeChars.ReplaceAllString(t.Name(), "-"), suffix, time.Now().UnixNano())
}

// Admin is a plain library connection a test uses to arrange the broker;
// what it declares is deleted with the test.
type Admin struct {
	t    *testing.T
	conn *amqp.Connection

	mu sync.Mutex
	ch *amqp.Channel
}

// NewAdmin connects to the broker, closed with t.
func NewAdmin(t *testing.T) *Admin {
	t.Helper()
	conn, err := amqp.DialConfig("amqp://guest:guest@"+Addr+"/", amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &Admin{t: t, conn: conn}
}

// Channel returns a live channel (a failed declare closes the old one).
func (a *Admin) Channel() *amqp.Channel {
	a.t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.ch == nil || a.ch.IsClosed() {
		ch, err := a.conn.Channel()
		if err != nil {
			a.t.Fatalf("admin channel: %v", err)
		}
		a.ch = ch
	}
	return a.ch
}

// AssertEmpty fails the test when a queue holds a message: after a client
// closed, a message that went back to its queue was not acknowledged.
func (a *Admin) AssertEmpty(queues ...string) {
	a.t.Helper()
	for _, q := range queues {
		st, err := a.Channel().QueueDeclarePassive(q, false, false, false, false, nil)
		if err != nil || st.Messages != 0 {
			a.t.Fatalf("queue %s: %+v %v", q, st, err)
		}
	}
}

// Connection is a desired-open connection of one client of type typ to uri.
func Connection(typ, id, uri string, sources []model.Source, targets []model.Target) *model.Connection {
	return &model.Connection{ID: id, ConnectionType: typ, ConnectionStatus: "open", URI: uri,
		Sources: sources, Targets: targets, ClientCount: 1}
}

// Queue declares a queue.
func (a *Admin) Queue(name string) {
	a.t.Helper()
	if _, err := a.Channel().QueueDeclare(name, false, false, false, false, nil); err != nil {
		a.t.Fatalf("declare queue %s: %v", name, err)
	}
	a.t.Cleanup(func() { _, _ = a.Channel().QueueDelete(name, false, false, false) })
}

// Exchange declares an exchange of kind ("direct", "topic", …).
func (a *Admin) Exchange(name, kind string) {
	a.t.Helper()
	if err := a.Channel().ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		a.t.Fatalf("declare exchange %s: %v", name, err)
	}
	a.t.Cleanup(func() { _ = a.Channel().ExchangeDelete(name, false, false) })
}

// Bind binds queue to exchange with key.
func (a *Admin) Bind(queue, key, exchange string) {
	a.t.Helper()
	if err := a.Channel().QueueBind(queue, key, exchange, false, nil); err != nil {
		a.t.Fatalf("bind %s to %s: %v", queue, exchange, err)
	}
}

// Publish publishes p to exchange with key.
func (a *Admin) Publish(exchange, key string, p amqp.Publishing) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.Channel().PublishWithContext(ctx, exchange, key, false, false, p); err != nil {
		a.t.Fatalf("admin publish: %v", err)
	}
}

// Get polls queue for one message.
func (a *Admin) Get(queue string) amqp.Delivery {
	a.t.Helper()
	var got amqp.Delivery
	poll.Check(a.t, 5*time.Second, func() error {
		d, ok, err := a.Channel().Get(queue, true)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("queue %s is empty", queue)
		}
		got = d
		return nil
	})
	return got
}

// Drain is a Harness.Listen on queue: each call takes what arrived.
func (a *Admin) Drain(queue string) func() [][]byte {
	var mu sync.Mutex
	var got [][]byte
	return func() [][]byte {
		mu.Lock()
		defer mu.Unlock()
		for {
			d, ok, err := a.Channel().Get(queue, true)
			if err != nil || !ok {
				return append([][]byte(nil), got...)
			}
			got = append(got, d.Body)
		}
	}
}
