package monitor

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dittoconn/dittoconn/internal/ojson"
)

// LogConfig is ditto.connectivity.monitoring.logger.
type LogConfig struct {
	SuccessCapacity     int           // entries per logger and level; 10
	FailureCapacity     int           // 10
	MaxLogSizeBytes     int           // cap of one answer (sum of the entries' JSON lengths); 250000
	LogDuration         time.Duration // how long enabled logging lasts; 1h
	ActiveCheckInterval time.Duration // how often the grain checks for expiry; 5m
}

// DefaultLogConfig is Ditto's default.
func DefaultLogConfig() LogConfig {
	return LogConfig{SuccessCapacity: 10, FailureCapacity: 10, MaxLogSizeBytes: 250_000,
		LogDuration: time.Hour, ActiveCheckInterval: 5 * time.Minute}
}

func (c LogConfig) withDefaults() LogConfig {
	d := DefaultLogConfig()
	if c.SuccessCapacity <= 0 {
		c.SuccessCapacity = d.SuccessCapacity
	}
	if c.FailureCapacity <= 0 {
		c.FailureCapacity = d.FailureCapacity
	}
	if c.MaxLogSizeBytes <= 0 {
		c.MaxLogSizeBytes = d.MaxLogSizeBytes
	}
	if c.LogDuration <= 0 {
		c.LogDuration = d.LogDuration
	}
	if c.ActiveCheckInterval <= 0 {
		c.ActiveCheckInterval = d.ActiveCheckInterval
	}
	return c
}

// Info describes the message a log entry is about (Ditto's InfoProvider).
type Info struct {
	CorrelationID string    // "" → DefaultCorrelationID
	Timestamp     time.Time // zero → now
	EntityType    string    // "thing", "policy"; with EntityID
	EntityID      string
	// Headers and Payload of the message, for the loggers that append them
	// (Ditto's logHeadersAndPayload); nil Headers: an info without a message.
	Headers map[string]string
	Payload string
	// PayloadBytes stands for Payload when Payload is empty; it may be read
	// when an entry is retrieved, so it must not change afterwards.
	PayloadBytes []byte
}

// LogEntry is one connection log entry.
type LogEntry struct {
	CorrelationID string
	Timestamp     time.Time
	Category      LogCategory
	Type          LogType
	Level         LogLevel
	Message       string
	Address       string // "": none
	EntityType    string // "": none
	EntityID      string

	seq uint64 // insertion order, breaks timestamp ties
	// details: the message's headers and payload, appended to Message when
	// the entry is read (rendering them for every message, of which a
	// logger keeps only the latest few, would cost more than the rest of
	// the logging together).
	details *details
}

// details are a message's headers (key, value, key, value, …) and payload.
type details struct {
	kv           []string
	payload      string
	payloadBytes []byte
}

func detailsOf(info *Info) *details {
	kv := make([]string, 0, 2*len(info.Headers))
	for k, v := range info.Headers {
		kv = append(kv, k, v)
	}
	return &details{kv: kv, payload: info.Payload, payloadBytes: info.PayloadBytes}
}

// rendered is the entry with its headers-and-payload suffix in Message.
func (e LogEntry) rendered() LogEntry {
	if e.details != nil {
		e.Message += e.details.String()
		e.details = nil
	}
	return e
}

// AppendJSON writes the entry in Ditto's field order.
func (e *LogEntry) AppendJSON(b []byte) []byte {
	b = append(b, `{"correlationId":`...)
	b = ojson.Ditto.AppendString(b, e.CorrelationID)
	b = append(b, `,"timestamp":`...)
	b = appendInstantOrNull(b, e.Timestamp)
	b = append(b, `,"category":`...)
	b = ojson.Ditto.AppendString(b, e.Category.String())
	b = append(b, `,"type":`...)
	b = ojson.Ditto.AppendString(b, e.Type.String())
	b = append(b, `,"level":`...)
	b = ojson.Ditto.AppendString(b, e.Level.String())
	b = append(b, `,"message":`...)
	b = ojson.Ditto.AppendString(b, e.Message)
	if e.Address != "" {
		b = append(b, `,"address":`...)
		b = ojson.Ditto.AppendString(b, e.Address)
	}
	if e.EntityID != "" {
		if e.EntityType != "" {
			b = append(b, `,"entityType":`...)
			b = ojson.Ditto.AppendString(b, e.EntityType)
		}
		b = append(b, `,"entityId":`...)
		b = ojson.Ditto.AppendString(b, e.EntityID)
	}
	return append(b, '}')
}

// MarshalJSON implements json.Marshaler.
func (e LogEntry) MarshalJSON() ([]byte, error) { return e.AppendJSON(nil), nil }

