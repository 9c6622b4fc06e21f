package connection

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/actors/bus"
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/dataplane"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/actors/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
)

// A connection with clientCount > 1 runs client 0 in its grain and each
// further client on another cluster member, at most one per member, as
// Ditto spreads client actors over its connectivity instances. Those
// satellites live in one host actor per member; the grain places them,
// renews them and hears their state. Indexes beyond the number of members
// cannot be placed: their entries are Ditto's misconfigured ones.
//
// Messages are pb.Command with the internal types below (no new protobuf
// types: a member that receives an unknown one crashes).
const (
	// SatelliteHostName is the host actor's name on every member.
	SatelliteHostName = "dittoconn-satellites"

	satStartType = "dittoconn.internal:startSatellite" // grain → host: start or renew
	satStopType  = "dittoconn.internal:stopSatellite"  // grain → host
	satStateType = "dittoconn.internal:satelliteState" // host → grain
	satResetType = "dittoconn.internal:resetSatelliteMetrics"

	satRenewEvery = 5 * time.Second
	satExpireAt   = 4 * satRenewEvery // a host stops a satellite nobody renewed
)

// Members is the grain's view of the cluster for placing satellites.
type Members interface {
	// Peers are the other members' addresses in a stable order.
	Peers() []string
}

type satStart struct {
	Connection   json.RawMessage `json:"connection"` // with secrets: the cluster link must be private
	Index        int             `json:"index"`
	Gen          uint64          `json:"gen"`
	OwnerAddress string          `json:"ownerAddress"`
	OwnerID      string          `json:"ownerId"`
}

// satRef names one satellite (stop, reset).
type satRef struct {
	ConnectionID string `json:"connectionId"`
	Index        int    `json:"index"`
}

type satEntry struct {
	Type    string    `json:"type"`
	Address string    `json:"address,omitempty"`
	Status  string    `json:"status"`
	Details string    `json:"details,omitempty"`
	Since   time.Time `json:"since"`
}

type satState struct {
	ConnectionID string     `json:"connectionId"`
	Index        int        `json:"index"`
	Gen          uint64     `json:"gen"`
	Instance     string     `json:"instance"`
	Status       string     `json:"status"`
	Recovery     string     `json:"recovery"`
	Details      string     `json:"details"`
	Since        time.Time  `json:"since"`
	Resources    []satEntry `json:"resources,omitempty"`
	// Metrics are the satellite's message counters (monitor's JSON is
	// Ditto's answer shape, which does not read back).
	Metrics *wireMetrics `json:"metrics,omitempty"`
}

type wireMeasurement struct {
	M1, H1, H24 int64
	Last        time.Time
}

type wireType struct {
	Type             monitor.MetricType
	Success, Failure wireMeasurement
}

type wireAddress struct {
	Address string
	Types   []wireType
}

type wireMetrics struct {
	Sources, Targets []wireAddress
}

func toWire(m *monitor.MetricsSnapshot) *wireMetrics {
	if m == nil {
		return nil
	}
	conv := func(list []monitor.AddressMetrics) []wireAddress {
		out := make([]wireAddress, 0, len(list))
		for _, a := range list {
			w := wireAddress{Address: a.Address}
			for t, tm := range a.Metric {
				w.Types = append(w.Types, wireType{Type: t,
					Success: wireMeasurement{tm.Success.PT1M, tm.Success.PT1H, tm.Success.PT24H, tm.Success.LastMessageAt},
					Failure: wireMeasurement{tm.Failure.PT1M, tm.Failure.PT1H, tm.Failure.PT24H, tm.Failure.LastMessageAt}})
			}
			out = append(out, w)
		}
		return out
	}
	return &wireMetrics{Sources: conv(m.Sources), Targets: conv(m.Targets)}
}

func (w *wireMetrics) snapshot() *monitor.MetricsSnapshot {
	if w == nil {
		return nil
	}
	conv := func(list []wireAddress) []monitor.AddressMetrics {
		out := make([]monitor.AddressMetrics, 0, len(list))
		for _, a := range list {
			m := monitor.AddressMetric{}
			for _, t := range a.Types {
				m[t.Type] = monitor.TypeMeasurements{
					Success: monitor.Measurement{PT1M: t.Success.M1, PT1H: t.Success.H1, PT24H: t.Success.H24, LastMessageAt: t.Success.Last},
					Failure: monitor.Measurement{PT1M: t.Failure.M1, PT1H: t.Failure.H1, PT24H: t.Failure.H24, LastMessageAt: t.Failure.Last}}
			}
			out = append(out, monitor.AddressMetrics{Address: a.Address, Metric: m})
		}
		return out
	}
	return &monitor.MetricsSnapshot{Sources: conv(w.Sources), Targets: conv(w.Targets)}
}

