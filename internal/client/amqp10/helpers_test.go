package amqp10

import (
	"context"
	"fmt"
	"testing"
	"time"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/rabbitmq"
	"github.com/dittoconn/dittoconn/internal/model"
)

// The tests arrange RabbitMQ (declare, bind, delete) over AMQP 0.9.1, which
// the AMQP 1.0 plugin cannot do; the client itself speaks only AMQP 1.0.
const (
	brokerAddr = rabbitmq.Addr
	brokerURI  = "amqp://guest:guest@" + brokerAddr
)

func newAdmin(t *testing.T) *rabbitmq.Admin { return rabbitmq.NewAdmin(t) }

func uniqueName(t *testing.T, suffix string) string { return rabbitmq.UniqueName(t, suffix) }

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
	clienttest.Unavailable(t, fmt.Sprintf("RabbitMQ with the AMQP 1.0 plugin (rabbitmq_amqp1_0) is not reachable on %s: %v", brokerAddr, err))
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
	return rabbitmq.Connection(model.TypeAMQP10, id, uri, sources, targets)
}

func newTestClient(t *testing.T, conn *model.Connection) (client.Client, *clienttest.Recorder) {
	t.Helper()
	return clienttest.NewClient(t, New, conn)
}
