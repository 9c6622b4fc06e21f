package connection

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/sshtunnel"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// supervisor is a grain's live side: the runners of its clients and the
// data plane they feed, the satellites on other members, the commands
// waiting for the clients, and the connection logs. It acts on the entity's
// decisions once their events are persisted, and reads the entity (its
// connection and revision) but never changes it. Touched by the actor
// goroutine only; the runners and satellites reach it through the mailbox.
type supervisor struct {
	id   string
	cfg  *Config
	log  zerolog.Logger
	root *actor.RootContext
	self *actor.PID

	live    liveState
	clients clientSet
	plane   *dataplane.Plane // data plane of the running clients; nil: none
	// satellites: clients 1…clientCount-1 on other members
	sats     []satSlot
	satTimer *time.Timer
}

// request is the sender and command that a later answer goes to.
type request struct {
	sender *actor.PID
	cmd    *pb.Command
}

func newSupervisor(id string, cfg *Config, log zerolog.Logger, root *actor.RootContext, self *actor.PID) *supervisor {
	s := &supervisor{id: id, cfg: cfg, log: log, root: root, self: self}
	s.live.since = cfg.Now()
	s.live.logs = monitor.NewLogs(monitor.LogOptions{ConnectionID: id, Config: cfg.Logs, Now: cfg.Now,
		Publisher: cfg.LogPublisher})
	s.live.send = s.send
	return s
}

// send delivers m into the grain's mailbox.
func (s *supervisor) send(m any) { s.root.Send(s.self, m) }

// clientSet is the runners of the current configuration (gen) and those
// still stopping, plus commands waiting for them.
type clientSet struct {
	gen      uint64
	current  []*runner // nil: no clients wanted
	stopping map[*runner]struct{}
	waiters  []*waiter
}

// waitFor says what a waiting command waits for.
type waitFor int

const (
	waitConnected waitFor = iota // every current client connected (or one failed)
	waitStopped                  // no client left running
)

// waiter is a command answered once its condition holds.
type waiter struct {
	req   request
	gen   uint64
	what  waitFor
	ok    *pb.Reply // the answer on success
	after func()    // runs after answering (on success)
}

// act carries out what d decided, now that its events are persisted, and
// returns the answer (nil: answered later). e is the entity after the events.
func (s *supervisor) act(req request, d decision, e *entity) *pb.Reply {
	conn := e.conn
	switch d.action {
	case actCreated:
		if desired(conn) == client.StatusOpen {
			// create with status open enables logging; connecting is
			// asynchronous, so the 201 cannot wait for it
			s.live.enableLogs()
			s.start(conn)
		}
	case actModified:
		switch {
		case desired(conn) == client.StatusOpen && s.hasFactory(conn):
			// close the old clients, connect with the new configuration, then reply
			s.start(conn)
			return s.wait(req, waitConnected, d.reply, nil, e)
		case s.running():
			s.stop()
			return s.wait(req, waitStopped, d.reply, nil, e)
		}
	case actDeleted:
		if s.cfg.Collector != nil {
			// later reports of the stopping clients are not counted (no
			// connection any more), so the series stay gone
			s.cfg.Collector.Forget(s.id)
		}
		if s.running() {
			// closed announcement, disconnect, stop; then reply
			s.stop()
			return s.wait(req, waitStopped, d.reply, s.live.disableLogs, e)
		}
		s.live.disableLogs() // deleting a connection disables its logging
	case actOpened:
		if !s.hasFactory(conn) {
			return d.reply
		}
		if len(s.clients.current) == 0 {
			s.start(conn)
		}
		// reply once every client connected, or with the first failure (the
		// clients keep retrying: the desired status stays open)
		return s.wait(req, waitConnected, d.reply, nil, e)
	case actClosed:
		if s.running() {
			// each client sends the closed announcement, then disconnects
			s.stop()
			return s.wait(req, waitStopped, d.reply, nil, e)
		}
		s.live.clientsStopped(s.cfg.Now())
	case actTest:
		return s.test(req, d.conn, e.seq)
	case actStatus:
		return s.status(req.cmd, conn, e.seq)
	case actMetrics:
		return s.metrics(req.cmd, e.seq)
	case actResetMetrics:
		s.plane.ResetMetrics()
		s.resetSatelliteMetrics()
	case actEnableLogs:
		s.live.enableLogs()
	case actRetrieveLogs:
		return s.retrieveLogs(req.cmd, e.seq)
	case actResetLogs:
		s.live.logsEnabled(s.cfg.Now())
		s.live.logs.Reset()
	case actLoggingExpired:
		s.live.disableLogs()
	}
	return d.reply
}

