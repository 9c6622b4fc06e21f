package monitor

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
)

// FluentConfig is ditto.connectivity.monitoring.logger.publisher with its
// fluency block. Keys without a fluent-logger-golang counterpart
// (flushAttemptInterval, waitUntilBufferFlushed, waitUntilTerminated,
// bufferChunk*, jvmHeapBufferMode, fileBackupDir) are kept for completeness
// and ignored.
type FluentConfig struct {
	Enabled              bool
	LogLevels            []LogLevel // published levels; success and failure
	LogHeadersAndPayload bool
	LogTag               string // "": connection:<connectionId>
	AdditionalLogContext map[string]string

	Host                                     string
	Port                                     int
	SSLEnabled                               bool
	ConnectionTimeout                        time.Duration
	ReadTimeout                              time.Duration
	FlushAttemptInterval                     time.Duration
	WaitUntilBufferFlushed                   time.Duration
	WaitUntilTerminated                      time.Duration
	MaxBufferSize                            int64
	BufferChunkInitialSize                   int64
	BufferChunkRetentionSize                 int64
	BufferChunkRetentionTime                 time.Duration
	JVMHeapBufferMode                        bool
	FileBackupDir                            string
	SenderMaxRetryCount                      int
	SenderBaseRetryInterval                  time.Duration
	SenderMaxRetryInterval                   time.Duration
	AckResponseMode                          bool
	WaitUntilAllBufferFlushedDurationOnClose time.Duration
}

// DefaultFluentConfig is Ditto's default (publishing disabled).
func DefaultFluentConfig() FluentConfig {
	return FluentConfig{
		LogLevels: []LogLevel{LevelSuccess, LevelFailure},
		Host:      "localhost", Port: 24224,
		ConnectionTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second,
		FlushAttemptInterval: 600 * time.Millisecond, WaitUntilBufferFlushed: 60 * time.Second,
		WaitUntilTerminated: 60 * time.Second, MaxBufferSize: 64 << 20, BufferChunkInitialSize: 1 << 20,
		BufferChunkRetentionSize: 4 << 20, BufferChunkRetentionTime: time.Second,
		SenderMaxRetryCount: 7, SenderBaseRetryInterval: 400 * time.Millisecond,
		SenderMaxRetryInterval: 30 * time.Second, WaitUntilAllBufferFlushedDurationOnClose: 5 * time.Second,
	}
}

const envPrefix = "CONNECTIVITY_LOGGER_"

// LogConfigFromEnv reads the in-memory logger settings
// (CONNECTIVITY_LOGGER_SUCCESS_CAPACITY, _FAILURE_CAPACITY,
// _MAX_LOG_SIZE_BYTES, _LOG_DURATION, _ACTIVE_CHECK_INTERVAL) over Ditto's
// defaults. getenv is os.Getenv in production.
func LogConfigFromEnv(getenv func(string) string) (LogConfig, error) {
	c := DefaultLogConfig()
	e := envReader{getenv: getenv, prefix: envPrefix}
	e.int("SUCCESS_CAPACITY", &c.SuccessCapacity)
	e.int("FAILURE_CAPACITY", &c.FailureCapacity)
	e.int("MAX_LOG_SIZE_BYTES", &c.MaxLogSizeBytes)
	e.duration("LOG_DURATION", &c.LogDuration)
	e.duration("ACTIVE_CHECK_INTERVAL", &c.ActiveCheckInterval)
	return c, e.err
}

