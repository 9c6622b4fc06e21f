// Package kafka is the broker client of connection type "kafka", built on
// github.com/twmb/franz-go.
//
// One client holds a main franz-go client (connection probe, health pings,
// producing) and one group consumer per source address × consumerCount, all
// in the connection's consumer group. Sources with qos 1 commit offsets only
// after env.Inbound returned; others use franz-go's auto-commit. franz-go
// reconnects to brokers by itself, but when no broker answers any more the
// client reports ConnectionLost and stops; the grain builds a new one.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

const (
	// defaultConnectTimeout bounds Connect when ctx has no deadline.
	defaultConnectTimeout = 30 * time.Second
	// defaultOpTimeout bounds Publish, commits and Close when ctx has none.
	defaultOpTimeout = 10 * time.Second
	// healthInterval is how often an idle client checks that a broker
	// answers; a failed dial or group error checks at once.
	healthInterval = 5 * time.Second
	// pingTimeout bounds one health ping.
	pingTimeout = 5 * time.Second
	// commitTimeout bounds one offset commit.
	commitTimeout = 5 * time.Second
	// dialTimeout bounds one TCP (and TLS) dial.
	dialTimeout = 10 * time.Second
)

var (
	errClosed       = errors.New("kafka: client is closed")
	errNotConnected = errors.New("kafka: client is not connected")
)

var _ client.Factory = New

type consumerSpec struct {
	topic  string
	qos    *int
	commit bool // qos 1: commit after processing
}

type kafkaClient struct {
	env       client.Env
	log       zerolog.Logger
	cfg       config
	clientID  string
	consumers []consumerSpec

	connectMu sync.Mutex

	mu            sync.Mutex
	closed        bool
	sess          *session
	connectCancel context.CancelFunc
	self          resource
	sources       []*resource
	targets       []*resource
}

// New builds a Kafka client for env.Connection; it does not connect.
func New(env client.Env) (client.Client, error) {
	conn := env.Connection
	if conn == nil {
		return nil, errors.New("kafka: no connection")
	}
	cfg, err := parseConfig(conn)
	if err != nil {
		return nil, err
	}
	c := &kafkaClient{
		env:      env,
		cfg:      cfg,
		clientID: fmt.Sprintf("dittoconn:%s:%d", conn.ID, env.ClientIndex),
		log: env.Logger.With().Str("connection_id", conn.ID).Int("client_index", env.ClientIndex).
			Str("connection_type", model.TypeKafka).Logger(),
	}
	now := time.Now()
	c.self = resource{Type: "client"}
	c.self.Set(client.StatusClosed, detailDisconnected, now)
	// Same order as client.SourceEntries: consumer copies, then addresses.
	for _, src := range conn.Sources {
		for range max(src.ConsumerCount, 1) {
			for _, a := range src.Addresses {
				c.consumers = append(c.consumers, consumerSpec{
					topic: a, qos: src.QoS, commit: src.QoS != nil && *src.QoS >= 1,
				})
				r := &resource{Type: "source", Address: a}
				r.Set(client.StatusClosed, detailConsumerStopped, now)
				c.sources = append(c.sources, r)
			}
		}
	}
	for _, t := range conn.Targets {
		r := &resource{Type: "target", Address: t.Address}
		r.Set(client.StatusClosed, detailProducerStopped, now)
		c.targets = append(c.targets, r)
	}
	return c, nil
}

func (c *kafkaClient) emit(kind client.EventKind, err error) {
	if c.env.Events != nil {
		c.env.Events(client.Event{Kind: kind, Err: err, At: time.Now()})
	}
}

func (c *kafkaClient) setAllLocked(status, clientDetail, sourceDetail, targetDetail string) {
	now := time.Now()
	c.self.Set(status, clientDetail, now)
	for _, r := range c.sources {
		r.Set(status, sourceDetail, now)
	}
	for _, r := range c.targets {
		r.Set(status, targetDetail, now)
	}
}

// baseOpts are the options every franz-go client of this connection shares.
func (c *kafkaClient) baseOpts(h *hooks) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.seeds...),
		kgo.ClientID(c.clientID),
		kgo.DialTimeout(dialTimeout),
		kgo.WithHooks(h),
	}
	if c.cfg.secure {
		tc := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.env.TLS != nil {
			tc = c.env.TLS.Clone()
		}
		// franz-go sets ServerName per broker when it is empty.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.cfg.sasl != nil {
		opts = append(opts, kgo.SASL(c.cfg.sasl))
	}
	if c.cfg.debug {
		opts = append(opts, kgo.WithLogger(kgoLogger{c.log}))
	}
	return opts
}

