package amqp091

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/actors/client"
)

// session is one AMQP connection with its channels. A client replaces its
// session on every successful Connect.
type session struct {
	conn      *amqp.Connection
	transport net.Conn
	consumers []*consumer

	stop     chan struct{} // closed when the session is torn down
	stopOnce sync.Once
	lostOnce sync.Once
	wg       sync.WaitGroup // watcher and consumer goroutines

	// pubSem guards pub and is a channel, not a mutex, so that waiting for
	// it honours the publisher's context.
	pubSem chan struct{}
	pub    *pubChannel
}

type consumer struct {
	spec       consumerSpec
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

func newSession(conn *amqp.Connection, transport net.Conn) *session {
	return &session{
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

// start launches the connection watcher and the consumers.
func (s *session) start(c *amqpClient) {
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
				c.lost(s, e)
			} else {
				c.lost(s, errors.New("amqp091: the connection was closed"))
			}
		case <-s.stop:
		}
	}()
	for _, cons := range s.consumers {
		s.wg.Add(1)
		go c.consume(s, cons)
	}
}

// consume delivers one consumer's messages and acks each after Inbound
// returns, so a crash before that leaves it to the broker to redeliver.
func (c *amqpClient) consume(s *session, cons *consumer) {
	defer s.wg.Done()
	cancels := cons.cancels
	for {
		select {
		case d, ok := <-cons.deliveries:
			if !ok {
				select {
				case <-s.stop:
				default:
					c.lost(s, fmt.Errorf("amqp091: the consumer of queue %q stopped", cons.spec.queue))
				}
				return
			}
			if c.env.Inbound != nil {
				c.env.Inbound(client.Message{
					Address: cons.spec.queue,
					Headers: deliveryHeaders(&d),
					Payload: d.Body,
					QoS:     cons.spec.qos,
				})
			}
			if err := d.Ack(false); err != nil {
				c.log.Debug().Err(err).Str("queue", cons.spec.queue).Msg("amqp091 ack failed")
			}
		case _, ok := <-cancels:
			if !ok {
				cancels = nil // channel shut down; the deliveries case handles it
				continue
			}
			// The broker cancels a consumer when its queue is deleted.
			c.lost(s, fmt.Errorf("amqp091: the broker cancelled the consumer of queue %q", cons.spec.queue))
			return
		case <-s.stop:
			return
		}
	}
}

// close tears the session down; the close handshake is bounded by deadline.
func (s *session) close(deadline time.Time) {
	s.stopOnce.Do(func() {
		close(s.stop)
		if deadline.IsZero() {
			deadline = time.Now().Add(time.Second)
		}
		_ = s.conn.CloseDeadline(deadline)
		_ = s.transport.Close()
	})
}

// wait waits for the session's goroutines (a consumer may be inside
// Inbound) until ctx ends.
func (s *session) wait(ctx context.Context) error {
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
