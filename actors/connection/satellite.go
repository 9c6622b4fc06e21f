package connection

import (
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
)

// A connection with clientCount > 1 runs client 0 in its grain and each
// further client on another cluster member, at most one per member, as
// Ditto spreads client actors over its connectivity instances. Those
// satellites live in one host actor per member; the grain places them,
// renews them and hears their state. Indexes beyond the number of members
// cannot be placed: their entries are Ditto's misconfigured ones.
//
// Working next to Ditto, a satellite's data plane sends what its client
// consumes up on sessions of its own and subscribes nothing there (client
// 0 subscribes the targets, so nothing arrives twice); its sessions show
// in the grain's status as client entries of its member.
//
// Their messages are in wire.go.
const (
	// SatelliteHostName is the host actor's name on every member.
	SatelliteHostName = "dittoconn-satellites"

	satRenewEvery = 5 * time.Second
	satExpireAt   = 4 * satRenewEvery // a host stops a satellite nobody renewed
)

// Members is the grain's view of the cluster for placing satellites.
type Members interface {
	// Peers are the other members' addresses in a stable order.
	Peers() []string
}

// satSlot is the supervisor's view of one satellite client (index ≥ 1).
type satSlot struct {
	addr  string    // member hosting it; "": not placeable (misconfigured)
	state *satState // last state heard; nil: none yet
}

// satRenew is the grain's periodic renewal of its satellites.
type satRenew struct{ gen uint64 }

func (*satRenew) NotInfluenceReceiveTimeout() {}

func satKey(id string, idx int) string { return id + "#" + strconv.Itoa(idx) }

// toHost sends m to the satellite host on member addr.
func (s *supervisor) toHost(addr string, m internal) {
	if addr == "" || s.root == nil {
		return
	}
	s.root.Send(actor.NewPID(addr, SatelliteHostName), encodeInternal(m))
}

// satelliteMetrics are the last counters each satellite reported.
func (s *supervisor) satelliteMetrics() []*monitor.MetricsSnapshot {
	var out []*monitor.MetricsSnapshot
	for _, sat := range s.sats {
		if sat.state != nil && sat.state.Metrics != nil {
			out = append(out, sat.state.Metrics.snapshot())
		}
	}
	return out
}

// resetSatelliteMetrics clears the satellites' counters (and the last
// reported ones, until they report again).
func (s *supervisor) resetSatelliteMetrics() {
	for i := range s.sats {
		sat := &s.sats[i]
		if sat.state != nil {
			sat.state.Metrics = nil
		}
		s.toHost(sat.addr, &satReset{satRef{ConnectionID: s.id, Index: i + 1}})
	}
}

// placeSatellites places clients 1…clientCount-1 of conn on the other
// members, in the order the members list gives starting after this one's
// position so that connections spread their satellites.
func (s *supervisor) placeSatellites(conn *model.Connection) []satSlot {
	n := max(conn.ClientCount, 1)
	if n <= 1 {
		return nil
	}
	var peers []string
	if s.cfg.Members != nil {
		peers = s.cfg.Members.Peers()
	}
	slots := make([]satSlot, n-1)
	h := fnv.New32a()
	_, _ = h.Write([]byte(s.id))
	start := int(h.Sum32() % uint32(max(len(peers), 1)))
	for i := range slots {
		if i < len(peers) {
			slots[i].addr = peers[(start+i)%len(peers)]
		}
	}
	return slots
}

// startSatellites places and starts the satellites of conn and arms their
// renewal.
func (s *supervisor) startSatellites(conn *model.Connection) {
	s.sats = s.placeSatellites(conn)
	if len(s.sats) == 0 {
		return
	}
	if s.cfg.Members != nil && s.self != nil {
		// A satellite of this connection on this member is a leftover of
		// the grain's previous member, which died (it never places one
		// here): stopped now rather than when its renewals lapse
		// (satExpireAt), since until then its client consumes and holds
		// its own sessions with Ditto beside client 0.
		for i := range s.sats {
			s.toHost(s.self.Address, &satStop{satRef{ConnectionID: s.id, Index: i + 1}})
		}
	}
	for i := range s.sats {
		s.sendSatStart(conn, i)
	}
	s.armSatRenew()
}

