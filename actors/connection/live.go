package connection

import (
	"net/http"
	"time"

	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Ditto keeps this many entries per logger and level (successCapacity,
// failureCapacity).
const logCapacity = 10

// logEntry is one connection log entry in Ditto's JSON shape.
type logEntry struct {
	CorrelationID string `json:"correlationId"`
	Timestamp     string `json:"timestamp"`
	Category      string `json:"category"`
	Type          string `json:"type"`
	Level         string `json:"level"`
	Message       string `json:"message"`
}

// liveState is the grain's view of its (not yet running) client side: when
// clients last stopped, the connection logs and their enablement, metrics
// resets. Live broker clients fill in more of it.
type liveState struct {
	since time.Time // inStateSince of the client entry: last stop, or grain start

	logsSince, logsUntil time.Time // zero: logging disabled
	successes, failures  []logEntry

	metricsResetAt time.Time
}

func (l *liveState) clientsStopped(now time.Time) { l.since = now }

func (l *liveState) logsEnabled(now time.Time) bool {
	if l.logsUntil.IsZero() {
		return false
	}
	if now.After(l.logsUntil) {
		// expiry, as Ditto's periodic check would have done it
		l.disableLogs()
		return false
	}
	return true
}

func (l *liveState) enableLogs(now time.Time, d time.Duration) {
	l.logsSince, l.logsUntil = now, now.Add(d)
}

func (l *liveState) disableLogs() {
	l.logsSince, l.logsUntil = time.Time{}, time.Time{}
	l.successes, l.failures = nil, nil
}

func (l *liveState) add(now time.Time, level, msg string) {
	if !l.logsEnabled(now) {
		return // muted loggers record nothing
	}
	e := logEntry{CorrelationID: "<not-provided>", Timestamp: ditto.FormatInstant(now),
		Category: "connection", Type: "other", Level: level, Message: msg}
	list := &l.successes
	if level == "failure" {
		list = &l.failures
	}
	*list = append(*list, e)
	if len(*list) > logCapacity {
		*list = (*list)[len(*list)-logCapacity:]
	}
}

func (l *liveState) logFailure(now time.Time, msg string) { l.add(now, "failure", msg) }

// entries are all kept entries, oldest first.
func (l *liveState) entries() []logEntry {
	out := make([]logEntry, 0, len(l.successes)+len(l.failures))
	i, j := 0, 0
	for i < len(l.successes) || j < len(l.failures) {
		if j >= len(l.failures) || (i < len(l.successes) && l.successes[i].Timestamp <= l.failures[j].Timestamp) {
			out = append(out, l.successes[i])
			i++
		} else {
			out = append(out, l.failures[j])
			j++
		}
	}
	return out
}

func instantOrNull(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return ditto.FormatInstant(t)
}

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

// metrics answers retrieveConnectionMetrics with no client actor running:
// every address metric is empty, which Ditto writes as null.
func (g *grain) metrics(cmd *pb.Command) *pb.Reply {
	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		raw("connectionMetrics", []byte(`{"inbound":null,"outbound":null}`)).
		set("containsFailures", false).
		raw("sourceMetrics", []byte(`{"addressMetrics":null}`)).
		raw("targetMetrics", []byte(`{"addressMetrics":null}`))
	return reply(http.StatusOK, body.bytes(), g.seq)
}

func (g *grain) resetMetrics(cmd *pb.Command) *pb.Reply {
	g.live.metricsResetAt = g.cfg.Now()
	return g.simple(cmd, http.StatusOK)
}

func (g *grain) enableLogs(cmd *pb.Command) *pb.Reply {
	g.live.enableLogs(g.cfg.Now(), g.cfg.LogDuration)
	return g.simple(cmd, http.StatusOK)
}

// retrieveLogs extends enabled logging (Ditto re-broadcasts the enable, so
// enabledSince becomes now) and returns the kept entries, oldest first.
func (g *grain) retrieveLogs(cmd *pb.Command) *pb.Reply {
	now := g.cfg.Now()
	if g.live.logsEnabled(now) {
		g.live.enableLogs(now, g.cfg.LogDuration)
	}
	entries := marshal(g.live.entries())
	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		raw("connectionLogs", entries).
		set("enabledSince", instantOrNull(g.live.logsSince)).
		set("enabledUntil", instantOrNull(g.live.logsUntil))
	return reply(http.StatusOK, body.bytes(), g.seq)
}

func (g *grain) resetLogs(cmd *pb.Command) *pb.Reply {
	g.live.successes, g.live.failures = nil, nil
	g.live.add(g.cfg.Now(), "success", "Successfully reset the logs.")
	return g.simple(cmd, http.StatusOK)
}

// loggingExpired is internal: it disables logging and, as in Ditto, is never answered.
func (g *grain) loggingExpired(*pb.Command) *pb.Reply {
	g.live.disableLogs()
	return &pb.Reply{Kind: pb.Reply_NO_ANSWER}
}