// Publisher receives every log entry, muted or not (Ditto never mutes its
// Fluent publishing). details is the headers-and-payload suffix the
// publisher may append (its own logHeadersAndPayload setting).
type Publisher interface {
	Publish(connectionID string, e *LogEntry, details string)
}

// DetailsWanter may be implemented by a Publisher that reads the details of
// some entries only: it is asked before each entry with a message, and
// Publish then gets "" instead of details when it says no (rendering the
// details is the dearest part of logging a message). A Publisher without it
// gets the details of every entry with a message.
type DetailsWanter interface {
	WantsDetails(e *LogEntry) bool
}

// LogOptions configure Logs.
type LogOptions struct {
	ConnectionID string
	Config       LogConfig        // zero fields take Ditto's defaults
	Now          func() time.Time // nil: time.Now
	Publisher    Publisher        // nil: no publishing
}

// Logs are the connection loggers of one connection in one client (or in the
// grain, for connection-level entries). Safe for concurrent use.
type Logs struct {
	id  string
	cfg LogConfig
	now func() time.Time
	pub Publisher
	// pubWants is pub as a DetailsWanter; nil: pub reads every details.
	pubWants DetailsWanter

	enabled atomic.Bool // unmuted
	seq     atomic.Uint64

	mu           sync.Mutex
	since, until time.Time // zero while muted
	loggers      map[loggerKey]*Logger
	order        []*Logger
}

type loggerKey struct {
	cat     LogCategory
	typ     LogType
	address string
}

// NewLogs returns muted logs.
func NewLogs(o LogOptions) *Logs {
	now := o.Now
	if now == nil {
		now = time.Now
	}
	l := &Logs{id: o.ConnectionID, cfg: o.Config.withDefaults(), now: now, pub: o.Publisher,
		loggers: make(map[loggerKey]*Logger)}
	l.pubWants, _ = o.Publisher.(DetailsWanter)
	return l
}

// Config is the effective configuration.
func (l *Logs) Config() LogConfig { return l.cfg }

// Logger returns the logger of (category, type, address), creating it on
// first use. Keep it: the lookup takes a lock.
func (l *Logs) Logger(c LogCategory, t LogType, address string) *Logger {
	k := loggerKey{c, t, address}
	l.mu.Lock()
	defer l.mu.Unlock()
	if lg := l.loggers[k]; lg != nil {
		return lg
	}
	lg := &Logger{logs: l, cat: c, typ: t, address: address, texts: textsFor(c, t)}
	lg.successText = format(lg.texts.success, t.String())
	l.loggers[k] = lg
	l.order = append(l.order, lg)
	return lg
}

// Source, Target and Response are the loggers Ditto uses per source address,
// per target address and for responses (address ResponsesAddress).
func (l *Logs) Source(t LogType, address string) *Logger {
	return l.Logger(CategorySource, t, address)
}
func (l *Logs) Target(t LogType, address string) *Logger {
	return l.Logger(CategoryTarget, t, address)
}
func (l *Logs) Response(t LogType) *Logger { return l.Logger(CategoryResponse, t, ResponsesAddress) }

// Connection is the logger of connection-level entries (category connection,
// type other, no address): "Connection successful", …
func (l *Logs) Connection() *Logger { return l.Logger(CategoryConnection, Other, "") }

// Enabled reports whether logging is on (loggers unmuted).
func (l *Logs) Enabled() bool { return l.enabled.Load() }

// Enable unmutes the loggers: enabledSince = now, enabledUntil = now +
// LogDuration (enableConnectionLogs; create-open and open do it too).
func (l *Logs) Enable() {
	now := l.now()
	l.mu.Lock()
	l.since, l.until = now, now.Add(l.cfg.LogDuration)
	l.mu.Unlock()
	l.enabled.Store(true)
}

// Disable mutes the loggers and drops their entries (expiry, delete).
func (l *Logs) Disable() {
	l.enabled.Store(false)
	l.mu.Lock()
	l.since, l.until = time.Time{}, time.Time{}
	loggers := slices.Clone(l.order)
	l.mu.Unlock()
	for _, lg := range loggers {
		lg.clear()
	}
}

// CheckExpired is Ditto's periodic checkConnectionLogsActive: logging that is
// off or whose enabledUntil is before at is muted and cleared, and true is
// returned (the client then reports loggingExpired to the grain).
func (l *Logs) CheckExpired(at time.Time) bool {
	l.mu.Lock()
	until := l.until
	l.mu.Unlock()
	if until.IsZero() || at.After(until) {
		l.Disable()
		return true
	}
	return false
}

