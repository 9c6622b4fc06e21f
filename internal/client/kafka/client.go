// Package kafka is the broker client of connection type "kafka", built on
// github.com/twmb/franz-go.
//
// One client holds a main franz-go client (connection probe, health pings,
// producing) and one group consumer per source address × consumerCount, all
// in the connection's consumer group. franz-go
// reconnects to brokers by itself, but when no broker answers any more the
// client reports ConnectionLost and stops; the grain builds a new one.
//
// Settlement (sources with qos 1; qos 0 uses franz-go's auto-commit): a
// record's Message.Settle with Accept or Reject commits the offsets of its
// partition up to the first record not yet settled (Kafka has one offset
// per partition, so a slow record holds back the commits after it);
// Redeliver seeks the partition back to the record, so it and the records
// after it that were handed over are consumed again (at-least-once).
// Commits run on a goroutine per consumer (a client.Settler), seeks on the
// polling goroutine as franz-go asks. A consumer stops polling while it
// holds the bound of unsettled records (client.MaxUnsettled with
// KAFKA_CONSUMER_THROTTLING_LIMIT × …_MAX_IN_FLIGHT_FACTOR, 200); while it
// waits for room, the group's rebalances wait too (they are held while a
// polled batch is handed over), so long acknowledgement timeouts delay them.
package kafka

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
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

var _ client.Factory = New

type consumerSpec struct {
	topic  string
	qos    *int
	commit bool // qos 1: commit after processing
}

// protocol opens Kafka sessions for a client.Lifecycle.
type protocol struct {
	env       client.Env
	log       zerolog.Logger
	cfg       config
	clientID  string
	consumers []consumerSpec
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
	p := &protocol{
		env:      env,
		cfg:      cfg,
		clientID: fmt.Sprintf("dittoconn:%s:%d", conn.ID, env.ClientIndex),
		log:      client.ClientLogger(env),
	}
	client.EachConsumer(conn, func(src model.Source, a string) {
		p.consumers = append(p.consumers, consumerSpec{topic: a, qos: src.QoS, commit: src.QoS != nil && *src.QoS >= 1})
	})
	return resultClient{client.NewLifecycle(env, p, client.Options{
		Name:           "kafka",
		Shape:          shape,
		Endpoint:       strings.Join(cfg.seeds, ","),
		ConnectTimeout: defaultConnectTimeout,
		PublishTimeout: defaultOpTimeout,
		CloseTimeout:   defaultOpTimeout,
	})}, nil
}

// resultClient is the Lifecycle with the client.ResultPublisher extra, so
// that the data plane puts what the broker reported (debugEnabled) into
// the target's issued acknowledgement.
type resultClient struct{ *client.Lifecycle }

var _ client.ResultPublisher = resultClient{}

// PublishResult hands msg to the current session as Publish does.
func (c resultClient) PublishResult(ctx context.Context, msg client.Message) (client.Result, error) {
	s, err := c.Current()
	if err != nil {
		return client.Result{}, err
	}
	ctx, cancel := client.WithDefaultTimeout(ctx, defaultOpTimeout)
	defer cancel()
	return s.(*session).PublishResult(ctx, msg)
}

// baseOpts are the options every franz-go client of this connection shares.
func (c *protocol) baseOpts(h *hooks) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.cfg.seeds...),
		kgo.ClientID(c.clientID),
		kgo.DialTimeout(dialTimeout),
		kgo.WithHooks(h),
	}
	var tc *tls.Config
	if c.cfg.secure {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
		if c.env.TLS != nil {
			tc = c.env.TLS.Clone()
		}
	}
	switch {
	case c.env.Hosts != nil:
		// every broker address (the seeds' and those the cluster
		// advertises) is checked against the blocked hosts when dialled
		opts = append(opts, kgo.Dialer(func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				host = addr
			}
			nd := &net.Dialer{Timeout: dialTimeout, Control: c.env.DialControl(host)}
			if tc == nil {
				return nd.DialContext(ctx, network, addr)
			}
			cfg := tc.Clone()
			if cfg.ServerName == "" {
				cfg.ServerName = host // as franz-go's own TLS dial does
			}
			return (&tls.Dialer{NetDialer: nd, Config: cfg}).DialContext(ctx, network, addr)
		}))
	case tc != nil:
		// franz-go sets ServerName per broker when it is empty.
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if c.cfg.sasl != nil {
		opts = append(opts, kgo.SASL(c.cfg.sasl))
	}
	opts = append(opts, kgo.WithLogger(kgoLogger{c.log}))
	return opts
}

// Open checks that a broker answers (which authenticates) and readies the
// consumers.
func (c *protocol) Open(ctx context.Context, r *client.Reporter) (client.Session, error) {
	s, err := c.open(ctx, r)
	if s == nil {
		return nil, err
	}
	return s, err
}

func (c *protocol) open(ctx context.Context, r *client.Reporter) (*session, error) {
	s := newSession(c, r)
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
			// Commit ourselves as records are settled, and hold rebalances
			// while a polled batch is handed over (seeking back for a
			// redelivery happens then too).
			copts = append(copts, kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll())
		}
		cl, err := kgo.NewClient(copts...)
		if err != nil {
			return s, fmt.Errorf("%w: %w", client.ErrConfig, err)
		}
		s.consumers = append(s.consumers, newConsumer(cs, cl, client.MaxUnsettled("KAFKA_CONSUMER_THROTTLING_LIMIT", "KAFKA_CONSUMER_THROTTLING_MAX_IN_FLIGHT_FACTOR")))
	}
	return s, nil
}

// connectError maps a failed probe to the contract's sentinels.
func (c *protocol) connectError(ctx context.Context, err error, h *hooks) error {
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

// kgoLogger forwards franz-go's logs to zerolog at the level the service
// logs at (debugEnabled means something else in Ditto: see validate.go).
type kgoLogger struct{ log zerolog.Logger }

// Level asks franz-go only for what zerolog would write, so it does not
// format debug lines to be thrown away. franz-go's info lines (group and
// metadata chatter) are wanted only when debugging.
func (l kgoLogger) Level() kgo.LogLevel {
	lv := max(l.log.GetLevel(), zerolog.GlobalLevel())
	switch {
	case lv <= zerolog.DebugLevel:
		return kgo.LogLevelDebug
	case lv <= zerolog.WarnLevel:
		return kgo.LogLevelWarn
	case lv <= zerolog.PanicLevel:
		return kgo.LogLevelError
	}
	return kgo.LogLevelNone
}

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