func (s *supervisor) sendSatStart(conn *model.Connection, i int) {
	if s.sats[i].addr == "" || s.root == nil {
		return
	}
	s.toHost(s.sats[i].addr, &satStart{
		Connection: conn.JSON(true), Index: i + 1, Gen: s.clients.gen,
		OwnerAddress: s.self.Address, OwnerID: s.self.Id,
	})
}

// stopSatellites stops every satellite (the clients stop or change).
func (s *supervisor) stopSatellites() {
	for i, sat := range s.sats {
		s.toHost(sat.addr, &satStop{satRef{ConnectionID: s.id, Index: i + 1}})
	}
	s.sats = nil
	if s.satTimer != nil {
		s.satTimer.Stop()
		s.satTimer = nil
	}
}

func (s *supervisor) armSatRenew() {
	if s.satTimer != nil {
		s.satTimer.Stop()
	}
	send, gen := s.live.send, s.clients.gen
	if send == nil {
		return
	}
	s.satTimer = time.AfterFunc(satRenewEvery, func() { send(&satRenew{gen: gen}) })
}

// onSatRenew re-places the satellites (a member left or joined) and renews
// the ones that stay; conn is the entity's connection (nil: deleted).
func (s *supervisor) onSatRenew(m *satRenew, conn *model.Connection) {
	s.satTimer = nil
	if m.gen != s.clients.gen || len(s.sats) == 0 || conn == nil {
		return
	}
	placed := s.placeSatellites(conn)
	for i := range s.sats {
		if i < len(placed) && placed[i].addr != s.sats[i].addr {
			s.toHost(s.sats[i].addr, &satStop{satRef{ConnectionID: s.id, Index: i + 1}})
			s.sats[i] = placed[i]
		}
		s.sendSatStart(conn, i)
	}
	s.armSatRenew()
}

// onSatState records a satellite's state.
func (s *supervisor) onSatState(st *satState) {
	if st.Gen != s.clients.gen {
		return
	}
	i := st.Index - 1
	if i < 0 || i >= len(s.sats) {
		return
	}
	s.sats[i].state = st
}

// satelliteEntries are the status entries of the satellites: their last
// state, or Ditto's misconfigured entries where no member could take one.
func (s *supervisor) satelliteEntries(conn *model.Connection) (clients, sources, targets, tunnels []statusEntry, misconfigured bool) {
	for _, sat := range s.sats {
		switch {
		case sat.addr == "":
			misconfigured = true
			clients = append(clients, statusEntry{typ: "client", client: "<unknown>", status: client.StatusMisconfigured,
				details: notDelivered(conn, "client")})
		case sat.state != nil:
			st := sat.state
			clients = append(clients, statusEntry{typ: "client", client: st.Instance, status: st.Status,
				recovery: st.Recovery, details: st.Details, since: st.Since})
			for _, r := range st.Resources {
				e := statusEntry{typ: r.Type, client: st.Instance, address: r.Address, status: r.Status,
					details: r.Details, since: r.Since}
				switch r.Type {
				case satDittoSession:
					e.typ, e.recovery = "client", r.Recovery
					clients = append(clients, e)
				case "source":
					sources = append(sources, e)
				case "target":
					targets = append(targets, e)
				case "ssh":
					tunnels = append(tunnels, e)
				}
			}
		}
	}
	return clients, sources, targets, tunnels, misconfigured
}

func notDelivered(conn *model.Connection, what string) string {
	return fmt.Sprintf("The configured client count of <%d> could not be delivered by the cluster, the %s is therefore not available.",
		conn.ClientCount, what)
}
