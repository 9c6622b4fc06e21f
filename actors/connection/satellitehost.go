package connection

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
)

// The satellite host is the second actor of this package: one per member,
// it runs the satellite clients that grains on other members place here,
// and stops those their grain no longer renews.

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
	conn    *model.Connection
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
		msg, _ := decodeInternal(m)
		switch msg := msg.(type) {
		case *satStart:
			h.start(ctx, msg)
		case *satStop:
			h.stop(satKey(msg.ConnectionID, msg.Index))
		case *satReset:
			if sat, ok := h.sats[satKey(msg.ConnectionID, msg.Index)]; ok {
				sat.plane.ResetMetrics()
				h.push(ctx, sat)
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
	factory, ok := h.cfg.Clients.Factory(conn.ConnectionType)
	if !ok {
		return
	}
	log := h.cfg.Logger.With().Str("connection_id", conn.ID).Int("client", m.Index).Logger()
	logs := monitor.NewLogs(monitor.LogOptions{ConnectionID: conn.ID, Config: h.cfg.Logs, Now: h.cfg.Now,
		Publisher: h.cfg.LogPublisher})
	conn, tlsCfg, tlsErr := h.cfg.Clients.Prepare(conn) // hono: the Kafka connection Ditto makes of it
	// Outbound signals go through the grain's client: a satellite consumes
	// and only hears the responses to what it consumed.
	plane, planeErr := dataplane.New(conn, dataplane.Config{
		Bus:     responsesOnly{inner: h.cfg.Bus, stream: dataplane.ResponseStream(conn.ID)},
		Mapping: h.cfg.Mapping, Logs: logs, Collector: h.cfg.Collector, Now: h.cfg.Now, Logger: log,
		Routing: h.cfg.StandaloneRouting, Ditto: h.cfg.Ditto, DittoSendOnly: true})
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
	s := &satellite{id: conn.ID, idx: m.Index, gen: m.Gen, owner: owner, renewed: h.cfg.Now(), plane: plane, conn: conn}
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
	for _, rs := range s.r.resources(s.conn) {
		st.Resources = append(st.Resources, satEntry{Type: rs.Type, Address: rs.Address, Status: rs.Status,
			Details: rs.Details, Since: rs.Since})
	}
	// the satellite's own sessions with Ditto (command sessions: it
	// subscribes nothing there) show as the grain's do, as client entries;
	// a change shows at the next push (a report or a renewal)
	for _, rs := range s.plane.DittoStatus() {
		st.Resources = append(st.Resources, satEntry{Type: satDittoSession, Address: rs.Address, Status: rs.Status,
			Recovery: rs.RecoveryStatus, Details: rs.Details, Since: rs.Since})
	}
	ctx.Send(s.owner, encodeInternal(&st))
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