// reopen connects a recovered desired-open connection, as Ditto does.
func (s *supervisor) reopen(conn *model.Connection) {
	s.live.enableLogs()
	s.start(conn)
}

// hasFactory reports whether live clients exist for c's type.
func (s *supervisor) hasFactory(c *model.Connection) bool {
	_, ok := s.cfg.Clients.Factory(c.ConnectionType)
	return ok
}

// start stops whatever runs and starts the clients of conn; the new ones
// connect once all old ones are gone.
func (s *supervisor) start(conn *model.Connection) {
	s.stop()
	factory, ok := s.cfg.Clients.Factory(conn.ConnectionType)
	if !ok {
		return
	}
	// the new clients connect once every old one is gone (same client ids,
	// closed announcement before opened)
	var waitOn []<-chan struct{}
	for r := range s.clients.stopping {
		waitOn = append(waitOn, r.done)
	}
	s.clients.gen++
	conn, tlsCfg, tlsErr := s.cfg.Clients.Prepare(conn) // hono: the Kafka connection Ditto makes of it
	now := s.cfg.Now()
	plane, planeErr := dataplane.New(conn, dataplane.Config{Bus: s.cfg.Bus, Mapping: s.cfg.Mapping, Logs: s.live.logs,
		Collector: s.cfg.Collector, Now: s.cfg.Now, Logger: s.log, Routing: s.cfg.StandaloneRouting, Ditto: s.cfg.Ditto})
	if planeErr != nil {
		planeErr = fmt.Errorf("%w: %v", client.ErrConfig, planeErr)
	}
	s.plane = plane
	// Client 0 runs here; the others on other members (satellite.go).
	const idx = 0
	f := factory
	if err := errors.Join(tlsErr, planeErr); err != nil {
		f = func(client.Env) (client.Client, error) { return nil, err }
	}
	log := s.log.With().Int("client", idx).Logger()
	spec := runnerSpec{
		gen: s.clients.gen, idx: idx, connectionID: s.id,
		env: client.Env{Connection: conn, ClientIndex: idx, Instance: s.cfg.Instance, Logger: log, TLS: tlsCfg,
			Inbound: plane.Inbound(idx)},
		factory: f, backoff: s.cfg.Backoff, connectTimeout: s.cfg.ConnectTimeout,
		prev: waitOn, send: s.send, now: s.cfg.Now, log: log, plane: plane,
	}
	s.clients.current = append(s.clients.current, startRunner(s.cfg.Runners, spec, now))
	s.startSatellites(conn)
}

// stop asks the current runners to disconnect (each sends its closed
// announcement first); they report repStopped when gone.
func (s *supervisor) stop() {
	if s.clients.stopping == nil {
		s.clients.stopping = map[*runner]struct{}{}
	}
	for _, r := range s.clients.current {
		r.cancel()
		s.clients.stopping[r] = struct{}{}
	}
	s.clients.current = nil
	s.plane.Close()
	s.plane = nil
	s.stopSatellites()
}

// stopAll stops every runner without waiting (the grain is going away).
func (s *supervisor) stopAll() {
	s.stop()
	s.live.stopCheck()
}

// running reports whether any runner is alive.
func (s *supervisor) running() bool {
	return len(s.clients.current) > 0 || len(s.clients.stopping) > 0
}

// busy reports whether the grain must stay in memory for its live side.
func (s *supervisor) busy() bool { return s.running() || len(s.clients.waiters) > 0 }

// wait registers req to be answered when what holds (checked at once too).
func (s *supervisor) wait(req request, what waitFor, ok *pb.Reply, after func(), e *entity) *pb.Reply {
	w := &waiter{req: req, gen: s.clients.gen, what: what, ok: ok, after: after}
	if r, done := s.check(w, e); done {
		if after != nil && r == ok {
			after()
		}
		return r
	}
	s.clients.waiters = append(s.clients.waiters, w)
	return nil
}

// check tells whether w can be answered now, and with what.
func (s *supervisor) check(w *waiter, e *entity) (*pb.Reply, bool) {
	switch w.what {
	case waitStopped:
		return w.ok, !s.running()
	default:
		if w.gen != s.clients.gen {
			return w.ok, true // superseded by a later command
		}
		all := true
		for _, r := range s.clients.current {
			switch r.status {
			case client.StatusOpen:
			case client.StatusFailed, client.StatusMisconfigured:
				return errorReply(s.connectError(s.id, e.conn, r.lastErr), e.seq), true
			default:
				all = false
			}
		}
		return w.ok, all
	}
}

