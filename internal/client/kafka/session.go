package kafka

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client"
)

// session is one set of franz-go clients.
type session struct {
	p         *protocol
	r         *client.Reporter
	main      *kgo.Client
	consumers []*consumer
	hooks     *hooks

	ctx    context.Context // ends when the session is torn down
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closed    chan struct{} // closed once every franz-go client is closed
}

type consumer struct {
	spec consumerSpec
	cl   *kgo.Client
}

func newSession(p *protocol, r *client.Reporter) *session {
	ctx, cancel := context.WithCancel(context.Background())
	return &session{
		p:      p,
		r:      r,
		hooks:  &hooks{probe: make(chan struct{}, 1)},
		ctx:    ctx,
		cancel: cancel,
		closed: make(chan struct{}),
	}
}

// hooks watches franz-go's broker dials and group errors: any failure asks
// the health monitor to check at once.
type hooks struct {
	probe chan struct{}

	mu         sync.Mutex
	dialErr    error
	saslClosed bool // the broker dropped the connection during SASL
}

var (
	_ kgo.HookBrokerConnect    = (*hooks)(nil)
	_ kgo.HookBrokerRead       = (*hooks)(nil)
	_ kgo.HookGroupManageError = (*hooks)(nil)
)

// OnBrokerRead notes a failed SASL response: brokers that refuse a login
// may just close the connection instead of answering with an error code
// (SASL v0 and kfake do), which otherwise looks like a network failure.
func (h *hooks) OnBrokerRead(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err != nil && (key == saslAuthenticateKey || key == saslHandshakeKey) {
		h.mu.Lock()
		h.saslClosed = true
		h.mu.Unlock()
	}
}

// Kafka API keys of the SASL exchange.
const (
	saslHandshakeKey    = 17
	saslAuthenticateKey = 36
)

// loginRefused reports whether a SASL exchange was cut off.
func (h *hooks) loginRefused() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.saslClosed
}

func (h *hooks) OnBrokerConnect(_ kgo.BrokerMetadata, _ time.Duration, _ net.Conn, err error) {
	h.mu.Lock()
	h.dialErr = err
	h.mu.Unlock()
	if err != nil {
		h.poke()
	}
}

func (h *hooks) OnGroupManageError(error) { h.poke() }

func (h *hooks) poke() {
	select {
	case h.probe <- struct{}{}:
	default:
	}
}

// lastDialError is the error of the latest broker connection attempt.
func (h *hooks) lastDialError() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dialErr
}

// Start launches the health monitor and the consumers.
func (s *session) Start(context.Context) error {
	s.wg.Add(1)
	go s.monitor()
	for _, cons := range s.consumers {
		s.wg.Add(1)
		go s.consume(cons)
	}
	return nil
}

// monitor reports ConnectionLost once no broker answers a ping, checked
// twice so a single dropped connection is not mistaken for an outage.
func (s *session) monitor() {
	defer s.wg.Done()
	tick := time.NewTicker(healthInterval)
	defer tick.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		case <-s.hooks.probe:
		}
		var err error
		for attempt := range 2 {
			if attempt > 0 {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
			ctx, cancel := context.WithTimeout(s.ctx, pingTimeout)
			err = s.main.Ping(ctx)
			cancel()
			if err == nil || s.ctx.Err() != nil {
				break
			}
		}
		if err != nil && s.ctx.Err() == nil {
			if isAuthError(err) {
				err = fmt.Errorf("%w: %w", client.ErrUnauthorized, err)
			} else {
				err = fmt.Errorf("%w: no broker answers: %w", client.ErrUnreachable, err)
			}
			s.r.Lost(err)
			return
		}
	}
}

// consume polls one group consumer and hands each record to Inbound. With
// qos 1 the offsets are committed after the batch was processed.
func (s *session) consume(cons *consumer) {
	defer s.wg.Done()
	for {
		fetches := cons.cl.PollFetches(s.ctx)
		if fetches.IsClientClosed() || s.ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			s.p.log.Debug().Err(err).Str("topic", topic).Int32("partition", partition).Msg("kafka fetch error")
			s.hooks.poke()
		})
		var processed []*kgo.Record
		fetches.EachRecord(func(r *kgo.Record) {
			if s.ctx.Err() != nil {
				return // closing: the rest stays uncommitted and is redelivered
			}
			if s.p.env.Inbound != nil {
				h := recordHeaders(r)
				exp := expired(h, time.Now())
				if exp {
					s.p.log.Debug().Str("topic", r.Topic).Int32("partition", r.Partition).Int64("offset", r.Offset).
						Str("creationTime", h[hCreationTime]).Str("ttl", h[hTTL]).Msg("kafka message expired, dropped")
				}
				s.p.env.Inbound(client.Message{
					Address: cons.spec.topic,
					Headers: h,
					Payload: r.Value,
					QoS:     cons.spec.qos,
					Expired: exp,
				})
			}
			processed = append(processed, r)
		})
		if cons.spec.commit {
			if len(processed) > 0 {
				// Not s.ctx: the last batch before a close must still commit.
				ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
				if err := cons.cl.CommitRecords(ctx, processed...); err != nil {
					// Redelivered after a restart: at-least-once, as qos 1 asks.
					s.p.log.Warn().Err(err).Str("topic", cons.spec.topic).Msg("kafka commit failed")
				}
				cancel()
			}
			cons.cl.AllowRebalance()
		}
	}
}

// Close stops the session's goroutines and closes every franz-go client,
// waiting until ctx ends at most. Consumers with auto-commit commit on
// close; all leave the group.
func (s *session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.cancel()
		go func() {
			// Consumers finish (and commit) their batch before their clients
			// close.
			s.wg.Wait()
			var wg sync.WaitGroup
			for _, cons := range s.consumers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cons.cl.CloseAllowingRebalance()
				}()
			}
			if s.main != nil {
				s.main.Close()
			}
			wg.Wait()
			close(s.closed)
		}()
	})
	select {
	case <-s.closed:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("kafka: clients did not close in time: %w", ctx.Err())
	}
}

// Publish produces msg to "topic", "topic/key" or "topic#partition" and
// waits for the broker's acknowledgement.
func (s *session) Publish(ctx context.Context, msg client.Message) error {
	t, err := parseTarget(msg.Address)
	if err != nil {
		return err
	}
	rec := &kgo.Record{Topic: t.topic, Key: t.key, Value: msg.Payload, Context: ctx}
	if t.partition >= 0 {
		rec.Context = context.WithValue(ctx, partitionKey{}, t.partition)
	}
	for k, v := range msg.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	if err := s.main.ProduceSync(ctx, rec).FirstErr(); err != nil {
		return fmt.Errorf("kafka: publishing to %q: %w", msg.Address, err)
	}
	return nil
}
