package amqp10

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/internal/client"
)

// reporter is a session's line back: the Lifecycle's Reporter, or the
// failover session in between (failover.go).
type reporter interface {
	Lost(cause error)
	Target(address string, status client.Status, details string)
}

// session is one AMQP 1.0 connection with its links.
// Every link gets its own AMQP session: RabbitMQ maps a session onto an
// AMQP 0.9.1 channel, so one refused link (say, a missing exchange) would
// otherwise end all of them.
type session struct {
	p         *protocol
	r         reporter
	conn      *amqp.Conn
	transport net.Conn
	receivers []*receiver

	ctx    context.Context // ends when the session is torn down
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// sendSem guards senders; a channel so that waiting honours contexts.
	sendSem chan struct{}
	senders map[string]*sender

	closeOnce sync.Once
	closed    chan struct{}
}

type receiver struct {
	spec    consumerSpec
	r       *amqp.Receiver
	settler *client.Settler
}

type sender struct {
	sess *amqp.Session
	s    *amqp.Sender
}

// close ends the sender's session, and with it the link.
func (s *sender) close() {
	ctx, cancel := context.WithTimeout(context.Background(), defaultOpTimeout)
	defer cancel()
	_ = s.sess.Close(ctx)
}

// newReceiver attaches a receiver link on its own session; its credit is
// managed by hand (flow).
func (s *session) newReceiver(ctx context.Context, address string) (*amqp.Receiver, error) {
	sess, err := s.conn.NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	r, err := sess.NewReceiver(ctx, address, &amqp.ReceiverOptions{Credit: -1})
	if err != nil {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), defaultOpTimeout)
			defer cancel()
			_ = sess.Close(ctx)
		}()
		return nil, err
	}
	return r, nil
}

func newSession(p *protocol, r reporter, conn *amqp.Conn, transport net.Conn) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		p:         p,
		r:         r,
		conn:      conn,
		transport: transport,
		ctx:       ctx,
		cancel:    cancel,
		sendSem:   make(chan struct{}, 1),
		senders:   map[string]*sender{},
		closed:    make(chan struct{}),
	}
}

// sender returns the cached sender link of the target address, attaching
// one to its node if needed.
func (s *session) sender(ctx context.Context, address string) (*amqp.Sender, error) {
	select {
	case s.sendSem <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	defer func() { <-s.sendSem }()
	if snd, ok := s.senders[address]; ok {
		return snd.s, nil
	}
	sess, err := s.conn.NewSession(ctx, nil)
	if err != nil {
		return nil, err
	}
	link, err := sess.NewSender(ctx, s.p.cfg.node(address), nil)
	if err != nil {
		go (&sender{sess: sess}).close()
		return nil, err
	}
	if len(s.senders) >= maxSenders {
		// Resolved addresses can be unbounded: forget an arbitrary one.
		for a, old := range s.senders {
			delete(s.senders, a)
			go old.close()
			break
		}
	}
	s.senders[address] = &sender{sess: sess, s: link}
	return link, nil
}

// dropSender forgets a sender whose link failed, so the next publish
// attaches a new one.
func (s *session) dropSender(address string, snd *amqp.Sender) {
	select {
	case s.sendSem <- struct{}{}:
	case <-s.ctx.Done():
		return
	}
	defer func() { <-s.sendSem }()
	if old, ok := s.senders[address]; ok && old.s == snd {
		delete(s.senders, address)
		go old.close()
	}
}

// Start launches the connection watcher and the receive loops.
func (s *session) Start(context.Context) error {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.conn.Done():
			if s.ctx.Err() == nil {
				err := s.conn.Err()
				if err == nil {
					err = fmt.Errorf("amqp10: the connection was closed")
				}
				s.r.Lost(err)
			}
		case <-s.ctx.Done():
		}
	}()
	for _, r := range s.receivers {
		r.settler.Start()
		s.wg.Add(1)
		go s.receive(r)
	}
	return nil
}

// receive hands each message to Inbound with a Settle that queues its
// disposition on the receiver's Settler. The link's credit is managed here:
// the broker may send at most jms.prefetchPolicy.all messages ahead, and
// never more than the Settler's bound of unsettled messages.
func (s *session) receive(r *receiver) {
	defer s.wg.Done()
	st := r.settler
	fc := &flow{r: r.r, window: int(s.p.cfg.prefetch), max: st.Max()}
	fc.update(0, 0)
	for {
		if !st.Acquire(s.ctx.Done()) {
			return
		}
		msg, err := r.r.Receive(s.ctx, nil)
		if err != nil {
			if s.ctx.Err() == nil {
				// The broker detached the link (e.g. its queue was deleted)
				// or the connection ended.
				s.r.Lost(fmt.Errorf("amqp10: receiving from %q: %w", r.spec.Address, err))
			}
			return
		}
		fc.update(1, 1)
		settle := st.Settle(func(o client.Outcome) {
			s.settle(r, msg, o)
			fc.update(0, -1)
		})
		if s.p.env.Inbound == nil {
			settle(client.Accept)
			continue
		}
		s.p.env.Inbound(client.Message{
			Address: r.spec.Address,
			Headers: messageHeaders(msg),
			Payload: payload(msg),
			QoS:     r.spec.qos,
			Settle:  settle,
		})
	}
}

