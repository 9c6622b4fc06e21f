// Package dataplane moves messages through one open connection: consumed
// broker messages are enforced, payload-mapped, header-mapped and published
// on the signal bus; signals on the bus are authorized per target (its
// subjects against the consuming source's, Config.Routing: without a
// policy store this is the only check; a constant target context costs a
// string compare, one with placeholders a decode and resolution per
// signal), filtered, payload-mapped,
// addressed and published by one of the connection's
// clients. Every step is counted (monitor.Registry) and logged
// (monitor.Logs) as Ditto's connectivity service does.
//
// A Plane belongs to one configuration of one connection (the grain builds
// a new one whenever it starts clients). Everything runs on the clients'
// goroutines (inbound) and on one worker goroutine per target (outbound);
// nothing here runs on, or blocks, the grain's actor goroutine. Connection
// announcements are mapped and published on the client runner's goroutine
// (Announce, announcements.go); responses diverted to this connection are
// queued on its targets' workers (diversion.go).
//
// A consumed message is settled with its broker (client.Message.Settle)
// once its processing and the acknowledgements its signals requested have
// finished (acks.go): at once when nothing was requested, otherwise when
// the last label is answered or the signal's timeout passes. Waiting costs
// one timer and about 1.2 KB per message and one plane-wide lock per
// acknowledgement; the number waiting is bounded.
//
// With processorPoolSize > 1 inbound mapping runs on mapping workers
// instead of the clients' goroutines, results in consumed order per
// source (parallel.go).
package dataplane

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/model/rql"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/placeholder"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// Config is what a Plane needs besides its connection.
type Config struct {
	Bus bus.Bus
	// Mapping configures the payload mappers (limits, clock); its
	// ConnectionID is set by New.
	Mapping mapping.Config
	// Logs are the connection's logs (shared with the grain's
	// connection-level entries); nil: muted logs of the plane's own.
	Logs *monitor.Logs
	// Collector exports the plane's counters to Prometheus; nil: none.
	Collector *monitor.Collector
	// QueueSize bounds the signals waiting per target (default 4096).
	QueueSize int
	// Workers publish each target's signals in parallel, signals of one
	// entity always through the same worker, in order (default 8).
	Workers int
	// EnqueueWait is how long the bus's publisher waits for room in a full
	// target queue before the signal is dropped (default 5 s): back-pressure
	// on the consuming client, bounded so that two connections feeding each
	// other cannot wait on each other for ever.
	EnqueueWait time.Duration
	// PublishTimeout bounds one Client.Publish (default 10 s).
	PublishTimeout time.Duration
	// Routing authorizes targets for other connections' signals ("":
	// RoutingSubjects, never wider by default).
	Routing Routing
	// Ditto opens the connection's link to Ditto's gateway (ditto.go);
	// nil: standalone, signals routed on Bus.
	Ditto func(connectionID string) DittoLink
	// DittoSendOnly: the plane sends up to Ditto and subscribes nothing
	// there (a satellite: the plane of the connection's first client
	// subscribes its targets, so nothing arrives twice).
	DittoSendOnly bool
	Now           func() time.Time
	Logger        zerolog.Logger
}