// Reset clears all entries and then logs ResetLogsMessage on the connection
// logger (kept only while logging is enabled), as resetConnectionLogs does.
func (l *Logs) Reset() {
	l.mu.Lock()
	loggers := slices.Clone(l.order)
	l.mu.Unlock()
	for _, lg := range loggers {
		lg.clear()
	}
	l.Connection().SuccessMsg(Info{}, ResetLogsMessage)
}

// Retrieve answers retrieveConnectionLogs for this client as Ditto's logger
// registry does: while enabled it extends enabledUntil to now + LogDuration
// and returns the entries that fit into MaxLogSizeBytes (newest kept, listed
// oldest first); while muted it returns no entries and null times. The grain
// reproduces Ditto's re-broadcast of the enable (which moves enabledSince to
// the retrieval time too) by calling Enable before Retrieve when enabled.
func (l *Logs) Retrieve() LogsSnapshot {
	if !l.enabled.Load() {
		return LogsSnapshot{}
	}
	now := l.now()
	l.mu.Lock()
	l.until = now.Add(l.cfg.LogDuration)
	s := LogsSnapshot{EnabledSince: l.since, EnabledUntil: l.until}
	loggers := slices.Clone(l.order)
	l.mu.Unlock()
	var all []LogEntry
	for _, lg := range loggers {
		all = lg.appendEntries(all)
	}
	s.Entries = capEntries(all, l.cfg.MaxLogSizeBytes)
	return s
}

// Logger keeps the latest entries of one category, type and address.
type Logger struct {
	logs    *Logs
	cat     LogCategory
	typ     LogType
	address string
	texts   loggerTexts
	// successText is the default success message, formatted once.
	successText string

	mu        sync.Mutex
	successes entryRing // at most SuccessCapacity
	failures  entryRing
}

func (lg *Logger) active() bool { return lg.logs.enabled.Load() || lg.logs.pub != nil }

// Success logs the logger's default success text ("Received signal.", …).
func (lg *Logger) Success(info Info) {
	if lg.active() {
		lg.log(LevelSuccess, &info, lg.successText)
	}
}

// SuccessMsg logs a success with a message of the caller.
func (lg *Logger) SuccessMsg(info Info, msg string) {
	if lg.active() {
		lg.log(LevelSuccess, &info, msg)
	}
}

// Failure logs the default failure text with reason as its detail (Ditto:
// the error's message and description; "not specified" when empty).
func (lg *Logger) Failure(info Info, reason string) {
	if lg.active() {
		if reason == "" {
			reason = fallbackReason
		}
		lg.log(LevelFailure, &info, format(lg.texts.failure, lg.typ.String(), reason))
	}
}

// FailureMsg logs a failure with a message of the caller.
func (lg *Logger) FailureMsg(info Info, msg string) {
	if lg.active() {
		lg.log(LevelFailure, &info, msg)
	}
}

// Exception logs the default text for an unexpected error.
func (lg *Logger) Exception(info Info, err error) {
	if lg.active() {
		reason := fallbackReason
		if err != nil {
			reason = err.Error()
		}
		lg.log(LevelFailure, &info, format(lg.texts.exception, lg.typ.String(), reason))
	}
}

// Add stores an entry as given (sudoAddConnectionLogEntry); its category,
// type and address are the entry's own.
func (lg *Logger) Add(e LogEntry) {
	if !lg.active() {
		return
	}
	e.seq = lg.logs.seq.Add(1)
	lg.store(&e, "")
}

func (lg *Logger) log(level LogLevel, info *Info, msg string) {
	e := LogEntry{CorrelationID: info.CorrelationID, Timestamp: info.Timestamp, Category: lg.cat, Type: lg.typ,
		Level: level, Message: msg, Address: lg.address, EntityType: info.EntityType, EntityID: info.EntityID,
		seq: lg.logs.seq.Add(1)}
	if e.CorrelationID == "" {
		e.CorrelationID = DefaultCorrelationID
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = lg.logs.now()
	}
	// only loggers that append them, and a publisher that wants them, read
	// the details (the publisher gets a copy: e itself stays on the stack)
	if info.Headers == nil {
		if lg.logs.pub != nil {
			pe := e
			lg.logs.pub.Publish(lg.logs.id, &pe, "")
		}
		lg.keep(&e)
		return
	}
	var d *details // a copy: the caller may change its map later
	if lg.logs.pub != nil {
		pe := e
		rendered := ""
		if w := lg.logs.pubWants; w == nil || w.WantsDetails(&pe) {
			d = detailsOf(info)
			rendered = d.String()
		}
		lg.logs.pub.Publish(lg.logs.id, &pe, rendered)
	}
	if lg.texts.headersAndPayload && lg.logs.enabled.Load() {
		if d == nil {
			d = detailsOf(info)
		}
		e.details = d
	}
	lg.keep(&e)
}