// Connect checks that a broker answers (which authenticates), then starts
// the consumers.
func (c *kafkaClient) Connect(ctx context.Context) error {
	c.connectMu.Lock()
	defer c.connectMu.Unlock()

	ctx, cancel := withDefaultTimeout(ctx, defaultConnectTimeout)
	defer cancel()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return errClosed
	}
	if c.sess != nil && c.self.Status == client.StatusOpen {
		c.mu.Unlock()
		return nil
	}
	old := c.sess
	c.sess = nil
	c.connectCancel = cancel
	c.mu.Unlock()
	if old != nil {
		old.close(ctx)
	}

	s, err := c.open(ctx)

	c.mu.Lock()
	c.connectCancel = nil
	if err == nil && c.closed {
		err = errClosed
	}
	if err != nil {
		if !c.closed {
			c.setAllLocked(client.StatusFailed, err.Error(), err.Error(), err.Error())
		}
		c.mu.Unlock()
		if s != nil {
			s.close(context.Background())
		}
		c.log.Warn().Err(err).Msg("kafka connect failed")
		return err
	}
	c.sess = s
	c.setAllLocked(client.StatusOpen, detailConnected, detailConsumerStarted, detailProducerStarted)
	c.mu.Unlock()

	s.start(c)
	c.log.Info().Strs("bootstrap_servers", c.cfg.seeds).Msg("kafka connected")
	c.emit(client.Connected, nil)
	return nil
}

func (c *kafkaClient) open(ctx context.Context) (*session, error) {
	s := newSession()
	opts := append(c.baseOpts(s.hooks),
		kgo.RecordPartitioner(partitioner{kgo.StickyKeyPartitioner(nil)}),
		// Fail fast on a missing topic rather than retrying for a minute.
		kgo.UnknownTopicRetries(2),
	)
	main, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", client.ErrConfig, err)
	}
	s.main = main
	// Ping tries each broker once; it authenticates, as SASL runs on connect.
	if err := main.Ping(ctx); err != nil {
		return s, c.connectError(ctx, err, s.hooks)
	}
	for _, cs := range c.consumers {
		copts := append(c.baseOpts(s.hooks),
			kgo.ConsumerGroup(c.cfg.groupID),
			kgo.ConsumeTopics(cs.topic),
			kgo.ConsumeResetOffset(c.cfg.reset),
		)
		if cs.commit {
			// Commit ourselves after processing, and hold rebalances while a
			// polled batch is processed so no processed record goes uncommitted.
			copts = append(copts, kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
		}
		cl, err := kgo.NewClient(copts...)
		if err != nil {
			return s, fmt.Errorf("%w: %w", client.ErrConfig, err)
		}
		s.consumers = append(s.consumers, &consumer{spec: cs, cl: cl})
	}
	return s, nil
}