// FluentConfigFromEnv reads CONNECTIVITY_LOGGER_PUBLISHER_* over Ditto's
// defaults: ENABLED, LOG_LEVELS ("success,failure"), LOG_HEADERS_AND_PAYLOAD,
// LOG_TAG, FLUENCY_HOST, FLUENCY_PORT, FLUENCY_SSL_ENABLED,
// FLUENCY_CONNECTION_TIMEOUT, FLUENCY_READ_TIMEOUT,
// FLUENCY_WAIT_UNTIL_ALL_BUFFER_FLUSHED_DURATION_ON_CLOSE (Ditto's names);
// the other fluency keys follow the same pattern (FLUENCY_MAX_BUFFER_SIZE,
// FLUENCY_SENDER_MAX_RETRY_COUNT, …). Durations take HOCON units (600ms,
// 5s, 1h, 2d; a bare number is milliseconds).
func FluentConfigFromEnv(getenv func(string) string) (FluentConfig, error) {
	c := DefaultFluentConfig()
	e := envReader{getenv: getenv, prefix: envPrefix + "PUBLISHER_"}
	e.bool("ENABLED", &c.Enabled)
	if v := e.get("LOG_LEVELS"); v != "" {
		c.LogLevels = nil
		for _, p := range strings.Split(v, ",") {
			switch strings.TrimSpace(strings.ToLower(p)) {
			case "success":
				c.LogLevels = append(c.LogLevels, LevelSuccess)
			case "failure":
				c.LogLevels = append(c.LogLevels, LevelFailure)
			case "":
			default:
				e.fail("LOG_LEVELS", p)
			}
		}
	}
	e.bool("LOG_HEADERS_AND_PAYLOAD", &c.LogHeadersAndPayload)
	if v := e.get("LOG_TAG"); v != "" && v != "null" {
		c.LogTag = v
	}
	e.prefix += "FLUENCY_"
	if v := e.get("HOST"); v != "" {
		c.Host = v
	}
	e.int("PORT", &c.Port)
	e.bool("SSL_ENABLED", &c.SSLEnabled)
	e.duration("CONNECTION_TIMEOUT", &c.ConnectionTimeout)
	e.duration("READ_TIMEOUT", &c.ReadTimeout)
	e.duration("FLUSH_ATTEMPT_INTERVAL", &c.FlushAttemptInterval)
	e.duration("WAIT_UNTIL_BUFFER_FLUSHED", &c.WaitUntilBufferFlushed)
	e.duration("WAIT_UNTIL_TERMINATED", &c.WaitUntilTerminated)
	e.int64("MAX_BUFFER_SIZE", &c.MaxBufferSize)
	e.int64("BUFFER_CHUNK_INITIAL_SIZE", &c.BufferChunkInitialSize)
	e.int64("BUFFER_CHUNK_RETENTION_SIZE", &c.BufferChunkRetentionSize)
	e.duration("BUFFER_CHUNK_RETENTION_TIME", &c.BufferChunkRetentionTime)
	e.bool("JVM_HEAP_BUFFER_MODE", &c.JVMHeapBufferMode)
	if v := e.get("FILE_BACKUP_DIR"); v != "" && v != "null" {
		c.FileBackupDir = v
	}
	e.int("SENDER_MAX_RETRY_COUNT", &c.SenderMaxRetryCount)
	e.duration("SENDER_BASE_RETRY_INTERVAL", &c.SenderBaseRetryInterval)
	e.duration("SENDER_MAX_RETRY_INTERVAL", &c.SenderMaxRetryInterval)
	e.bool("ACK_RESPONSE_MODE", &c.AckResponseMode)
	e.duration("WAIT_UNTIL_ALL_BUFFER_FLUSHED_DURATION_ON_CLOSE", &c.WaitUntilAllBufferFlushedDurationOnClose)
	return c, e.err
}

type envReader struct {
	getenv func(string) string
	prefix string
	err    error
}

func (e *envReader) get(k string) string { return strings.TrimSpace(e.getenv(e.prefix + k)) }

func (e *envReader) fail(k, v string) {
	if e.err == nil {
		e.err = fmt.Errorf("monitor: invalid %s%s=%q", e.prefix, k, v)
	}
}

func (e *envReader) bool(k string, dst *bool) {
	if v := e.get(k); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			e.fail(k, v)
			return
		}
		*dst = b
	}
}

func (e *envReader) int(k string, dst *int) {
	if v := e.get(k); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			e.fail(k, v)
			return
		}
		*dst = n
	}
}

func (e *envReader) int64(k string, dst *int64) {
	if v := e.get(k); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			e.fail(k, v)
			return
		}
		*dst = n
	}
}

func (e *envReader) duration(k string, dst *time.Duration) {
	if v := e.get(k); v != "" {
		d, err := parseHOCONDuration(v)
		if err != nil {
			e.fail(k, v)
			return
		}
		*dst = d
	}
}

// parseHOCONDuration understands the forms Ditto's config uses: Go-style
// ("600ms", "5s", "1h"), days ("2d") and bare milliseconds ("500").
func parseHOCONDuration(s string) (time.Duration, error) {
	s = strings.ReplaceAll(s, " ", "")
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Millisecond, nil
	}
	if d, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseFloat(d, 64)
		if err != nil {
			return 0, err
		}
		return time.Duration(n * float64(24*time.Hour)), nil
	}
	return time.ParseDuration(s)
}

// FluentPublisher forwards log entries to Fluentd/Fluent Bit over the
// forward protocol, one instance per node. It posts asynchronously so a slow
// or absent receiver never blocks a client goroutine; when its buffer is
// full entries are dropped (and reported via slog), as Fluency does.
type FluentPublisher struct {
	cfg        FluentConfig
	instanceID string
	levels     [2]bool
	f          *fluent.Fluent
}