func (lg *Logger) store(e *LogEntry, details string) {
	if p := lg.logs.pub; p != nil {
		p.Publish(lg.logs.id, e, details)
	}
	if lg.texts.headersAndPayload {
		e.Message += details
	}
	lg.keep(e)
}

// keep stores e while logging is enabled.
func (lg *Logger) keep(e *LogEntry) {
	if !lg.logs.enabled.Load() {
		return
	}
	cfg := lg.logs.cfg
	lg.mu.Lock()
	if e.Level == LevelFailure {
		lg.failures.add(e, cfg.FailureCapacity)
	} else {
		lg.successes.add(e, cfg.SuccessCapacity)
	}
	lg.mu.Unlock()
}

// entryRing keeps the latest entries of one level: a ring, so that adding
// one does not move the others.
type entryRing struct {
	buf  []LogEntry
	next int // where the next entry goes
	n    int // entries held
}

func (r *entryRing) add(e *LogEntry, capacity int) {
	if len(r.buf) != capacity {
		old := r.appendTo(nil)
		r.buf, r.next, r.n = make([]LogEntry, capacity), 0, 0
		for i := max(len(old)-capacity, 0); i < len(old); i++ {
			r.add(&old[i], capacity)
		}
	}
	r.buf[r.next] = *e
	r.next = (r.next + 1) % capacity
	r.n = min(r.n+1, capacity)
}

// appendTo appends the entries oldest first.
func (r *entryRing) appendTo(out []LogEntry) []LogEntry {
	for i := 0; i < r.n; i++ {
		out = append(out, r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)])
	}
	return out
}

func (lg *Logger) clear() {
	lg.mu.Lock()
	lg.successes, lg.failures = entryRing{}, entryRing{}
	lg.mu.Unlock()
}

func (lg *Logger) appendEntries(out []LogEntry) []LogEntry {
	lg.mu.Lock()
	defer lg.mu.Unlock()
	start := len(out)
	out = lg.successes.appendTo(out)
	out = lg.failures.appendTo(out)
	for i := start; i < len(out); i++ {
		out[i] = out[i].rendered()
	}
	return out
}

// LogsSnapshot is one answer to retrieveConnectionLogs. The zero value is
// the answer without logging (or without clients): [] and null times.
type LogsSnapshot struct {
	Entries                    []LogEntry // oldest first
	EnabledSince, EnabledUntil time.Time  // zero: null
}

// MergeLogs merges the answers of several clients as Ditto's aggregator
// does: all entries, newest first, kept while their summed JSON lengths fit
// into maxBytes, then listed oldest first; the times of the first answer.
func MergeLogs(maxBytes int, parts ...LogsSnapshot) LogsSnapshot {
	if len(parts) == 0 {
		return LogsSnapshot{}
	}
	out := LogsSnapshot{EnabledSince: parts[0].EnabledSince, EnabledUntil: parts[0].EnabledUntil}
	var all []LogEntry
	for _, p := range parts {
		all = append(all, p.Entries...)
	}
	out.Entries = capEntries(all, maxBytes)
	return out
}

// capEntries sorts newest first, keeps what fits into maxBytes and returns
// the kept entries oldest first.
func capEntries(all []LogEntry, maxBytes int) []LogEntry {
	slices.SortStableFunc(all, func(a, b LogEntry) int {
		if c := b.Timestamp.Compare(a.Timestamp); c != 0 {
			return c
		}
		return compareSeq(b.seq, a.seq)
	})
	size, kept := 0, 0
	var buf []byte
	for i := range all {
		buf = all[i].AppendJSON(buf[:0])
		n := javaLength(buf)
		if size+n > maxBytes {
			break
		}
		size += n
		kept++
	}
	out := all[:kept]
	slices.Reverse(out)
	return out
}

func compareSeq(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// ConnectionLogsJSON is the "connectionLogs" array.
func (s LogsSnapshot) ConnectionLogsJSON() []byte {
	b := []byte{'['}
	for i := range s.Entries {
		if i > 0 {
			b = append(b, ',')
		}
		b = s.Entries[i].AppendJSON(b)
	}
	return append(b, ']')
}

// EnabledSinceJSON is the "enabledSince" value: an instant string or null.
func (s LogsSnapshot) EnabledSinceJSON() []byte { return appendInstantOrNull(nil, s.EnabledSince) }

// EnabledUntilJSON is the "enabledUntil" value: an instant string or null.
func (s LogsSnapshot) EnabledUntilJSON() []byte { return appendInstantOrNull(nil, s.EnabledUntil) }
