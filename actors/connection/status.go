package connection

import (
	"fmt"
	"net/http"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/ojson"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Status is a status as Ditto names it: the desired status of a connection
// (open or closed, persisted in the entity) and the live status of its
// clients, sources and targets (any of the five). The strings come from the
// client contract, which reports them.
type Status string

const (
	StatusOpen          Status = client.StatusOpen
	StatusClosed        Status = client.StatusClosed
	StatusFailed        Status = client.StatusFailed
	StatusMisconfigured Status = client.StatusMisconfigured
	StatusUnknown       Status = client.StatusUnknown
)

// Recovery is a client's recovery status in retrieveConnectionStatus.
type Recovery string

const (
	RecoveryOngoing             Recovery = "ongoing"
	RecoverySucceeded           Recovery = "succeeded"
	RecoveryBackOffLimitReached Recovery = "backOffLimitReached"
	RecoveryUnknown             Recovery = "unknown"
)

// AlwaysAliveTag is the journal tag of a connection whose desired status is
// open; the reopen sweep lists connections by it after a restart. Ditto
// writes priority-0 beside it.
const (
	AlwaysAliveTag = "always-alive"
	priorityTag    = "priority-0"
)

// desired is c's desired status.
func desired(c *model.Connection) Status { return Status(c.ConnectionStatus) }

// --- retrieveConnectionStatus ---

type statusEntry struct {
	typ, client, address string
	status               Status
	recovery             Recovery
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
func statusAnswer(cmd *pb.Command, id string, conn *model.Connection, live Status, recovery Recovery) *ojson.Object {
	body := withID(cmd.Type, http.StatusOK, id, 7)
	body.Set("connectionStatus", str(conn.ConnectionStatus))
	body.Set("liveStatus", str(string(live)))
	body.Set("recoveryStatus", str(string(recovery)))
	return body
}

// status answers retrieveConnectionStatus; as Ditto does when no client
// actor runs, that is one closed client entry of this instance.
func (s *supervisor) status(cmd *pb.Command, conn *model.Connection, seq int64) *pb.Reply {
	if desired(conn) == StatusOpen && len(s.clients.current) > 0 {
		return s.liveStatus(cmd, conn, seq)
	}
	client := statusEntry{typ: "client", client: s.cfg.Instance, status: StatusClosed, recovery: RecoveryUnknown,
		details: detailsDisconnected, since: s.live.since}
	body := statusAnswer(cmd, s.id, conn, StatusClosed, RecoveryUnknown)
	setEntries(body, "clientStatus", []statusEntry{client})
	return respond(http.StatusOK, body, seq)
}

// resourceEntry is a client's resource status as an entry of instance.
func resourceEntry(instance string, rs client.ResourceStatus) statusEntry {
	return statusEntry{typ: rs.Type, client: instance, address: rs.Address, status: Status(rs.Status),
		details: rs.Details, since: rs.Since}
}

// liveStatus answers retrieveConnectionStatus from the running clients,
// computed as Ditto's aggregator does (spec §2.4).
func (s *supervisor) liveStatus(cmd *pb.Command, conn *model.Connection, seq int64) *pb.Reply {
	var clients, sources, targets []statusEntry
	for _, r := range s.clients.current {
		clients = append(clients, statusEntry{typ: "client", client: s.cfg.Instance, status: r.status,
			recovery: r.recovery, details: r.details, since: r.since})
		if r.client == nil {
			continue
		}
		for _, rs := range r.client.Status() {
			switch rs.Type {
			case "source":
				sources = append(sources, resourceEntry(s.cfg.Instance, rs))
			case "target":
				targets = append(targets, resourceEntry(s.cfg.Instance, rs))
			}
		}
	}
	satClients, satSources, satTargets, undelivered := s.satelliteEntries(conn)
	clients, sources, targets = append(clients, satClients...), append(sources, satSources...), append(targets, satTargets...)
	fill := func(list []statusEntry, typ string, want int) []statusEntry {
		for len(list) < want {
			if undelivered {
				list = append(list, statusEntry{typ: typ, client: "<unknown>", status: StatusMisconfigured,
					details: notDelivered(conn, typ)})
				continue
			}
			list = append(list, statusEntry{typ: typ, client: "<unknown>", status: StatusFailed,
				details: fmt.Sprintf("The %s failed to report its status within the timeout.", typ)})
		}
		return list
	}
	sources = fill(sources, "source", s.cfg.Clients.ExpectedSources(conn))
	targets = fill(targets, "target", len(conn.Targets)*max(conn.ClientCount, 1))

	clientsLive := listStatus(clients, clients)
	live := overall(clientsLive, listStatus(sources, clients), listStatus(targets, clients))

	body := statusAnswer(cmd, s.id, conn, live, recoveryOf(clients))
	var since time.Time
	for _, c := range clients {
		if c.status == StatusOpen && (since.IsZero() || c.since.Before(since)) {
			since = c.since
		}
	}
	if !since.IsZero() {
		body.Set("connectedSince", str(ditto.FormatInstant(since)))
	}
	setEntries(body, "clientStatus", clients)
	setEntries(body, "sourceStatus", sources)
	setEntries(body, "targetStatus", targets)
	return respond(http.StatusOK, body, seq)
}

// listStatus is the live status of one resource list.
func listStatus(list, clients []statusEntry) Status {
	count := map[Status]int{}
	for _, e := range list {
		count[e.status]++
	}
	switch {
	case len(list) == 0 || count[StatusOpen] == len(list):
		return StatusOpen
	case count[StatusFailed] > 0:
		return StatusFailed
	case count[StatusMisconfigured] > 0:
		return StatusMisconfigured
	case count[StatusClosed] == len(list):
		return StatusClosed
	}
	for _, c := range clients {
		if c.status != StatusOpen {
			return StatusUnknown
		}
	}
	return StatusOpen
}

func overall(lists ...Status) Status {
	count := map[Status]int{}
	for _, s := range lists {
		count[s]++
	}
	switch {
	case count[StatusOpen] == len(lists):
		return StatusOpen
	case count[StatusFailed] > 0:
		return StatusFailed
	case count[StatusMisconfigured] > 0:
		return StatusMisconfigured
	case count[StatusClosed] == len(lists):
		return StatusClosed
	}
	return StatusUnknown
}

func recoveryOf(clients []statusEntry) Recovery {
	count := map[Recovery]int{}
	for _, c := range clients {
		count[c.recovery]++
	}
	switch {
	case len(clients) > 0 && count[RecoverySucceeded] == len(clients):
		return RecoverySucceeded
	case count[RecoveryBackOffLimitReached] > 0:
		return RecoveryBackOffLimitReached
	case count[RecoveryOngoing] > 0:
		return RecoveryOngoing
	}
	return RecoveryUnknown
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
