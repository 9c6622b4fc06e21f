package connection

import (
	"net/http"
	"time"

	"github.com/dittoconn/dittoconn/actors/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// liveState is the grain's view of its client side: when clients last
// stopped, and the connection logs (shared with the data plane, which adds
// the per-message entries).
type liveState struct {
	since time.Time // inStateSince of the client entry: last stop, or grain start

	logs *monitor.Logs
	// send delivers into the grain's mailbox; check is the periodic expiry
	// check of enabled logging (Ditto's loggingActiveCheckInterval).
	send  func(any)
	check *time.Timer
}

// logsCheck is the grain's periodic look at enabled logging; it does not
// keep an idle grain alive.
type logsCheck struct{}

func (*logsCheck) NotInfluenceReceiveTimeout() {}

// armCheck schedules the next expiry check while logging is enabled.
func (l *liveState) armCheck() {
	if l.check != nil {
		l.check.Stop()
		l.check = nil
	}
	if l.send == nil || !l.logs.Enabled() {
		return
	}
	send := l.send
	l.check = time.AfterFunc(l.logs.Config().ActiveCheckInterval, func() { send(&logsCheck{}) })
}

// onCheck expires logging whose time is up (the data plane stops writing
// entries), or checks again later.
func (l *liveState) onCheck(now time.Time) {
	l.check = nil
	if l.logsEnabled(now) {
		l.armCheck()
	}
}

func (l *liveState) stopCheck() {
	if l.check != nil {
		l.check.Stop()
		l.check = nil
	}
}

func (l *liveState) clientsStopped(now time.Time) { l.since = now }

// logsEnabled reports whether logging is on, expiring it first when its
// time is up (as Ditto's periodic check would have done).
func (l *liveState) logsEnabled(now time.Time) bool {
	if !l.logs.Enabled() {
		return false
	}
	return !l.logs.CheckExpired(now)
}

func (l *liveState) enableLogs(time.Time, time.Duration) {
	l.logs.Enable()
	l.armCheck()
}

func (l *liveState) disableLogs() {
	l.logs.Disable()
	l.stopCheck()
}

// add logs a connection-level entry (category connection, type other).
func (l *liveState) add(now time.Time, level, msg string) {
	if !l.logsEnabled(now) {
		return // muted loggers record nothing
	}
	if level == "failure" {
		l.logs.Connection().FailureMsg(monitor.Info{Timestamp: now}, msg)
		return
	}
	l.logs.Connection().SuccessMsg(monitor.Info{Timestamp: now}, msg)
}

func (l *liveState) logFailure(now time.Time, msg string) { l.add(now, "failure", msg) }

// status answers retrieveConnectionStatus as Ditto does when no client actor
// runs: one closed client entry of this instance.
func (g *grain) status(cmd *pb.Command) *pb.Reply {
	if g.conn.ConnectionStatus == "open" && len(g.clients.current) > 0 {
		return g.liveStatus(cmd)
	}
	client := newObj().
		set("type", "client").
		set("client", g.cfg.Instance).
		set("status", "closed").
		set("recoveryStatus", "unknown").
		set("statusDetails", "[DISCONNECTED] connection is closed").
		set("inStateSince", ditto.FormatInstant(g.live.since)).bytes()
	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		set("connectionStatus", g.conn.ConnectionStatus).
		set("liveStatus", "closed").
		set("recoveryStatus", "unknown").
		raw("clientStatus", append(append([]byte{'['}, client...), ']'))
	return reply(http.StatusOK, body.bytes(), g.seq)
}

// metrics answers retrieveConnectionMetrics from the data plane of the
// running clients; without one every address metric is empty, which Ditto
// writes as null.
func (g *grain) metrics(cmd *pb.Command) *pb.Reply {
	// merged over the clients, as Ditto's aggregator does; a satellite's
	// counters are as of its last report (at most satRenewEvery old)
	snap := g.plane.Metrics()
	if snap != nil {
		snap = monitor.MergeMetrics(append([]*monitor.MetricsSnapshot{snap}, g.satelliteMetrics()...)...)
	}
	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		raw("connectionMetrics", snap.ConnectionMetricsJSON()).
		set("containsFailures", snap.ContainsFailures()).
		raw("sourceMetrics", snap.SourceMetricsJSON()).
		raw("targetMetrics", snap.TargetMetricsJSON())
	return reply(http.StatusOK, body.bytes(), g.seq)
}

func (g *grain) resetMetrics(cmd *pb.Command) *pb.Reply {
	g.plane.ResetMetrics()
	g.resetSatelliteMetrics()
	return g.simple(cmd, http.StatusOK)
}

func (g *grain) enableLogs(cmd *pb.Command) *pb.Reply {
	g.live.enableLogs(g.cfg.Now(), g.cfg.Logs.LogDuration)
	return g.simple(cmd, http.StatusOK)
}

// retrieveLogs extends enabled logging (Ditto re-broadcasts the enable, so
// enabledSince becomes now) and returns the kept entries, oldest first.
func (g *grain) retrieveLogs(cmd *pb.Command) *pb.Reply {
	if g.live.logsEnabled(g.cfg.Now()) {
		g.live.logs.Enable()
	}
	snap := g.live.logs.Retrieve()
	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		raw("connectionLogs", snap.ConnectionLogsJSON()).
		raw("enabledSince", snap.EnabledSinceJSON()).
		raw("enabledUntil", snap.EnabledUntilJSON())
	return reply(http.StatusOK, body.bytes(), g.seq)
}

func (g *grain) resetLogs(cmd *pb.Command) *pb.Reply {
	g.live.logsEnabled(g.cfg.Now())
	g.live.logs.Reset()
	return g.simple(cmd, http.StatusOK)
}

// loggingExpired is internal: it disables logging and, as in Ditto, is never answered.
func (g *grain) loggingExpired(*pb.Command) *pb.Reply {
	g.live.disableLogs()
	return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
}