// satelliteMetrics are the last counters each satellite reported.
func (g *grain) satelliteMetrics() []*monitor.MetricsSnapshot {
	var out []*monitor.MetricsSnapshot
	for _, s := range g.sats {
		if s.state != nil && s.state.Metrics != nil {
			out = append(out, s.state.Metrics.snapshot())
		}
	}
	return out
}

// resetSatelliteMetrics clears the satellites' counters (and the last
// reported ones, until they report again).
func (g *grain) resetSatelliteMetrics() {
	for i := range g.sats {
		s := &g.sats[i]
		if s.state != nil {
			s.state.Metrics = nil
		}
		if s.addr != "" && g.root != nil {
			g.root.Send(actor.NewPID(s.addr, SatelliteHostName), internalCommand(satResetType, satRef{ConnectionID: g.id, Index: i + 1}))
		}
	}
}

// satSlot is the grain's view of one satellite client (index ≥ 1).
type satSlot struct {
	addr  string    // member hosting it; "": not placeable (misconfigured)
	state *satState // last state heard; nil: none yet
}

// satRenew is the grain's periodic renewal of its satellites.
type satRenew struct{ gen uint64 }

func (*satRenew) NotInfluenceReceiveTimeout() {}

func satKey(id string, idx int) string { return id + "#" + strconv.Itoa(idx) }

func internalCommand(typ string, v any) *pb.Command {
	payload, _ := json.Marshal(v)
	return &pb.Command{Type: typ, Payload: payload}
}

// placeSatellites places clients 1…clientCount-1 on the other members, in
// the order the members list gives starting after this one's position so
// that connections spread their satellites.
func (g *grain) placeSatellites() []satSlot {
	n := max(g.conn.ClientCount, 1)
	if n <= 1 {
		return nil
	}
	var peers []string
	if g.cfg.Members != nil {
		peers = g.cfg.Members.Peers()
	}
	slots := make([]satSlot, n-1)
	h := fnv.New32a()
	_, _ = h.Write([]byte(g.id))
	start := int(h.Sum32() % uint32(max(len(peers), 1)))
	for i := range slots {
		if i < len(peers) {
			slots[i].addr = peers[(start+i)%len(peers)]
		}
	}
	return slots
}

// startSatellites places and starts the satellites of the current
// configuration and arms their renewal.
func (g *grain) startSatellites() {
	g.sats = g.placeSatellites()
	if len(g.sats) == 0 {
		return
	}
	for i := range g.sats {
		g.sendSatStart(i)
	}
	g.armSatRenew()
}

func (g *grain) sendSatStart(i int) {
	s := &g.sats[i]
	if s.addr == "" || g.root == nil {
		return
	}
	g.root.Send(actor.NewPID(s.addr, SatelliteHostName), internalCommand(satStartType, satStart{
		Connection: g.conn.JSON(true), Index: i + 1, Gen: g.clients.gen,
		OwnerAddress: g.self.Address, OwnerID: g.self.Id,
	}))
}

func (g *grain) sendSatStop(addr string, idx int) {
	if addr == "" || g.root == nil {
		return
	}
	g.root.Send(actor.NewPID(addr, SatelliteHostName), internalCommand(satStopType, satRef{ConnectionID: g.id, Index: idx}))
}

// stopSatellites stops every satellite (the clients stop or change).
func (g *grain) stopSatellites() {
	for i, s := range g.sats {
		g.sendSatStop(s.addr, i+1)
	}
	g.sats = nil
	if g.satTimer != nil {
		g.satTimer.Stop()
		g.satTimer = nil
	}
}

func (g *grain) armSatRenew() {
	if g.satTimer != nil {
		g.satTimer.Stop()
	}
	send, gen := g.live.send, g.clients.gen
	if send == nil {
		return
	}
	g.satTimer = time.AfterFunc(satRenewEvery, func() { send(&satRenew{gen: gen}) })
}

// onSatRenew re-places the satellites (a member left or joined) and renews
// the ones that stay.
func (g *grain) onSatRenew(m *satRenew) {
	g.satTimer = nil
	if m.gen != g.clients.gen || len(g.sats) == 0 || g.conn == nil {
		return
	}
	placed := g.placeSatellites()
	for i := range g.sats {
		if i < len(placed) && placed[i].addr != g.sats[i].addr {
			g.sendSatStop(g.sats[i].addr, i+1)
			g.sats[i] = placed[i]
		}
		g.sendSatStart(i)
	}
	g.armSatRenew()
}

