package amqp091

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/internal/client"
)

// session is one AMQP connection with its channels.
type session struct {
	p         *protocol
	r         *client.Reporter
	conn      *amqp.Connection
	transport net.Conn
	consumers []*consumer

	stop chan struct{}  // closed when the session is torn down
	wg   sync.WaitGroup // watcher and consumer goroutines

	// pubSem guards pub and is a channel, not a mutex, so that waiting for
	// it honours the publisher's context.
	pubSem chan struct{}
	pub    *pubChannel
}

type consumer struct {
	spec       consumerSpec
	settler    *client.Settler
	deliveries <-chan amqp.Delivery
	cancels    chan string
}

// pubChannel is a confirm-mode channel with the reason it was closed.
type pubChannel struct {
	ch     *amqp.Channel
	closes chan *amqp.Error

	mu     sync.Mutex
	reason *amqp.Error
}

func newSession(p *protocol, conn *amqp.Connection, transport net.Conn) *session {
	return &session{
		p:         p,
		conn:      conn,
		transport: transport,
		stop:      make(chan struct{}),
		pubSem:    make(chan struct{}, 1),
	}
}

// publisher returns the publisher channel, reopening it when the broker
// closed it (publishing to a missing exchange closes the channel).
func (s *session) publisher(ctx context.Context) (*amqp.Channel, error) {
	select {
	case s.pubSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.pubSem }()
	if s.pub != nil && !s.pub.ch.IsClosed() {
		return s.pub.ch, nil
	}
	type result struct {
		pc  *pubChannel
		err error
	}
	// Channel and Confirm have no context; run them aside so ctx bounds the
	// wait (they end anyway once the connection dies).
	res := make(chan result, 1)
	go func() {
		ch, err := s.conn.Channel()
		if err != nil {
			res <- result{err: err}
			return
		}
		if err := ch.Confirm(false); err != nil {
			_ = ch.Close()
			res <- result{err: err}
			return
		}
		res <- result{pc: &pubChannel{ch: ch, closes: ch.NotifyClose(make(chan *amqp.Error, 1))}}
	}()
	select {
	case r := <-res:
		if r.err != nil {
			return nil, r.err
		}
		s.pub = r.pc
		return r.pc.ch, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// publisherCloseReason is why ch was closed by the broker, or nil.
func (s *session) publisherCloseReason(ch *amqp.Channel) error {
	select {
	case s.pubSem <- struct{}{}:
	case <-time.After(time.Second):
		return nil
	}
	pc := s.pub
	<-s.pubSem
	if pc == nil || pc.ch != ch {
		return nil
	}
	pc.mu.Lock()
	defer pc.mu.Unlock()
	if pc.reason == nil {
		select {
		case e, ok := <-pc.closes:
			if ok {
				pc.reason = e
			}
		default:
		}
	}
	if pc.reason == nil {
		return nil
	}
	return pc.reason
}

// Start launches the connection watcher and the consumers.
func (s *session) Start(context.Context) error {
	closes := s.conn.NotifyClose(make(chan *amqp.Error, 1))
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case e, ok := <-closes:
			select {
			case <-s.stop:
				return // we closed it
			default:
			}
			if ok && e != nil {
				s.r.Lost(e)
			} else {
				s.r.Lost(errors.New("amqp091: the connection was closed"))
			}
		case <-s.stop:
		}
	}()
	for _, cons := range s.consumers {
		cons.settler.Start()
		s.wg.Add(1)
		go s.consume(cons)
	}
	return nil
}

// consume delivers one consumer's messages. Each carries a Settle that
// queues its ack or nack on the consumer's Settler; the broker's prefetch
// (basic.qos) is the Settler's bound, so it never sends more unsettled
// deliveries than that, and a crash leaves the unsettled ones to it to
// redeliver.
func (s *session) consume(cons *consumer) {
	defer s.wg.Done()
	st := cons.settler
	cancels := cons.cancels
	for {
		select {
		case d, ok := <-cons.deliveries:
			if !ok {
				select {
				case <-s.stop:
				default:
					s.r.Lost(fmt.Errorf("amqp091: the consumer of queue %q stopped", cons.spec.queue))
				}
				return
			}
			if !st.Acquire(s.stop) {
				return
			}
			settle := st.Settle(func(o client.Outcome) { s.settle(cons.spec.queue, d, o) })
			if s.p.env.Inbound == nil {
				settle(client.Accept)
				continue
			}
			s.p.env.Inbound(client.Message{
				Address: cons.spec.queue,
				Headers: deliveryHeaders(&d),
				Payload: d.Body,
				QoS:     cons.spec.qos,
				Settle:  settle,
			})
		case _, ok := <-cancels:
			if !ok {
				cancels = nil // channel shut down; the deliveries case handles it
				continue
			}
			// The broker cancels a consumer when its queue is deleted.
			s.r.Lost(fmt.Errorf("amqp091: the broker cancelled the consumer of queue %q", cons.spec.queue))
			return
		case <-s.stop:
			return
		}
	}
}

// settle tells the broker d's outcome: ack; nack with requeue (the broker
// delivers it again, to this or another consumer); nack without requeue
// (dropped, or dead-lettered when the queue has a dead-letter exchange).
func (s *session) settle(queue string, d amqp.Delivery, o client.Outcome) {
	var err error
	switch o {
	case client.Accept:
		err = d.Ack(false)
	case client.Redeliver:
		err = d.Nack(false, true)
	default:
		err = d.Nack(false, false)
	}
	if err != nil {
		// The channel is gone: the broker requeues the delivery itself.
		s.p.log.Debug().Err(err).Str("queue", queue).Stringer("outcome", o).Msg("amqp091 settle failed")
	}
}

// Close tears the session down, the close handshake bounded by ctx, and
// waits for the session's goroutines (a consumer may be inside Inbound).
func (s *session) Close(ctx context.Context) error {
	close(s.stop)
	// Acks and nacks the data plane settled so far go out first.
	for _, cons := range s.consumers {
		cons.settler.Close(ctx.Done())
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(time.Second)
	}
	_ = s.conn.CloseDeadline(deadline)
	_ = s.transport.Close()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("amqp091: consumers did not stop in time: %w", ctx.Err())
	}
}

// Publish sends msg to the target address "exchange/routingKey" and waits
// for the broker's publisher confirm.
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	ch, err := s.publisher(ctx)
	if err != nil {
		return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, err)
	}
	exchange, key := splitTarget(msg.Address)
	dc, err := ch.PublishWithDeferredConfirmWithContext(ctx, exchange, key, false, false,
		publishing(msg.Headers, msg.Payload))
	if err != nil {
		return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, err)
	}
	acked, err := dc.WaitContext(ctx)
	if err != nil {
		return fmt.Errorf("amqp091: waiting for the broker to confirm %q: %w", msg.Address, err)
	}
	if !acked {
		// A closed channel resolves its pending confirms as nacks; its close
		// reason (e.g. 404 no exchange) is the real answer.
		if reason := s.publisherCloseReason(ch); reason != nil {
			return fmt.Errorf("amqp091: publishing to %q: %w", msg.Address, reason)
		}
		return fmt.Errorf("amqp091: the broker refused the message to %q", msg.Address)
	}
	return nil
}