// settle sends msg's disposition: accepted; released (the broker delivers
// it again); rejected (the broker drops or dead-letters it).
func (s *session) settle(r *receiver, msg *amqp.Message, o client.Outcome) {
	ctx, cancel := context.WithTimeout(s.ctx, s.p.cfg.requestTimeout)
	defer cancel()
	var err error
	switch o {
	case client.Accept:
		err = r.r.AcceptMessage(ctx, msg)
	case client.Redeliver:
		err = r.r.ReleaseMessage(ctx, msg)
	default:
		err = r.r.RejectMessage(ctx, msg, nil)
	}
	if err != nil {
		// The link is gone: the broker redelivers the message itself.
		s.p.log.Debug().Err(err).Str("address", r.spec.Address).Stringer("outcome", o).Msg("amqp10 settle failed")
	}
}

// flow manages a receiver's credit by hand: outstanding credit (issued,
// not yet used by a transfer) is topped up to min(window, max-unsettled).
type flow struct {
	r           *amqp.Receiver
	window, max int

	mu          sync.Mutex
	outstanding int // credit the broker may still use
	unsettled   int // received and not yet settled
}

// update records used credit and a change of unsettled messages, then
// issues what is missing.
func (f *flow) update(used, unsettled int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outstanding -= used
	f.unsettled += unsettled
	want := min(f.window, f.max-f.unsettled) - f.outstanding
	if want > 0 && f.r.IssueCredit(uint32(want)) == nil {
		f.outstanding += want
	}
}

// Close ends the session: the connection's close handshake, bounded by
// ctx, then the socket; it waits for the receive loops until ctx ends.
func (s *session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		// Dispositions the data plane settled so far go out first.
		for _, r := range s.receivers {
			r.settler.Close(ctx.Done())
		}
		s.cancel()
		go func() {
			done := make(chan struct{})
			go func() {
				_ = s.conn.Close()
				close(done)
			}()
			select {
			case <-done:
			case <-ctx.Done():
				_ = s.transport.Close() // unblocks Close
				<-done
			}
			s.wg.Wait()
			close(s.closed)
		}()
	})
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("amqp10: the connection did not close in time: %w", ctx.Err())
	}
}

// Publish sends msg to the link target msg.Address and waits for the
// broker's disposition.
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	snd, err := s.sender(ctx, msg.Address)
	if err != nil {
		s.r.Target(msg.Address, client.StatusFailed, err.Error())
		return fmt.Errorf("amqp10: attaching a sender to %q: %w", msg.Address, err)
	}
	if err := send(ctx, snd, newMessage(msg.Headers, msg.Payload)); err != nil {
		var le *amqp.LinkError
		if errors.As(err, &le) {
			s.dropSender(msg.Address, snd)
		}
		return fmt.Errorf("amqp10: sending to %q: %w", msg.Address, err)
	}
	s.r.Target(msg.Address, client.StatusOpen, client.DetailsProducerStarted)
	return nil
}

// ErrNotAccepted: the broker settled a sent message other than accepted
// (released or modified: it did not take it; rejected carries its own
// error).
var ErrNotAccepted = errors.New("the broker did not accept the message")

// send transfers msg and waits for the broker's disposition: nil only for
// accepted (go-amqp's Send also takes released and modified as success).
func send(ctx context.Context, snd *amqp.Sender, msg *amqp.Message) error {
	receipt, err := snd.SendWithReceipt(ctx, msg, nil)
	if err != nil {
		return err
	}
	state, err := receipt.Wait(ctx)
	if err != nil {
		return err
	}
	switch st := state.(type) {
	case *amqp.StateAccepted, nil:
		return nil
	case *amqp.StateRejected:
		if st.Error != nil {
			return st.Error
		}
		return fmt.Errorf("%w: rejected", ErrNotAccepted)
	case *amqp.StateReleased:
		return fmt.Errorf("%w: released", ErrNotAccepted)
	case *amqp.StateModified:
		return fmt.Errorf("%w: modified (delivery-failed %v, undeliverable-here %v)", ErrNotAccepted,
			st.DeliveryFailed, st.UndeliverableHere)
	default:
		return fmt.Errorf("%w: %T", ErrNotAccepted, state)
	}
}