// Plane is the data plane of one connection configuration.
type Plane struct {
	id      string
	conn    *model.Connection
	cfg     Config
	metrics *monitor.Registry
	logs    *monitor.Logs
	now     func() time.Time
	log     zerolog.Logger

	sources []*source
	byAddr  map[string]*source
	inSteps map[string]*steps // per source address
	resp    *steps            // the responses' outbound address
	targets []*target

	// requests: live requests this connection's targets published, by
	// correlation id → the connection that sent them; awaiting: live
	// requests its sources consumed, waiting for their response.
	requests pendingTable[route]
	awaiting pendingTable[pendingReply]
	// acks: the signals its sources published that wait for their
	// acknowledgements (acks.go).
	acks ackTable
	// par maps consumed messages several at once (processorPoolSize >
	// 1); nil: on the consuming goroutine.
	par *mapStage
	// declaresAcks: a source takes devices' acknowledgements, so targets
	// remember who requested what they publish (requests).
	declaresAcks bool
	// diversion: response diversion settings (diversion.go).
	diversion diversion

	// ditto: the link to Ditto's gateway (nil: standalone); dittoUp: its
	// targets subscribed there.
	ditto   DittoLink
	dittoUp bool

	slots     []atomic.Pointer[client.Client] // per client index: the client built last (replies)
	mu        sync.Mutex
	connected map[int]client.Client
	active    atomic.Pointer[[]client.Client] // connected clients, by index order
	unsub     []func()
	closed    bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New builds the plane of c: its mapper chains, compiled templates and RQL
// filters, and one worker per target. An error means the connection cannot
// map or address messages as configured.
func New(c *model.Connection, cfg Config) (*Plane, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.QueueSize <= 0 {
		cfg.QueueSize = 4096
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.EnqueueWait <= 0 {
		cfg.EnqueueWait = 5 * time.Second
	}
	if cfg.PublishTimeout <= 0 {
		cfg.PublishTimeout = 10 * time.Second
	}
	if cfg.Bus == nil {
		return nil, fmt.Errorf("dataplane: no bus")
	}
	if cfg.Routing != "" && cfg.Routing != RoutingSubjects && cfg.Routing != RoutingAll {
		return nil, fmt.Errorf("dataplane: unknown standalone routing %q", cfg.Routing)
	}
	mcfg := cfg.Mapping
	if mcfg.MaxMappedInboundMessages == 0 && mcfg.MaxMappedOutboundMessages == 0 && mcfg.JavaScript.MaxScriptSizeBytes == 0 {
		def := mapping.DefaultConfig()
		def.Now = mcfg.Now
		mcfg = def
	}
	mcfg.ConnectionID = c.ID
	reg, err := mapping.ForConnection(c, mcfg)
	if err != nil {
		return nil, err
	}
	p := &Plane{id: c.ID, conn: c, cfg: cfg, now: cfg.Now, log: cfg.Logger, byAddr: map[string]*source{},
		inSteps: map[string]*steps{}, connected: map[int]client.Client{}, diversion: newDiversion(c)}
	p.metrics = monitor.NewRegistry(monitor.Options{ConnectionID: c.ID, ConnectionType: c.ConnectionType, Now: cfg.Now})
	p.logs = cfg.Logs
	if p.logs == nil {
		p.logs = monitor.NewLogs(monitor.LogOptions{ConnectionID: c.ID, Now: cfg.Now})
	}
	var srcAddrs, tgtAddrs []string
	for i := range c.Sources {
		s, err := newSource(p, &c.Sources[i], reg)
		if err != nil {
			return nil, err
		}
		p.sources = append(p.sources, s)
		for _, a := range c.Sources[i].Addresses {
			if _, dup := p.byAddr[a]; !dup {
				p.byAddr[a] = s
				srcAddrs = append(srcAddrs, a)
			}
		}
	}
	for i := range c.Targets {
		t, err := newTarget(p, &c.Targets[i], reg)
		if err != nil {
			return nil, err
		}
		p.targets = append(p.targets, t)
		tgtAddrs = append(tgtAddrs, c.Targets[i].Address)
	}
	if cfg.Ditto != nil && !cfg.DittoSendOnly {
		for _, t := range p.targets {
			if len(t.streams) > 0 && t.staticSubjects == nil {
				return nil, fmt.Errorf("%w: target %q: an authorization context with placeholders cannot subscribe at Ditto (a session's context is fixed when it opens)",
					client.ErrConfig, t.address)
			}
		}
	}
	p.metrics.Init(srcAddrs, tgtAddrs)
	for _, a := range srcAddrs {
		p.inSteps[a] = newSteps(p, monitor.Inbound, a)
	}
	for _, t := range p.targets {
		t.st = newSteps(p, monitor.Outbound, t.address)
	}
	p.resp = newSteps(p, monitor.Outbound, monitor.ResponsesAddress)
	p.slots = make([]atomic.Pointer[client.Client], max(c.ClientCount, 1))
	p.ctx, p.cancel = context.WithCancel(context.Background())
	if cfg.Ditto != nil {
		p.ditto = cfg.Ditto(c.ID)
	}
	for _, t := range p.targets {
		if len(t.streams) == 0 && !p.diversion.target {
			continue // nothing will ever reach its queue
		}
		for _, q := range t.queues {
			p.wg.Add(1)
			go t.work(q)
		}
	}
	if n := mapping.PoolSize(c.ProcessorPoolSize, mcfg); n > 1 && len(p.sources) > 0 {
		p.par = newMapStage(p, n)
	}
	if cfg.Collector != nil {
		cfg.Collector.Add(p.metrics)
	}
	return p, nil
}

// Metrics is the plane's metrics snapshot (retrieveConnectionMetrics).
func (p *Plane) Metrics() *monitor.MetricsSnapshot {
	if p == nil {
		return nil
	}
	return p.metrics.Snapshot()
}

// ResetMetrics clears the counts, keeping lastMessageAt.
func (p *Plane) ResetMetrics() {
	if p != nil {
		p.metrics.Reset()
	}
}

// Registry exposes the counters (tests, Prometheus).
func (p *Plane) Registry() *monitor.Registry { return p.metrics }

// Inbound is the Env.Inbound of client idx.
func (p *Plane) Inbound(idx int) func(client.Message) {
	if p == nil {
		return nil
	}
	return func(m client.Message) { p.inbound(idx, m) }
}

// Bind records the client built for index idx: it answers the messages it
// consumes (reply targets), even before it reports connected.
func (p *Plane) Bind(idx int, cl client.Client) {
	if p == nil || idx < 0 || idx >= len(p.slots) {
		return
	}
	p.slots[idx].Store(&cl)
}

// Connected makes cl a publisher of the connection's targets. The first
// connected client subscribes the targets to the bus.
func (p *Plane) Connected(idx int, cl client.Client) {
	if p == nil {
		return
	}
	p.Bind(idx, cl)
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.connected[idx] = cl
	p.publishActive()
	if p.ditto != nil && !p.cfg.DittoSendOnly && !p.dittoUp {
		// once: the link keeps the subscriptions through its reconnects
		p.dittoUp = true
		p.subscribeAtDitto()
	}
	if len(p.unsub) == 0 {
		if p.ditto == nil { // else twin and live signals come from Ditto
			for _, t := range p.targets {
				for _, st := range t.streams {
					p.unsub = append(p.unsub, p.cfg.Bus.Subscribe(st, t.deliver))
				}
			}
		}
		if len(p.sources) > 0 {
			// responses and acknowledgements to what the sources consumed
			p.unsub = append(p.unsub, p.cfg.Bus.Subscribe(ResponseStream(p.id), p.deliverResponse))
		}
		if p.diversion.target {
			p.unsub = append(p.unsub, p.cfg.Bus.Subscribe(DivertStream(p.id), p.deliverDiverted))
		}
	}
}

// Disconnected removes client idx; without connected clients the targets
// leave the bus (signals are not queued for a connection that is down).
func (p *Plane) Disconnected(idx int) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.connected, idx)
	p.publishActive()
	if len(p.connected) == 0 {
		p.unsubscribe()
	}
}

