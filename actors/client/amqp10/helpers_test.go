package amqp10

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"
	amqp091 "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/client/clienttest"
	"github.com/dittoconn/dittoconn/actors/model"
)

// The tests arrange RabbitMQ (declare, bind, delete) over AMQP 0.9.1, which
// the AMQP 1.0 plugin cannot do; the client itself speaks only AMQP 1.0.
const (
	brokerAddr = "127.0.0.1:5672"
	brokerURI  = "amqp://guest:guest@" + brokerAddr
)

// needBroker skips (or fails under DITTOCONN_REQUIRE_BROKERS=1) when
// RabbitMQ with its AMQP 1.0 plugin does not answer.
func needBroker(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqp://"+brokerAddr, &amqp.ConnOptions{SASLType: amqp.SASLTypePlain("guest", "guest")})
	if err == nil {
		_ = conn.Close()
		return
	}
	msg := fmt.Sprintf("RabbitMQ with the AMQP 1.0 plugin (rabbitmq_amqp1_0) is not reachable on %s: %v", brokerAddr, err)
	if os.Getenv("DITTOCONN_REQUIRE_BROKERS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func checkFor(t *testing.T, total time.Duration, f func() error) {
	t.Helper()
	clienttest.CheckFor(t, total, f)
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9]+`)

func uniqueName(t *testing.T, suffix string) string {
	return fmt.Sprintf("dittoconn-%s-%s-%d", unsafeChars.ReplaceAllString(t.Name(), "-"), suffix, time.Now().UnixNano())
}

// admin arranges broker objects over AMQP 0.9.1.
type admin struct {
	t    *testing.T
	conn *amqp091.Connection
	ch   *amqp091.Channel
}

func newAdmin(t *testing.T) *admin {
	t.Helper()
	conn, err := amqp091.DialConfig(brokerURI+"/", amqp091.Config{Dial: amqp091.DefaultDial(5 * time.Second)})
	if err != nil {
		t.Fatalf("admin dial: %v", err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatalf("admin channel: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &admin{t: t, conn: conn, ch: ch}
}

func (a *admin) channel() *amqp091.Channel {
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

func (a *admin) exchange(name string) {
	a.t.Helper()
	if err := a.channel().ExchangeDeclare(name, "direct", false, false, false, false, nil); err != nil {
		a.t.Fatalf("declare exchange %s: %v", name, err)
	}
	a.t.Cleanup(func() { _ = a.channel().ExchangeDelete(name, false, false) })
}

func (a *admin) bind(queue, key, exchange string) {
	a.t.Helper()
	if err := a.channel().QueueBind(queue, key, exchange, false, nil); err != nil {
		a.t.Fatalf("bind: %v", err)
	}
}

// peer is a plain AMQP 1.0 connection that sends to the client's sources
// and reads what the client published.
type peer struct {
	t    *testing.T
	conn *amqp.Conn
	sess *amqp.Session
}

func newPeer(t *testing.T) *peer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := amqp.Dial(ctx, "amqp://"+brokerAddr, &amqp.ConnOptions{SASLType: amqp.SASLTypePlain("guest", "guest")})
	if err != nil {
		t.Fatalf("peer dial: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	sess, err := conn.NewSession(ctx, nil)
	if err != nil {
		t.Fatalf("peer session: %v", err)
	}
	return &peer{t: t, conn: conn, sess: sess}
}

func (p *peer) send(address string, m *amqp.Message) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	snd, err := p.sess.NewSender(ctx, address, nil)
	if err != nil {
		p.t.Fatalf("peer sender %s: %v", address, err)
	}
	defer closeLink(snd.Close)
	if err := snd.Send(ctx, m, nil); err != nil {
		p.t.Fatalf("peer send: %v", err)
	}
}

func (p *peer) receive(address string) *amqp.Message {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	r, err := p.sess.NewReceiver(ctx, address, nil)
	if err != nil {
		p.t.Fatalf("peer receiver %s: %v", address, err)
	}
	defer closeLink(r.Close)
	m, err := r.Receive(ctx, nil)
	if err != nil {
		p.t.Fatalf("peer receive %s: %v", address, err)
	}
	if err := r.AcceptMessage(ctx, m); err != nil {
		p.t.Fatalf("peer accept: %v", err)
	}
	return m
}

// closeLink detaches a link without waiting long: RabbitMQ 3.10's plugin
// may not answer the detach, and the peer's connection ends with the test.
func closeLink(closeFn func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_ = closeFn(ctx)
}

func testConnection(id, uri string, sources []model.Source, targets []model.Target) *model.Connection {
	return &model.Connection{
		ID:               id,
		ConnectionType:   model.TypeAMQP10,
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
