package kafka

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// specificConfig keys of kafka connections.
const (
	cfgBootstrapServers    = "bootstrapServers"
	cfgSASLMechanism       = "saslMechanism"
	cfgGroupID             = "groupId"
	cfgConsumerOffsetReset = "consumerOffsetReset"
	cfgDebugEnabled        = "debugEnabled"
)

// Ditto header names of record metadata on inbound messages.
const (
	hKey       = "kafka.key"
	hTopic     = "kafka.topic"
	hTimestamp = "kafka.timestamp"
)

type config struct {
	seeds     []string
	secure    bool
	sasl      sasl.Mechanism // nil without URI user-info
	mechanism string
	groupID   string
	reset     kgo.Offset
	// debug (debugEnabled, Java's Boolean.parseBoolean): issued
	// acknowledgements carry the record metadata
	debug bool
}

// parseConfig reads the URI and specificConfig of conn. Errors never carry
// the password.
func parseConfig(conn *model.Connection) (config, error) {
	ep, err := client.ParseEndpoint(conn)
	if err != nil {
		return config{}, err
	}
	var cfg config
	switch ep.Scheme {
	case "tcp":
	case "ssl":
		cfg.secure = true
	default:
		return config{}, fmt.Errorf("%w: the URI scheme %q is not valid for kafka", client.ErrConfig, ep.Scheme)
	}
	sc := conn.SpecificConfig
	cfg.debug = strings.EqualFold(sc[cfgDebugEnabled], "true")
	for _, s := range strings.Split(sc[cfgBootstrapServers], ",") {
		if s = strings.TrimSpace(s); s != "" {
			cfg.seeds = append(cfg.seeds, s)
		}
	}
	if len(cfg.seeds) == 0 {
		// Ditto requires bootstrapServers; the URI's host is the best fallback.
		if ep.Host == "" || ep.Port == "" {
			return config{}, fmt.Errorf("%w: no bootstrapServers configured", client.ErrConfig)
		}
		cfg.seeds = []string{ep.HostPort()}
	}
	if user, pass, ok := client.UserInfo(conn); ok {
		cfg.mechanism = strings.ToUpper(strings.TrimSpace(sc[cfgSASLMechanism]))
		switch cfg.mechanism {
		case "", "PLAIN":
			cfg.mechanism = "PLAIN"
			cfg.sasl = plain.Auth{User: user, Pass: pass}.AsMechanism()
		case "SCRAM-SHA-256":
			cfg.sasl = scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			cfg.sasl = scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()
		default:
			return config{}, fmt.Errorf("%w: saslMechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512",
				client.ErrConfig, sc[cfgSASLMechanism])
		}
	}
	cfg.groupID = sc[cfgGroupID]
	if cfg.groupID == "" {
		cfg.groupID = conn.ID
	}
	switch strings.ToLower(strings.TrimSpace(sc[cfgConsumerOffsetReset])) {
	case "", "latest":
		// Kafka's own default for auto.offset.reset, which Ditto keeps.
		cfg.reset = kgo.NewOffset().AtEnd()
	case "earliest":
		cfg.reset = kgo.NewOffset().AtStart()
	default:
		return config{}, fmt.Errorf("%w: consumerOffsetReset %q is not earliest or latest",
			client.ErrConfig, sc[cfgConsumerOffsetReset])
	}
	return cfg, nil
}

// target is a parsed target address: "topic", "topic/key" or
// "topic#partition".
type target struct {
	topic     string
	key       []byte // nil: no key
	partition int32  // -1: chosen by the partitioner
}

func parseTarget(address string) (target, error) {
	t := target{topic: address, partition: -1}
	if i := strings.IndexByte(address, '/'); i >= 0 {
		t.topic, t.key = address[:i], []byte(address[i+1:])
	} else if i := strings.LastIndexByte(address, '#'); i >= 0 {
		p, err := strconv.ParseInt(address[i+1:], 10, 32)
		if err != nil || p < 0 {
			return target{}, fmt.Errorf("kafka: target address %q: the partition is not a number >= 0", address)
		}
		t.topic, t.partition = address[:i], int32(p)
	}
	if t.topic == "" {
		return target{}, fmt.Errorf("kafka: target address %q has no topic", address)
	}
	return t, nil
}

// recordHeaders are the Ditto headers of a consumed record: its headers,
// then topic, key and timestamp, which win on a clash.
func recordHeaders(r *kgo.Record) map[string]string {
	h := make(map[string]string, len(r.Headers)+3)
	for _, kv := range r.Headers {
		h[kv.Key] = string(kv.Value)
	}
	h[hTopic] = r.Topic
	if r.Key != nil {
		h[hKey] = string(r.Key)
	}
	if !r.Timestamp.IsZero() {
		h[hTimestamp] = strconv.FormatInt(r.Timestamp.UnixMilli(), 10)
	}
	return h
}

// Ditto's Kafka message expiry headers, both in milliseconds: creation-time
// since the epoch, ttl as a duration.
const (
	hCreationTime = "creation-time"
	hTTL          = "ttl"
)

// expired reports whether a consumed record's headers carry both expiry
// headers and at least ttl has passed since creation-time. Headers that do
// not parse never expire a message: as in Ditto, a bad header must not
// lose it.
func expired(h map[string]string, now time.Time) bool {
	created, okC := h[hCreationTime]
	ttl, okT := h[hTTL]
	if !okC || !okT {
		return false
	}
	c, err1 := strconv.ParseInt(created, 10, 64)
	t, err2 := strconv.ParseInt(ttl, 10, 64)
	if err1 != nil || err2 != nil {
		return false
	}
	return now.UnixMilli()-c >= t
}