// Close stops the plane: targets leave the bus, workers stop, the counters
// are no longer exported. It does not wait.
func (p *Plane) Close() {
	if p == nil {
		return
	}
	p.mu.Lock()
	p.closed = true
	p.unsubscribe()
	clear(p.connected)
	p.publishActive()
	p.mu.Unlock()
	p.cancel()
	if p.ditto != nil {
		// its pending answers fail as 503 first: the waiting messages are
		// settled for redelivery, as abandonAcks settles the rest
		p.ditto.Close()
	}
	p.abandonAcks()
	if p.cfg.Collector != nil {
		p.cfg.Collector.Remove(p.metrics)
	}
}

// DittoStatus is the status of the plane's sessions with Ditto, one entry
// per session; nil when standalone.
func (p *Plane) DittoStatus() []client.ResourceStatus {
	if p == nil || p.ditto == nil {
		return nil
	}
	return p.ditto.Status()
}

// Wait waits for the target workers after Close (tests).
func (p *Plane) Wait() { p.wg.Wait() }

func (p *Plane) unsubscribe() {
	for _, u := range p.unsub {
		u()
	}
	p.unsub = nil
}

func (p *Plane) publishActive() {
	list := make([]client.Client, 0, len(p.connected))
	for i := range p.slots {
		if cl, ok := p.connected[i]; ok {
			list = append(list, cl)
		}
	}
	p.active.Store(&list)
}

// pick chooses the connected client that publishes a signal of entity id:
// always the same one for the same entity, as Ditto's client actors share
// the outbound load.
func (p *Plane) pick(entity string) client.Client {
	lp := p.active.Load()
	if lp == nil || len(*lp) == 0 {
		return nil
	}
	list := *lp
	if len(list) == 1 {
		return list[0]
	}
	return list[shard(entity, len(list))]
}

// info describes a message for a log entry; headers and payload only while
// someone reads them (both are the message's own, which nobody changes).
func (p *Plane) info(headers map[string]string, payload []byte, t *protocol.Topic, now time.Time) monitor.Info {
	in := monitor.Info{Timestamp: now}
	if headers != nil {
		in.CorrelationID = headerValue(headers, "correlation-id")
	}
	in.EntityType, in.EntityID = entity(t)
	if p.logs.Enabled() {
		in.Headers = headers
		if in.Headers == nil {
			in.Headers = map[string]string{}
		}
		in.PayloadBytes = payload
	}
	return in
}

// steps are the counters and loggers of one address, looked up once: the
// registry and the logs take a lock for every lookup.
type steps struct {
	c [monitor.Other + 1]*monitor.Counter
	l [monitor.Other + 1]*monitor.Logger
}

func newSteps(p *Plane, d monitor.Direction, address string) *steps {
	st := &steps{}
	cat := monitor.CategorySource
	if d == monitor.Outbound {
		cat = monitor.CategoryTarget
		if address == monitor.ResponsesAddress {
			cat = monitor.CategoryResponse
		}
	}
	for _, t := range monitor.MetricTypes(d) {
		st.c[t] = p.metrics.Counter(d, t, address)
		st.l[t] = p.logs.Logger(cat, t, address)
	}
	return st
}