// connectError maps a failed probe to the contract's sentinels.
func (c *kafkaClient) connectError(ctx context.Context, err error, h *hooks) error {
	servers := fmt.Sprint(c.cfg.seeds)
	if isAuthError(err) || isAuthError(h.lastDialError()) || c.cfg.sasl != nil && h.loginRefused() {
		return fmt.Errorf("%w: the brokers %s rejected the %s login: %w", client.ErrUnauthorized, servers, c.cfg.mechanism, err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		if errors.Is(ctxErr, context.DeadlineExceeded) {
			return fmt.Errorf("%w: no broker of %s answered in time", client.ErrTimeout, servers)
		}
		return fmt.Errorf("kafka: connecting to %s: %w", servers, ctxErr)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%w: connecting to %s: %w", client.ErrTimeout, servers, err)
	}
	var opErr *net.OpError
	var dnsErr *net.DNSError
	if errors.As(err, &opErr) || errors.As(err, &dnsErr) || h.lastDialError() != nil {
		return fmt.Errorf("%w: %s: %w", client.ErrUnreachable, servers, err)
	}
	return fmt.Errorf("kafka: connecting to %s: %w", servers, err)
}

// isAuthError is true for errors that mean the login was refused.
func isAuthError(err error) bool {
	return err != nil && (errors.Is(err, kerr.SaslAuthenticationFailed) ||
		errors.Is(err, kerr.UnsupportedSaslMechanism) ||
		errors.Is(err, kerr.IllegalSaslState) ||
		errors.Is(err, kerr.ClusterAuthorizationFailed))
}

// lost handles the end of a session the client did not ask for.
func (c *kafkaClient) lost(s *session, cause error) {
	s.lostOnce.Do(func() {
		c.mu.Lock()
		if c.sess != s || c.closed {
			c.mu.Unlock()
			return
		}
		detail := "connection lost: " + cause.Error()
		c.setAllLocked(client.StatusFailed, detail, detail, detail)
		c.mu.Unlock()
		// Stop franz-go's own retrying: the grain reconnects with backoff.
		go s.close(context.Background())
		c.log.Warn().Err(cause).Msg("kafka connection lost")
		c.emit(client.ConnectionLost, cause)
	})
}

// Publish produces msg to "topic", "topic/key" or "topic#partition" and
// waits for the broker's acknowledgement.
func (c *kafkaClient) Publish(ctx context.Context, msg client.Message) error {
	c.mu.Lock()
	s := c.sess
	open := s != nil && c.self.Status == client.StatusOpen
	closed := c.closed
	c.mu.Unlock()
	if closed {
		return errClosed
	}
	if !open {
		return errNotConnected
	}
	t, err := parseTarget(msg.Address)
	if err != nil {
		return err
	}
	ctx, cancel := withDefaultTimeout(ctx, defaultOpTimeout)
	defer cancel()
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

// Status reports the client entry, one entry per consumer and one per
// target.
func (c *kafkaClient) Status() []client.ResourceStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]client.ResourceStatus, 0, 1+len(c.sources)+len(c.targets))
	out = append(out, c.self.Entry())
	for _, r := range c.sources {
		out = append(out, r.Entry())
	}
	for _, r := range c.targets {
		out = append(out, r.Entry())
	}
	return out
}

// Close stops the consumers (committing what they processed), leaves the
// group and disconnects; later calls return nil.
func (c *kafkaClient) Close(ctx context.Context) error {
	ctx, cancel := withDefaultTimeout(ctx, defaultOpTimeout)
	defer cancel()

	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	s := c.sess
	c.sess = nil
	if c.connectCancel != nil {
		c.connectCancel()
	}
	c.setAllLocked(client.StatusClosed, detailDisconnected, detailConsumerStopped, detailProducerStopped)
	c.mu.Unlock()

	var err error
	if s != nil {
		err = s.close(ctx)
	}
	c.log.Info().Msg("kafka disconnected")
	c.emit(client.Disconnected, nil)
	return err
}

func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// partitionKey marks a record whose partition the target address chose.
type partitionKey struct{}

// partitioner honours a partition from the target address and otherwise
// hashes keys as Kafka's default partitioner does.
type partitioner struct{ kgo.Partitioner }

func (p partitioner) ForTopic(topic string) kgo.TopicPartitioner {
	return topicPartitioner{p.Partitioner.ForTopic(topic)}
}

type topicPartitioner struct{ kgo.TopicPartitioner }

func fixedPartition(r *kgo.Record) (int32, bool) {
	if r.Context == nil {
		return 0, false
	}
	p, ok := r.Context.Value(partitionKey{}).(int32)
	return p, ok
}

func (t topicPartitioner) RequiresConsistency(r *kgo.Record) bool {
	if _, ok := fixedPartition(r); ok {
		return true // index = partition number
	}
	return t.TopicPartitioner.RequiresConsistency(r)
}

func (t topicPartitioner) Partition(r *kgo.Record, n int) int {
	if p, ok := fixedPartition(r); ok {
		return int(p) // franz-go fails the record when out of range
	}
	return t.TopicPartitioner.Partition(r, n)
}

// OnNewBatch keeps the sticky partitioner moving between batches.
func (t topicPartitioner) OnNewBatch() {
	if nb, ok := t.TopicPartitioner.(kgo.TopicPartitionerOnNewBatch); ok {
		nb.OnNewBatch()
	}
}

// kgoLogger forwards franz-go's logs (debugEnabled) to zerolog.
type kgoLogger struct{ log zerolog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelDebug }

func (l kgoLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	var ev *zerolog.Event
	switch level {
	case kgo.LogLevelError:
		ev = l.log.Error()
	case kgo.LogLevelWarn:
		ev = l.log.Warn()
	case kgo.LogLevelInfo:
		ev = l.log.Info()
	default:
		ev = l.log.Debug()
	}
	ev.Fields(keyvals).Msg("franz-go: " + msg)
}