// onSatState records a satellite's state.
func (g *grain) onSatState(cmd *pb.Command) {
	var st satState
	if json.Unmarshal(cmd.Payload, &st) != nil || st.Gen != g.clients.gen {
		return
	}
	i := st.Index - 1
	if i < 0 || i >= len(g.sats) {
		return
	}
	g.sats[i].state = &st
}

// satelliteEntries are the status entries of the satellites: their last
// state, or Ditto's misconfigured entries where no member could take one.
func (g *grain) satelliteEntries() (clients, sources, targets []statusEntry, misconfigured bool) {
	for _, s := range g.sats {
		switch {
		case s.addr == "":
			misconfigured = true
			clients = append(clients, statusEntry{typ: "client", client: "<unknown>", status: client.StatusMisconfigured,
				details: g.notDelivered("client")})
		case s.state != nil:
			st := s.state
			clients = append(clients, statusEntry{typ: "client", client: st.Instance, status: st.Status,
				recovery: st.Recovery, details: st.Details, since: st.Since})
			for _, r := range st.Resources {
				e := statusEntry{typ: r.Type, client: st.Instance, address: r.Address, status: r.Status,
					details: r.Details, since: r.Since}
				switch r.Type {
				case "source":
					sources = append(sources, e)
				case "target":
					targets = append(targets, e)
				}
			}
		}
	}
	return clients, sources, targets, misconfigured
}

func (g *grain) notDelivered(what string) string {
	return fmt.Sprintf("The configured client count of <%d> could not be delivered by the cluster, the %s is therefore not available.",
		g.conn.ClientCount, what)
}

// --- the host of one member's satellites ---

// NewSatelliteHost returns the props of the member's satellite host; cfg
// is the connection kind's configuration (same runners and bus).
func NewSatelliteHost(cfg Config) *actor.Props {
	cfg.defaults()
	return actor.PropsFromProducer(func() actor.Actor {
		return &satelliteHost{cfg: &cfg, sats: map[string]*satellite{}}
	})
}

type satellite struct {
	id      string
	idx     int
	gen     uint64
	owner   *actor.PID
	renewed time.Time
	r       *runner
	plane   *dataplane.Plane
}

type satelliteHost struct {
	cfg   *Config
	sats  map[string]*satellite
	timer *time.Timer
}

// hostReport is a satellite runner's report, tagged with its satellite.
type hostReport struct {
	key string
	rep *clientReport
}

type hostTick struct{}

func (h *satelliteHost) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		h.arm(ctx)
	case *pb.Command:
		switch m.Type {
		case satStartType:
			var s satStart
			if json.Unmarshal(m.Payload, &s) == nil {
				h.start(ctx, &s)
			}
		case satStopType:
			var s satRef
			if json.Unmarshal(m.Payload, &s) == nil {
				h.stop(satKey(s.ConnectionID, s.Index))
			}
		case satResetType:
			var s satRef
			if json.Unmarshal(m.Payload, &s) == nil {
				if sat, ok := h.sats[satKey(s.ConnectionID, s.Index)]; ok {
					sat.plane.ResetMetrics()
					h.push(ctx, sat)
				}
			}
		}
	case *hostReport:
		h.onReport(ctx, m)
	case *hostTick:
		now := h.cfg.Now()
		for key, s := range h.sats {
			if now.Sub(s.renewed) > satExpireAt {
				h.cfg.Logger.Info().Str("connection_id", s.id).Int("client", s.idx).
					Msg("stopping a client whose connection no longer renews it")
				h.stop(key)
			}
		}
		h.arm(ctx)
	case *actor.Stopping:
		if h.timer != nil {
			h.timer.Stop()
		}
		for key := range h.sats {
			h.stop(key)
		}
	}
}

func (h *satelliteHost) arm(ctx actor.Context) {
	root, self := ctx.ActorSystem().Root, ctx.Self()
	h.timer = time.AfterFunc(satRenewEvery, func() { root.Send(self, &hostTick{}) })
}

