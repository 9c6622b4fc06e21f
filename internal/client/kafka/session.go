package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
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
		cons.log = func(err error) {
			s.p.log.Warn().Err(err).Str("topic", cons.spec.topic).Msg("kafka commit failed")
		}
		cons.settler.Start()
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

// consume polls one group consumer and hands each record to Inbound once
// the consumer's Settler has room: while the bound of unsettled records is
// reached it does not poll, which pauses fetching (franz-go keeps at most
// the fetch under way). With qos 1 the records' settlements commit offsets
// and seek back (consumer.settle); with qos 0 franz-go commits by itself.
func (s *session) consume(cons *consumer) {
	defer s.wg.Done()
	for {
		pctx, wake := context.WithCancel(s.ctx)
		cons.setWake(wake)
		fetches := cons.cl.PollFetches(pctx)
		wake()
		if fetches.IsClientClosed() || s.ctx.Err() != nil {
			return
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) {
				return // woken for a seek
			}
			s.p.log.Debug().Err(err).Str("topic", topic).Int32("partition", partition).Msg("kafka fetch error")
			s.hooks.poke()
		})
		skip := cons.applySeeks(nil)
		fetches.EachRecord(func(r *kgo.Record) {
			if s.ctx.Err() != nil || skip[r.Partition] {
				return // closing, or sought back: these come again
			}
			if !cons.settler.Acquire(s.ctx.Done()) {
				return
			}
			if skip = cons.applySeeks(skip); skip[r.Partition] {
				cons.settler.Settle(nil)(client.Accept) // frees the slot
				return
			}
			settle := cons.settler.Settle(cons.track(r))
			if s.p.env.Inbound == nil {
				settle(client.Accept)
				return
			}
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
				Settle:  settle,
			})
		})
		if cons.spec.commit {
			cons.applySeeks(nil)
			cons.cl.AllowRebalance()
		}
	}
}

// consumer is one group consumer of a source topic with its settlement
// state: per partition, the records handed over and not yet committed.
type consumer struct {
	spec    consumerSpec
	cl      *kgo.Client
	settler *client.Settler
	log     func(err error)

	mu    sync.Mutex
	parts map[int32]*partition
	seeks map[int32]kgo.EpochOffset // seeks the polling goroutine still has to do
	wake  context.CancelFunc        // ends the poll under way
}

// partition: pending holds the records handed over since the last commit,
// in offset order; gen changes on each seek back, which voids the
// settlements of the records handed over before it.
type partition struct {
	pending []*tracked
	gen     int
}

type tracked struct {
	r    *kgo.Record
	gen  int
	done bool
}

func newConsumer(spec consumerSpec, cl *kgo.Client, maxUnsettled int) *consumer {
	return &consumer{spec: spec, cl: cl, settler: client.NewSettler(maxUnsettled),
		parts: map[int32]*partition{}, seeks: map[int32]kgo.EpochOffset{}}
}

func (c *consumer) setWake(wake context.CancelFunc) {
	c.mu.Lock()
	c.wake = wake
	c.mu.Unlock()
}

// track registers r as handed over and returns what its settlement does:
// nothing for qos 0 (franz-go commits); for qos 1, Accept and Reject
// commit every record of the partition up to the first unsettled one,
// Redeliver seeks the partition back to r (later records of it come again
// as well: at-least-once).
func (c *consumer) track(r *kgo.Record) func(client.Outcome) {
	if !c.spec.commit {
		return nil
	}
	c.mu.Lock()
	p := c.parts[r.Partition]
	if p == nil {
		p = &partition{}
		c.parts[r.Partition] = p
	}
	t := &tracked{r: r, gen: p.gen}
	p.pending = append(p.pending, t)
	c.mu.Unlock()
	return func(o client.Outcome) { c.settle(p, t, o) }
}

