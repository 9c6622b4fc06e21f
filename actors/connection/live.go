package connection

import (
	"net/http"
	"time"

	"github.com/dittoconn/dittoconn/internal/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
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

// enableLogs enables logging for the configured duration (Logs.LogDuration).
func (l *liveState) enableLogs() {
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

// retrieveLogs extends enabled logging (Ditto re-broadcasts the enable, so
// enabledSince becomes now) and returns the kept entries, oldest first.
func (s *supervisor) retrieveLogs(cmd *pb.Command, seq int64) *pb.Reply {
	if s.live.logsEnabled(s.cfg.Now()) {
		s.live.logs.Enable()
	}
	snap := s.live.logs.Retrieve()
	body := withID(cmd.Type, http.StatusOK, s.id, 3)
	body.Set("connectionLogs", raw(snap.ConnectionLogsJSON()))
	body.Set("enabledSince", raw(snap.EnabledSinceJSON()))
	body.Set("enabledUntil", raw(snap.EnabledUntilJSON()))
	return respond(http.StatusOK, body, seq)
}