func (h *satelliteHost) start(ctx actor.Context, m *satStart) {
	conn, err := model.Parse(m.Connection)
	if err != nil {
		h.cfg.Logger.Warn().Err(err).Msg("a satellite client's connection does not parse")
		return
	}
	key := satKey(conn.ID, m.Index)
	owner := actor.NewPID(m.OwnerAddress, m.OwnerID)
	if s, ok := h.sats[key]; ok && s.gen == m.Gen {
		s.owner, s.renewed = owner, h.cfg.Now()
		h.push(ctx, s)
		return
	}
	h.stop(key)
	factory, ok := h.cfg.Clients[conn.ConnectionType]
	if !ok {
		return
	}
	log := h.cfg.Logger.With().Str("connection_id", conn.ID).Int("client", m.Index).Logger()
	logs := monitor.NewLogs(monitor.LogOptions{ConnectionID: conn.ID, Config: h.cfg.Logs, Now: h.cfg.Now,
		Publisher: h.cfg.LogPublisher})
	// Outbound signals go through the grain's client: a satellite consumes
	// and only hears the responses to what it consumed.
	plane, planeErr := dataplane.New(conn, dataplane.Config{
		Bus:     responsesOnly{inner: h.cfg.Bus, stream: dataplane.ResponseStream(conn.ID)},
		Mapping: h.cfg.Mapping, Logs: logs, Collector: h.cfg.Collector, Now: h.cfg.Now, Logger: log})
	tlsCfg, tlsErr := client.TLSConfig(conn)
	f := factory
	if planeErr != nil || tlsErr != nil {
		err := fmt.Errorf("%w: %v", client.ErrConfig, firstErr(planeErr, tlsErr))
		f = func(client.Env) (client.Client, error) { return nil, err }
	}
	root, self := ctx.ActorSystem().Root, ctx.Self()
	spec := runnerSpec{
		gen: m.Gen, idx: m.Index, connectionID: conn.ID,
		env: client.Env{Connection: conn, ClientIndex: m.Index, Instance: h.cfg.Instance, Logger: log, TLS: tlsCfg,
			Inbound: plane.Inbound(m.Index)},
		factory: f, backoff: h.cfg.Backoff, connectTimeout: h.cfg.ConnectTimeout,
		send: func(v any) {
			if rep, ok := v.(*clientReport); ok {
				root.Send(self, &hostReport{key: key, rep: rep})
			}
		},
		now: h.cfg.Now, log: log, plane: plane,
	}
	s := &satellite{id: conn.ID, idx: m.Index, gen: m.Gen, owner: owner, renewed: h.cfg.Now(), plane: plane}
	s.r = startRunner(h.cfg.Runners, spec, h.cfg.Now())
	log.Info().Msg("satellite client started")
	h.sats[key] = s
	h.push(ctx, s)
}

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

func (h *satelliteHost) stop(key string) {
	s, ok := h.sats[key]
	if !ok {
		return
	}
	delete(h.sats, key)
	s.r.cancel()
	plane, log := s.plane, h.cfg.Logger.With().Str("connection_id", s.id).Int("client", s.idx).Logger()
	go func() {
		<-s.r.done
		plane.Close()
		log.Info().Msg("satellite client stopped")
	}()
}

func (h *satelliteHost) onReport(ctx actor.Context, m *hostReport) {
	s, ok := h.sats[m.key]
	if !ok || s.gen != m.rep.gen {
		return
	}
	s.r.apply(m.rep, false)
	h.push(ctx, s)
}

// push tells the owning grain the satellite's state.
func (h *satelliteHost) push(ctx actor.Context, s *satellite) {
	st := satState{ConnectionID: s.id, Index: s.idx, Gen: s.gen, Instance: h.cfg.Instance,
		Status: s.r.status, Recovery: s.r.recovery, Details: s.r.details, Since: s.r.since,
		Metrics: toWire(s.plane.Metrics())}
	if s.r.client != nil {
		for _, rs := range s.r.client.Status() {
			st.Resources = append(st.Resources, satEntry{Type: rs.Type, Address: rs.Address, Status: rs.Status,
				Details: rs.Details, Since: rs.Since})
		}
	}
	ctx.Send(s.owner, internalCommand(satStateType, st))
}

// responsesOnly lets a satellite's data plane publish everything but
// subscribe only to its connection's response stream.
type responsesOnly struct {
	inner  bus.Bus
	stream string
}

func (b responsesOnly) Publish(s *bus.Signal) int { return b.inner.Publish(s) }

func (b responsesOnly) Subscribe(stream string, h bus.Handler) func() {
	if stream != b.stream {
		return func() {}
	}
	return b.inner.Subscribe(stream, h)
}