// sourceSteps are the steps of a source address (built on the spot for an
// address the configuration does not list).
func (p *Plane) sourceSteps(address string) *steps {
	if st := p.inSteps[address]; st != nil {
		return st
	}
	return newSteps(p, monitor.Inbound, address)
}

// entity is the entityType and entityId of log entries about t.
func entity(t *protocol.Topic) (string, string) {
	if t == nil {
		return "", ""
	}
	if id := t.EntityID(); id != "" {
		switch t.Group {
		case protocol.GroupThings:
			return "thing", id
		case protocol.GroupPolicies:
			return "policy", id
		}
	}
	return "", ""
}

// headerValue looks a header up ignoring case (exact match first).
func headerValue(h map[string]string, key string) string {
	if v, ok := h[key]; ok {
		return v
	}
	for k, v := range h {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

// headerTemplate is one compiled header-mapping entry.
type headerTemplate struct {
	key  string
	tmpl *placeholder.Template
}

func compileHeaders(m map[string]string, lower bool) ([]headerTemplate, error) {
	out := make([]headerTemplate, 0, len(m))
	for k, v := range m {
		t, err := placeholder.Compile(v)
		if err != nil {
			return nil, fmt.Errorf("%w: header mapping %q: %v", client.ErrConfig, k, err)
		}
		if lower {
			k = strings.ToLower(k)
		}
		out = append(out, headerTemplate{key: k, tmpl: t})
	}
	return out, nil
}

// applyHeaders resolves each mapping into h; unresolvable or deleted
// values leave their header out, as Ditto does.
func applyHeaders(h map[string]string, mapping []headerTemplate, r placeholder.Resolver) {
	for _, hm := range mapping {
		if v, err := hm.tmpl.Resolve(r); err == nil {
			h[hm.key] = v
		}
	}
}

// compiledTopic is one target topic with its namespaces, filter and
// extraFields.
type compiledTopic struct {
	stream     string
	namespaces []string
	filter     *rql.Predicate
	// extra: the extraFields selector, or extraTmpl when it has
	// placeholders (resolved per signal); both nil without extraFields.
	extra     mapping.FieldSelector
	extraTmpl *placeholder.Template
}

// match applies the namespaces, the enrichment and the filter to s. extra
// is the signal's "extra" for this target when extraFields selected
// something (see mapping.SignalExtra); the filter then sees the thing
// merged with it, as Ditto filters the enriched signal.
func (ct *compiledTopic) match(s *bus.Signal) (ok bool, extra json.RawMessage) {
	if len(ct.namespaces) > 0 && !slices.Contains(ct.namespaces, s.Topic.Namespace) {
		return false, nil
	}
	sel := ct.extra
	if ct.extraTmpl != nil {
		if v, err := ct.extraTmpl.Resolve(placeholder.ForMessage(s.Message, "")); err == nil {
			sel = mapping.ParseFieldSelector(v)
		}
	}
	if len(sel) > 0 {
		extra, _ = mapping.SignalExtra(sel, s.Message)
	}
	if ct.filter == nil {
		return true, extra
	}
	var doc any = emptyThing
	if s.Topic.Criterion == protocol.CriterionEvents {
		if d, ok := protocol.ThingDoc(s.Topic, s.Message); ok {
			doc = d
		}
	}
	if extra != nil {
		doc = withExtra(doc, extra)
	}
	return ct.filter.Match(doc, placeholder.ForMessage(s.Message, "")), extra
}

// withExtra is doc with the extra fields it lacks (the signal's own values
// win), as the filter of an enriched signal sees it.
func withExtra(doc any, extra json.RawMessage) any {
	var x map[string]any
	dec := json.NewDecoder(bytes.NewReader(extra))
	dec.UseNumber()
	if dec.Decode(&x) != nil {
		return doc
	}
	d, _ := doc.(map[string]any)
	return mergeMissing(maps.Clone(d), x)
}

func mergeMissing(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		cur, ok := dst[k]
		if !ok {
			dst[k] = v
			continue
		}
		co, cok := cur.(map[string]any)
		so, sok := v.(map[string]any)
		if cok && sok {
			dst[k] = mergeMissing(maps.Clone(co), so)
		}
	}
	return dst
}

// emptyThing is what filters see of signals that are not thing events
// (Ditto evaluates them against an empty thing).
var emptyThing = map[string]any{}

// Check builds the plane of c without running it (testConnection): the
// mappers are instantiated, templates and filters compiled.
func Check(c *model.Connection, cfg mapping.Config) error {
	p, err := New(c, Config{Bus: bus.NewLocal(), Mapping: cfg})
	if err != nil {
		return err
	}
	p.Close()
	return nil
}