// settle runs on the Settler's goroutine.
func (c *consumer) settle(p *partition, t *tracked, o client.Outcome) {
	c.mu.Lock()
	if t.gen != p.gen {
		c.mu.Unlock()
		return // sought back before: it is handed over again
	}
	if o == client.Redeliver {
		for i, x := range p.pending {
			if x == t {
				p.pending = p.pending[:i]
				break
			}
		}
		p.gen++
		c.seeks[t.r.Partition] = kgo.EpochOffset{Epoch: t.r.LeaderEpoch, Offset: t.r.Offset}
		wake := c.wake
		c.mu.Unlock()
		if wake != nil {
			wake() // the polling goroutine seeks (franz-go wants it there)
		}
		return
	}
	t.done = true
	var last *kgo.Record
	for len(p.pending) > 0 && p.pending[0].done {
		last = p.pending[0].r
		p.pending = p.pending[1:]
	}
	c.mu.Unlock()
	if last == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if err := c.cl.CommitRecords(ctx, last); err != nil && c.log != nil {
		// Redelivered after a restart: at-least-once, as qos 1 asks.
		c.log(err)
	}
}

// applySeeks seeks the partitions whose records are to be redelivered; on
// the polling goroutine only. It returns skip with those partitions added:
// their records still in hand are not handed over (they come again).
func (c *consumer) applySeeks(skip map[int32]bool) map[int32]bool {
	c.mu.Lock()
	if len(c.seeks) == 0 {
		c.mu.Unlock()
		return skip
	}
	seeks := c.seeks
	c.seeks = map[int32]kgo.EpochOffset{}
	c.mu.Unlock()
	if skip == nil {
		skip = map[int32]bool{}
	}
	for part := range seeks {
		skip[part] = true
	}
	c.cl.SetOffsets(map[string]map[int32]kgo.EpochOffset{c.spec.topic: seeks})
	return skip
}

// Close stops the session's goroutines and closes every franz-go client,
// waiting until ctx ends at most. Consumers with auto-commit commit on
// close; all leave the group.
func (s *session) Close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.cancel()
		go func() {
			// Consumers finish their batch and commit what was settled so
			// far before their clients close.
			s.wg.Wait()
			for _, cons := range s.consumers {
				cons.settler.Close(ctx.Done())
			}
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
	_, err := s.PublishResult(ctx, msg)
	return err
}

// PublishResult publishes as Publish does and returns the issued
// acknowledgement Ditto's Kafka publisher makes of it: 204 without a
// payload, or with debugEnabled 200 carrying the record metadata.
func (s *session) PublishResult(ctx context.Context, msg client.Message) (client.Result, error) {
	t, err := parseTarget(msg.Address)
	if err != nil {
		return client.Result{}, err
	}
	rec := &kgo.Record{Topic: t.topic, Key: t.key, Value: msg.Payload, Context: ctx}
	if t.partition >= 0 {
		rec.Context = context.WithValue(ctx, partitionKey{}, t.partition)
	}
	for k, v := range msg.Headers {
		rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: k, Value: []byte(v)})
	}
	r, err := s.main.ProduceSync(ctx, rec).First()
	if err != nil {
		return client.Result{}, fmt.Errorf("kafka: publishing to %q: %w", msg.Address, err)
	}
	if !s.p.cfg.debug {
		return client.Result{Status: http.StatusNoContent}, nil
	}
	return client.Result{Status: http.StatusOK, Payload: recordMetadata(r)}, nil
}

// recordMetadata is the payload of Ditto's debug acknowledgement: the
// fields of Kafka's RecordMetadata in Ditto's order, sizes -1 for a null
// key or value, timestamp (ms) and offset only when known.
func recordMetadata(r *kgo.Record) json.RawMessage {
	size := func(b []byte) int {
		if b == nil {
			return -1
		}
		return len(b)
	}
	b := []byte{'{'}
	if !r.Timestamp.IsZero() {
		b = fmt.Appendf(b, `"timestamp":%d,`, r.Timestamp.UnixMilli())
	}
	b = fmt.Appendf(b, `"serializedKeySize":%d,"serializedValueSize":%d,"topic":`, size(r.Key), size(r.Value))
	topic, _ := json.Marshal(r.Topic)
	b = append(b, topic...)
	b = fmt.Appendf(b, `,"partition":%d`, r.Partition)
	if r.Offset >= 0 {
		b = fmt.Appendf(b, `,"offset":%d`, r.Offset)
	}
	return append(b, '}')
}
