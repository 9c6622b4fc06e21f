package connection

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// AlwaysAliveTag is the journal tag of a connection whose desired status is
// open; the reopen sweep lists connections by it after a restart. Ditto
// writes priority-0 beside it.
const (
	AlwaysAliveTag = "always-alive"
	priorityTag    = "priority-0"
)

// desired is c's desired status.
func desired(c *model.Connection) client.Status { return client.Status(c.ConnectionStatus) }

// --- retrieveConnectionStatus ---

type statusEntry struct {
	typ, client, address string
	status               client.Status
	recovery             client.Recovery
	details              string
	since                time.Time
}

// setEntries sets key to the entries' JSON; no entries, no key.
func setEntries(body *ojson.Object, key string, es []statusEntry) {
	if len(es) == 0 {
		return
	}
	out := make([]any, len(es))
	for i, e := range es {
		j := ojson.NewObject()
		j.Set("type", str(e.typ))
		j.Set("client", str(e.client))
		if (e.typ == "source" || e.typ == "target") && e.address != "" {
			j.Set("address", str(e.address)) // filled-in entries have none
		}
		j.Set("status", str(string(e.status)))
		if e.typ == "client" {
			j.Set("recoveryStatus", str(string(e.recovery)))
		}
		if e.details != "" {
			j.Set("statusDetails", str(e.details))
		}
		if !e.since.IsZero() {
			j.Set("inStateSince", str(ditto.FormatInstant(e.since)))
		}
		out[i] = j
	}
	body.Set(key, out)
}

// statusAnswer is the retrieveConnectionStatus body up to connectedSince.
func statusAnswer(cmd *pb.Command, id string, conn *model.Connection, live client.Status, recovery client.Recovery) *ojson.Object {
	body := withID(cmd.Type, http.StatusOK, id, 7)
	body.Set("connectionStatus", str(conn.ConnectionStatus))
	body.Set("liveStatus", str(string(live)))
	body.Set("recoveryStatus", str(string(recovery)))
	return body
}

// status answers retrieveConnectionStatus; as Ditto does when no client
// actor runs, that is one closed client entry of this instance.
func (s *supervisor) status(cmd *pb.Command, conn *model.Connection, seq int64) *pb.Reply {
	if desired(conn) == client.StatusOpen && len(s.clients.current) > 0 {
		return s.liveStatus(cmd, conn, seq)
	}
	entry := statusEntry{typ: "client", client: s.cfg.Instance, status: client.StatusClosed, recovery: client.RecoveryUnknown,
		details: detailsDisconnected, since: s.live.since}
	body := statusAnswer(cmd, s.id, conn, client.StatusClosed, client.RecoveryUnknown)
	setEntries(body, "clientStatus", []statusEntry{entry})
	return respond(http.StatusOK, body, seq)
}

// resourceEntry is a client's resource status as an entry of instance.
func resourceEntry(instance string, rs client.ResourceStatus) statusEntry {
	return statusEntry{typ: rs.Type, client: instance, address: rs.Address, status: rs.Status,
		details: rs.Details, since: rs.Since}
}

// liveStatus answers retrieveConnectionStatus from the running clients,
// computed as Ditto's aggregator does (spec §2.4).
func (s *supervisor) liveStatus(cmd *pb.Command, conn *model.Connection, seq int64) *pb.Reply {
	var clients, sources, targets, tunnels []statusEntry
	for _, r := range s.clients.current {
		clients = append(clients, statusEntry{typ: "client", client: s.cfg.Instance, status: r.status,
			recovery: r.recovery, details: r.details, since: r.since})
		for _, rs := range r.resources(conn) {
			switch rs.Type {
			case "source":
				sources = append(sources, resourceEntry(s.cfg.Instance, rs))
			case "target":
				targets = append(targets, resourceEntry(s.cfg.Instance, rs))
			case "ssh":
				tunnels = append(tunnels, resourceEntry(s.cfg.Instance, rs))
			}
		}
	}
	// the sessions with Ditto are clients of the connection: one that is
	// not open (its subscriptions not confirmed) keeps the connection
	// from showing open
	for _, rs := range s.plane.DittoStatus() {
		clients = append(clients, statusEntry{typ: "client", client: s.cfg.Instance, address: rs.Address,
			status: rs.Status, recovery: rs.RecoveryStatus, details: rs.Details, since: rs.Since})
	}
	satClients, satSources, satTargets, satTunnels, undelivered := s.satelliteEntries(conn)
	clients, sources, targets = append(clients, satClients...), append(sources, satSources...), append(targets, satTargets...)
	tunnels = append(tunnels, satTunnels...)
	fill := func(list []statusEntry, typ string, want int) []statusEntry {
		for len(list) < want {
			if undelivered {
				list = append(list, statusEntry{typ: typ, client: "<unknown>", status: client.StatusMisconfigured,
					details: notDelivered(conn, typ)})
				continue
			}
			list = append(list, statusEntry{typ: typ, client: "<unknown>", status: client.StatusFailed,
				details: fmt.Sprintf("The %s failed to report its status within the timeout.", typ)})
		}
		return list
	}
	sources = fill(sources, "source", s.cfg.Clients.ExpectedSources(conn))
	targets = fill(targets, "target", len(conn.Targets)*max(conn.ClientCount, 1))
	if sshtunnel.Enabled(conn) {
		tunnels = fill(tunnels, "ssh", max(conn.ClientCount, 1))
	}

	clientsLive := listStatus(clients, clients)
	live := overall(clientsLive, listStatus(sources, clients), listStatus(targets, clients), listStatus(tunnels, clients))

	body := statusAnswer(cmd, s.id, conn, live, recoveryOf(clients))
	var since time.Time
	for _, c := range clients {
		if c.status == client.StatusOpen && (since.IsZero() || c.since.Before(since)) {
			since = c.since
		}
	}
	if !since.IsZero() {
		body.Set("connectedSince", str(ditto.FormatInstant(since)))
	}
	setEntries(body, "clientStatus", clients)
	setEntries(body, "sourceStatus", sources)
	setEntries(body, "targetStatus", targets)
	setEntries(body, "sshTunnelStatus", tunnels)
	return respond(http.StatusOK, body, seq)
}