var (
	_ Publisher     = (*FluentPublisher)(nil)
	_ DetailsWanter = (*FluentPublisher)(nil)
)

// NewFluentPublisher connects (lazily, in the background) to cfg.Host:Port.
// instanceID becomes the instanceId field ("" leaves it out).
func NewFluentPublisher(cfg FluentConfig, instanceID string) (*FluentPublisher, error) {
	fc := fluent.Config{
		FluentHost:         cfg.Host,
		FluentPort:         cfg.Port,
		Timeout:            cfg.ConnectionTimeout,
		WriteTimeout:       cfg.ReadTimeout,
		ReadTimeout:        cfg.ReadTimeout,
		Async:              true,
		SubSecondPrecision: true, // Ditto sends EventTime with nanoseconds
		RequestAck:         cfg.AckResponseMode,
		MaxRetry:           cfg.SenderMaxRetryCount,
		RetryWait:          int(cfg.SenderBaseRetryInterval / time.Millisecond),
		MaxRetryWait:       int(cfg.SenderMaxRetryInterval / time.Millisecond),
		// fluent-logger-golang bounds its queue in records, Fluency in bytes:
		// assume about 1 KiB per record.
		BufferLimit: int(max(cfg.MaxBufferSize/1024, 1024)),
		AsyncResultCallback: func(_ []byte, err error) {
			if err != nil {
				slog.Warn("connection log publishing failed", "error", err)
			}
		},
	}
	if cfg.SSLEnabled {
		fc.FluentNetwork = "tls"
	}
	f, err := fluent.New(fc)
	if err != nil {
		return nil, err
	}
	p := &FluentPublisher{cfg: cfg, instanceID: instanceID, f: f}
	for _, l := range cfg.LogLevels {
		if l <= LevelFailure {
			p.levels[l] = true
		}
	}
	return p, nil
}

// Tag is the Fluent tag of a connection's records.
func (p *FluentPublisher) Tag(connectionID string) string {
	if p.cfg.LogTag != "" {
		return p.cfg.LogTag
	}
	return "connection:" + connectionID
}

// Record is the map published for an entry (Ditto's field names).
func (p *FluentPublisher) Record(connectionID string, e *LogEntry, details string) map[string]any {
	r := make(map[string]any, 10+len(p.cfg.AdditionalLogContext))
	r["connectionId"] = connectionID
	r["level"] = e.Level.String()
	r["category"] = e.Category.String()
	r["type"] = e.Type.String()
	if e.CorrelationID != DefaultCorrelationID && e.CorrelationID != "" {
		r["correlationId"] = e.CorrelationID
	}
	if e.Address != "" {
		r["address"] = e.Address
	}
	if e.EntityID != "" {
		if e.EntityType != "" {
			r["entityType"] = e.EntityType
		}
		r["entityId"] = e.EntityID
	}
	msg := e.Message
	if p.cfg.LogHeadersAndPayload {
		msg += details
	}
	r["message"] = msg
	if p.instanceID != "" {
		r["instanceId"] = p.instanceID
	}
	for k, v := range p.cfg.AdditionalLogContext {
		r[k] = v
	}
	return r
}

// WantsDetails implements DetailsWanter: the details are read only with
// LogHeadersAndPayload, and only for entries of a published level.
func (p *FluentPublisher) WantsDetails(e *LogEntry) bool {
	return p.cfg.LogHeadersAndPayload && p.publishes(e.Level)
}

func (p *FluentPublisher) publishes(l LogLevel) bool { return l <= LevelFailure && p.levels[l] }

// Publish implements Publisher.
func (p *FluentPublisher) Publish(connectionID string, e *LogEntry, details string) {
	if !p.publishes(e.Level) {
		return
	}
	if err := p.f.PostWithTime(p.Tag(connectionID), e.Timestamp, p.Record(connectionID, e, details)); err != nil {
		slog.Warn("connection log entry not published", "connectionId", connectionID, "error", err)
	}
}

// Close flushes what is queued, waiting at most
// WaitUntilAllBufferFlushedDurationOnClose.
func (p *FluentPublisher) Close() error {
	done := make(chan error, 1)
	go func() { done <- p.f.Close() }()
	wait := p.cfg.WaitUntilAllBufferFlushedDurationOnClose
	if wait <= 0 {
		wait = time.Millisecond
	}
	select {
	case err := <-done:
		return err
	case <-time.After(wait):
		return fmt.Errorf("monitor: fluent buffer not flushed within %s", wait)
	}
}