// settle answers every waiter whose condition now holds.
func (s *supervisor) settle(e *entity) {
	kept := s.clients.waiters[:0]
	for _, w := range s.clients.waiters {
		r, done := s.check(w, e)
		if !done {
			kept = append(kept, w)
			continue
		}
		r = w.req.cmd.Answer(r)
		if w.req.sender != nil {
			s.root.Send(w.req.sender, r)
		}
		if w.after != nil && r == w.ok {
			w.after()
		}
	}
	clear(s.clients.waiters[len(kept):])
	s.clients.waiters = kept
}

// connectError maps a client error of connection id (c: its configuration,
// nil when deleted) to Ditto's answer.
func (s *supervisor) connectError(id string, c *model.Connection, err error) *ditto.Error {
	var tunnelErr *sshtunnel.Error
	switch {
	case err == nil:
		return ditto.ConnectionFailed(id, "Connection attempt failed.")
	case errors.As(err, &tunnelErr):
		// Ditto answers a failed tunnel with its root cause
		return ditto.ConnectionFailed(id, tunnelErr.Description())
	case errors.Is(err, client.ErrUnauthorized):
		return ditto.New(http.StatusUnauthorized, ditto.CodeConnectionUnauthorized,
			fmt.Sprintf("The Connection with ID '%s' was not authorized by the endpoint.", id),
			"Check the credentials of the connection.")
	case errors.Is(err, client.ErrUnreachable):
		endpoint := ""
		if c != nil {
			endpoint = s.cfg.Clients.DialAddress(c)
		}
		return ditto.ConnectionFailed(id, fmt.Sprintf(
			"Could not establish a connection on '%s'. Make sure the endpoint is reachable and that no firewall prevents the connection.",
			endpoint))
	case errors.Is(err, client.ErrTimeout):
		return ditto.ConnectionFailed(id, "Connection attempt timed out.")
	default:
		return ditto.ConnectionFailed(id, err.Error())
	}
}

// onReport applies a runner's report to the supervisor's view, writes the
// connection log and answers waiting commands.
func (s *supervisor) onReport(rep *clientReport, e *entity) {
	var r *runner
	for _, c := range s.clients.current {
		if c.gen == rep.gen && c.idx == rep.idx {
			r = c
		}
	}
	if r == nil {
		for c := range s.clients.stopping {
			if c.gen == rep.gen && c.idx == rep.idx {
				r = c
			}
		}
	}
	if r == nil {
		return
	}
	_, isStopping := s.clients.stopping[r]
	now := rep.at
	before := r.status
	cause := r.apply(rep, isStopping)
	if r.status != before && s.cfg.Collector != nil && e.conn != nil {
		// connection_live_status_reported: every status a client reports
		s.cfg.Collector.LiveStatusReported(s.id, e.conn.ConnectionType, string(r.status))
	}
	switch rep.kind {
	case repConnected:
		s.live.add(now, "success", "Connection successful")
	case repFailed, repLost, repReconnecting:
		if !isStopping {
			s.live.logFailure(now, "Connection failed due to: "+cause)
		}
	case repRetrying:
		if !isStopping {
			s.live.add(now, "success", "Trying to reconnect")
		}
	case repStopped:
		delete(s.clients.stopping, r)
		if rep.wasConnected {
			s.live.add(now, "success", "Disconnected successfully")
		}
		if !s.running() {
			s.live.clientsStopped(now)
		}
	}
	s.settle(e)
}

// apply updates the runner's state from its report and returns the cause
// of a failure report.
func (r *runner) apply(rep *clientReport, isStopping bool) string {
	now := rep.at
	setState := func(status client.Status, recovery client.Recovery, details string) {
		if r.status != status {
			r.since = now
		}
		r.status, r.recovery, r.details = status, recovery, details
	}
	cause := ""
	switch rep.kind {
	case repConnected:
		r.client, r.lastErr = rep.client, nil
		setState(client.StatusOpen, client.RecoverySucceeded, client.DetailsConnected)
	case repFailed, repLost, repReconnecting:
		if rep.kind != repReconnecting {
			r.client = nil
		}
		r.lastErr = rep.err
		cause = "connection lost"
		if rep.err != nil {
			cause = rep.err.Error()
		}
		if !isStopping {
			status := client.StatusFailed
			if errors.Is(rep.err, client.ErrConfig) {
				status = client.StatusMisconfigured // retrying will not help until the connection is modified
			}
			setState(status, client.RecoveryOngoing, cause)
		}
	case repStopped:
		r.client = nil
		setState(client.StatusClosed, client.RecoveryUnknown, detailsDisconnected)
	}
	return cause
}

// detailsDisconnected are the status details of a client that is not running.
const detailsDisconnected = "[DISCONNECTED] connection is closed"
