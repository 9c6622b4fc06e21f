package amqp091

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/client/clienttest"
	"github.com/dittoconn/dittoconn/actors/model"
)

const (
	brokerAddr = "127.0.0.1:5672"
	brokerURI  = "amqp://guest:guest@" + brokerAddr + "/"
)

func needBroker(t *testing.T) { clienttest.NeedBroker(t, brokerAddr) }

func checkFor(t *testing.T, total time.Duration, f func() error) {
	t.Helper()
	clienttest.CheckFor(t, total, f)
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

// uniqueName is a broker object name unique to this test and run.
func uniqueName(t *testing.T, suffix string) string {
	return fmt.Sprintf("dittoconn-%s-%s-%d", unsafeChars.ReplaceAllString(t.Name(), "-"), suffix, time.Now().UnixNano())
}

// admin is a plain library connection the tests use to arrange the broker.
type admin struct {
	t    *testing.T
	conn *amqp.Connection
	ch   *amqp.Channel
}

func newAdmin(t *testing.T) *admin {
	t.Helper()
	conn, err := amqp.DialConfig(brokerURI, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	a := &admin{t: t, conn: conn, ch: ch}
	t.Cleanup(func() { _ = conn.Close() })
	return a
}

// channel returns a live channel (a failed declare closes the old one).
func (a *admin) channel() *amqp.Channel {
	a.t.Helper()
	if a.ch.IsClosed() {
		ch, err := a.conn.Channel()
		if err != nil {
			a.t.Fatalf("admin channel: %v", err)
		}
		a.ch = ch
	}
	return a.ch
}

func (a *admin) queue(name string) {
	a.t.Helper()
	if _, err := a.channel().QueueDeclare(name, false, false, false, false, nil); err != nil {
		a.t.Fatalf("declare queue %s: %v", name, err)
	}
	a.t.Cleanup(func() { _, _ = a.channel().QueueDelete(name, false, false, false) })
}

func (a *admin) exchange(name, kind string) {
	a.t.Helper()
	if err := a.channel().ExchangeDeclare(name, kind, false, false, false, false, nil); err != nil {
		a.t.Fatalf("declare exchange %s: %v", name, err)
	}
	a.t.Cleanup(func() { _ = a.channel().ExchangeDelete(name, false, false) })
}

func (a *admin) bind(queue, key, exchange string) {
	a.t.Helper()
	if err := a.channel().QueueBind(queue, key, exchange, false, nil); err != nil {
		a.t.Fatalf("bind %s to %s: %v", queue, exchange, err)
	}
}

func (a *admin) publish(exchange, key string, p amqp.Publishing) {
	a.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.channel().PublishWithContext(ctx, exchange, key, false, false, p); err != nil {
		a.t.Fatalf("admin publish: %v", err)
	}
}

// get polls queue for one message.
func (a *admin) get(queue string) amqp.Delivery {
	a.t.Helper()
	var got amqp.Delivery
	checkFor(a.t, 5*time.Second, func() error {
		d, ok, err := a.channel().Get(queue, true)
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

func testConnection(id, uri string, sources []model.Source, targets []model.Target) *model.Connection {
	return &model.Connection{
		ID:               id,
		ConnectionType:   model.TypeAMQP091,
		ConnectionStatus: "open",
		URI:              uri,
		Sources:          sources,
		Targets:          targets,
		ClientCount:      1,
	}
}

func newTestClient(t *testing.T, conn *model.Connection) (client.Client, *clienttest.Recorder) {
	t.Helper()
	return clienttest.NewClient(t, New, conn)
}

// killConnection closes the named connection from the broker side with
// rabbitmqctl; false when rabbitmqctl is not usable here.
func killConnection(t *testing.T, name string) bool {
	t.Helper()
	if _, err := exec.LookPath("rabbitmqctl"); err != nil {
		return false
	}
	nodes := [][]string{{"-n", "rabbit@localhost"}, nil}
	if n := os.Getenv("RABBITMQ_NODENAME"); n != "" {
		nodes = append([][]string{{"-n", n}}, nodes...)
	}
	for _, node := range nodes {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		args := append(append([]string{}, node...), "-q", "list_connections", "--no-table-headers", "pid", "client_properties")
		out, err := exec.CommandContext(ctx, "rabbitmqctl", args...).Output()
		cancel()
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.Contains(line, `"`+name+`"`) {
				continue
			}
			pid, _, _ := strings.Cut(line, "\t")
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			args := append(append([]string{}, node...), "close_connection", strings.TrimSpace(pid), "test kills the connection")
			err := exec.CommandContext(ctx, "rabbitmqctl", args...).Run()
			cancel()
			if err != nil {
				t.Logf("rabbitmqctl close_connection: %v", err)
				return false
			}
			return true
		}
	}
	return false
}