// resources are the source, target and tunnel entries of r's client; a
// client that is not connected has only its tunnel's entry (when conn has
// a tunnel), from the error it failed with.
func (r *runner) resources(conn *model.Connection) []client.ResourceStatus {
	if r.client != nil {
		return r.client.Status()
	}
	if sshtunnel.Enabled(conn) {
		return []client.ResourceStatus{sshtunnel.Entry(r.lastErr, r.since)}
	}
	return nil
}

// listStatus is the live status of one resource list.
func listStatus(list, clients []statusEntry) client.Status {
	count := map[client.Status]int{}
	for _, e := range list {
		count[e.status]++
	}
	switch {
	case len(list) == 0 || count[client.StatusOpen] == len(list):
		return client.StatusOpen
	case count[client.StatusFailed] > 0:
		return client.StatusFailed
	case count[client.StatusMisconfigured] > 0:
		return client.StatusMisconfigured
	case count[client.StatusClosed] == len(list):
		return client.StatusClosed
	}
	for _, c := range clients {
		if c.status != client.StatusOpen {
			return client.StatusUnknown
		}
	}
	return client.StatusOpen
}

func overall(lists ...client.Status) client.Status {
	count := map[client.Status]int{}
	for _, s := range lists {
		count[s]++
	}
	switch {
	case count[client.StatusOpen] == len(lists):
		return client.StatusOpen
	case count[client.StatusFailed] > 0:
		return client.StatusFailed
	case count[client.StatusMisconfigured] > 0:
		return client.StatusMisconfigured
	case count[client.StatusClosed] == len(lists):
		return client.StatusClosed
	}
	return client.StatusUnknown
}

func recoveryOf(clients []statusEntry) client.Recovery {
	count := map[client.Recovery]int{}
	for _, c := range clients {
		count[c.recovery]++
	}
	switch {
	case len(clients) > 0 && count[client.RecoverySucceeded] == len(clients):
		return client.RecoverySucceeded
	case count[client.RecoveryBackOffLimitReached] > 0:
		return client.RecoveryBackOffLimitReached
	case count[client.RecoveryOngoing] > 0:
		return client.RecoveryOngoing
	}
	return client.RecoveryUnknown
}

// --- retrieveConnectionMetrics ---

// metrics answers retrieveConnectionMetrics from the data plane of the
// running clients; without one every address metric is empty, which Ditto
// writes as null.
func (s *supervisor) metrics(cmd *pb.Command, seq int64) *pb.Reply {
	// merged over the clients, as Ditto's aggregator does; a satellite's
	// counters are as of its last report (at most satRenewEvery old)
	snap := s.plane.Metrics()
	if snap != nil {
		snap = monitor.MergeMetrics(append([]*monitor.MetricsSnapshot{snap}, s.satelliteMetrics()...)...)
	}
	body := withID(cmd.Type, http.StatusOK, s.id, 4)
	body.Set("connectionMetrics", raw(snap.ConnectionMetricsJSON()))
	body.Set("containsFailures", boolean(snap.ContainsFailures()))
	body.Set("sourceMetrics", raw(snap.SourceMetricsJSON()))
	body.Set("targetMetrics", raw(snap.TargetMetricsJSON()))
	return respond(http.StatusOK, body, seq)
}
