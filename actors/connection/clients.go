package connection

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/dataplane"
	"github.com/dittoconn/dittoconn/actors/model"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// clientSet is the grain's live side: the runners of the current
// configuration (gen) and those still stopping, plus commands waiting for
// them. Touched by the actor goroutine only.
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
	sender *actor.PID
	cmd    *pb.Command
	gen    uint64
	what   waitFor
	ok     *pb.Reply // the answer on success
	after  func()    // runs after answering (on success)
}

// hasFactory reports whether live clients exist for c's type.
func (g *grain) hasFactory(c *model.Connection) bool {
	_, ok := g.cfg.Clients[c.ConnectionType]
	return ok
}

// startClients stops whatever runs and starts clientCount runners for the
// current connection; the new ones connect once all old ones are gone.
func (g *grain) startClients(ctx actor.Context) {
	g.stopClients()
	factory, ok := g.cfg.Clients[g.conn.ConnectionType]
	if !ok {
		return
	}
	// the new clients connect once every old one is gone (same client ids,
	// closed announcement before opened)
	var waitOn []<-chan struct{}
	for r := range g.clients.stopping {
		waitOn = append(waitOn, r.done)
	}
	g.clients.gen++
	conn := g.conn
	tlsCfg, tlsErr := client.TLSConfig(conn)
	root, self := ctx.ActorSystem().Root, ctx.Self()
	send := func(m any) { root.Send(self, m) }
	announce := announcementTargets(conn)
	// Client 0 runs here; the others on other members (satellite.go).
	n := 1
	now := g.cfg.Now()
	plane, planeErr := dataplane.New(conn, dataplane.Config{Bus: g.cfg.Bus, Mapping: g.cfg.Mapping, Logs: g.live.logs,
		Collector: g.cfg.Collector, Now: g.cfg.Now, Logger: g.log})
	if planeErr != nil {
		planeErr = fmt.Errorf("%w: %v", client.ErrConfig, planeErr)
	}
	g.plane = plane
	for i := 0; i < n; i++ {
		f := factory
		if err := errors.Join(tlsErr, planeErr); err != nil {
			f = func(client.Env) (client.Client, error) { return nil, err }
		}
		log := g.log.With().Int("client", i).Logger()
		spec := runnerSpec{
			gen: g.clients.gen, idx: i, connectionID: g.id,
			env: client.Env{Connection: conn, ClientIndex: i, Instance: g.cfg.Instance, Logger: log, TLS: tlsCfg,
				Inbound: plane.Inbound(i)},
			factory: f, backoff: g.cfg.Backoff, connectTimeout: g.cfg.ConnectTimeout,
			announce: announce, prev: waitOn, send: send, now: g.cfg.Now, log: log, plane: plane,
		}
		g.clients.current = append(g.clients.current, startRunner(g.cfg.Runners, spec, now))
	}
	g.startSatellites()
}

// stopClients asks the current runners to disconnect (each sends its closed
// announcement first) and returns them; they report repStopped when gone.
func (g *grain) stopClients() []*runner {
	prev := g.clients.current
	if g.clients.stopping == nil {
		g.clients.stopping = map[*runner]struct{}{}
	}
	for _, r := range prev {
		r.cancel()
		g.clients.stopping[r] = struct{}{}
	}
	g.clients.current = nil
	g.plane.Close()
	g.plane = nil
	g.stopSatellites()
	return prev
}

// running reports whether any runner is alive.
func (g *grain) running() bool {
	return len(g.clients.current) > 0 || len(g.clients.stopping) > 0
}

// wait registers cmd to be answered when what holds (checked at once too).
func (g *grain) wait(what waitFor, ok *pb.Reply, after func()) *pb.Reply {
	w := &waiter{sender: g.sender, cmd: g.cmd, gen: g.clients.gen, what: what, ok: ok, after: after}
	if r, done := g.check(w); done {
		if after != nil && r == ok {
			after()
		}
		return r
	}
	g.clients.waiters = append(g.clients.waiters, w)
	return deferred
}

// check tells whether w can be answered now, and with what.
func (g *grain) check(w *waiter) (*pb.Reply, bool) {
	switch w.what {
	case waitStopped:
		return w.ok, !g.running()
	default:
		if w.gen != g.clients.gen {
			return w.ok, true // superseded by a later command
		}
		all := true
		for _, r := range g.clients.current {
			switch r.status {
			case client.StatusOpen:
			case client.StatusFailed, client.StatusMisconfigured:
				return errorReply(g.connectError(r.lastErr), g.seq), true
			default:
				all = false
			}
		}
		return w.ok, all
	}
}

// settle answers every waiter whose condition now holds.
func (g *grain) settle(ctx actor.Context) {
	kept := g.clients.waiters[:0]
	for _, w := range g.clients.waiters {
		r, done := g.check(w)
		if !done {
			kept = append(kept, w)
			continue
		}
		if w.cmd.Headers[ditto.HeaderResponseRequired] == "false" {
			r = &pb.Reply{Kind: pb.Reply_NO_ANSWER}
		}
		if w.sender != nil {
			ctx.Send(w.sender, r)
		}
		if w.after != nil && r == w.ok {
			w.after()
		}
	}
	clear(g.clients.waiters[len(kept):])
	g.clients.waiters = kept
}

// connectError maps a client error to Ditto's answer.
func (g *grain) connectError(err error) *ditto.Error {
	switch {
	case err == nil:
		return ditto.ConnectionFailed(g.id, "Connection attempt failed.")
	case errors.Is(err, client.ErrUnauthorized):
		return ditto.New(http.StatusUnauthorized, ditto.CodeConnectionUnauthorized,
			fmt.Sprintf("The Connection with ID '%s' was not authorized by the endpoint.", g.id),
			"Check the credentials of the connection.")
	case errors.Is(err, client.ErrUnreachable):
		return ditto.ConnectionFailed(g.id, fmt.Sprintf(
			"Could not establish a connection on '%s'. Make sure the endpoint is reachable and that no firewall prevents the connection.",
			endpointOf(g.connOrNil())))
	case errors.Is(err, client.ErrTimeout):
		return ditto.ConnectionFailed(g.id, "Connection attempt timed out.")
	default:
		return ditto.ConnectionFailed(g.id, err.Error())
	}
}

func (g *grain) connOrNil() *model.Connection { return g.conn }

func endpointOf(c *model.Connection) string {
	if c == nil {
		return ""
	}
	return dialAddress(c)
}

// onReport applies a runner's report to the grain's view, writes the
// connection log and answers waiting commands.
func (g *grain) onReport(ctx actor.Context, rep *clientReport) {
	var r *runner
	for _, c := range g.clients.current {
		if c.gen == rep.gen && c.idx == rep.idx {
			r = c
		}
	}
	if r == nil {
		for c := range g.clients.stopping {
			if c.gen == rep.gen && c.idx == rep.idx {
				r = c
			}
		}
	}
	if r == nil {
		return
	}
	_, isStopping := g.clients.stopping[r]
	now := rep.at
	before := r.status
	cause := r.apply(rep, isStopping)
	if r.status != before && g.cfg.Collector != nil && g.conn != nil {
		// connection_live_status_reported: every status a client reports
		g.cfg.Collector.LiveStatusReported(g.id, g.conn.ConnectionType, r.status)
	}
	switch rep.kind {
	case repConnected:
		g.live.add(now, "success", "Connection successful")
	case repFailed, repLost, repReconnecting:
		if !isStopping {
			g.live.logFailure(now, "Connection failed due to: "+cause)
		}
	case repRetrying:
		if !isStopping {
			g.live.add(now, "success", "Trying to reconnect")
		}
	case repStopped:
		delete(g.clients.stopping, r)
		if rep.wasConnected {
			g.live.add(now, "success", "Disconnected successfully")
		}
		if !g.running() {
			g.live.clientsStopped(now)
		}
	}
	g.settle(ctx)
}

// apply updates the runner's state from its report and returns the cause
// of a failure report.
func (r *runner) apply(rep *clientReport, isStopping bool) string {
	now := rep.at
	setState := func(status, recovery, details string) {
		if r.status != status {
			r.since = now
		}
		r.status, r.recovery, r.details = status, recovery, details
	}
	cause := ""
	switch rep.kind {
	case repConnected:
		r.client, r.lastErr = rep.client, nil
		setState(client.StatusOpen, "succeeded", client.DetailsConnected)
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
			setState(status, "ongoing", cause)
		}
	case repStopped:
		r.client = nil
		setState(client.StatusClosed, "unknown", "[DISCONNECTED] connection is closed")
	}
	return cause
}

// stopAll stops every runner without waiting (the grain is going away).
func (g *grain) stopAll() {
	g.stopClients()
}

// --- retrieveConnectionStatus with live clients ---

type statusEntry struct {
	typ, client, address, status, recovery, details string
	since                                           time.Time
}

func (e statusEntry) json() []byte {
	o := newObj().set("type", e.typ).set("client", e.client)
	if (e.typ == "source" || e.typ == "target") && e.address != "" {
		o.set("address", e.address) // filled-in entries have none
	}
	o.set("status", e.status)
	if e.typ == "client" {
		o.set("recoveryStatus", e.recovery)
	}
	if e.details != "" {
		o.set("statusDetails", e.details)
	}
	if !e.since.IsZero() {
		o.set("inStateSince", ditto.FormatInstant(e.since))
	}
	return o.bytes()
}

func jsonArray(es []statusEntry) []byte {
	out := []byte{'['}
	for i, e := range es {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, e.json()...)
	}
	return append(out, ']')
}

// expectedSources is how many source entries a desired-open connection has:
// per client and consumer one per address, for MQTT one per source.
func expectedSources(c *model.Connection) int {
	n := 0
	perSource := c.ConnectionType == model.TypeMQTT || c.ConnectionType == model.TypeMQTT5
	for _, s := range c.Sources {
		k := max(s.ConsumerCount, 1)
		if !perSource {
			k *= len(s.Addresses)
		}
		n += k
	}
	return n * max(c.ClientCount, 1)
}

// liveStatus answers retrieveConnectionStatus from the running clients,
// computed as Ditto's aggregator does (spec §2.4).
func (g *grain) liveStatus(cmd *pb.Command) *pb.Reply {
	var clients, sources, targets []statusEntry
	for _, r := range g.clients.current {
		clients = append(clients, statusEntry{typ: "client", client: g.cfg.Instance, status: r.status,
			recovery: r.recovery, details: r.details, since: r.since})
		if r.client == nil {
			continue
		}
		for _, rs := range r.client.Status() {
			e := statusEntry{typ: rs.Type, client: g.cfg.Instance, address: rs.Address, status: rs.Status,
				details: rs.Details, since: rs.Since}
			switch rs.Type {
			case "source":
				sources = append(sources, e)
			case "target":
				targets = append(targets, e)
			}
		}
	}
	satClients, satSources, satTargets, undelivered := g.satelliteEntries()
	clients, sources, targets = append(clients, satClients...), append(sources, satSources...), append(targets, satTargets...)
	fill := func(list []statusEntry, typ string, want int) []statusEntry {
		for len(list) < want {
			if undelivered {
				list = append(list, statusEntry{typ: typ, client: "<unknown>", status: client.StatusMisconfigured,
					details: g.notDelivered(typ)})
				continue
			}
			list = append(list, statusEntry{typ: typ, client: "<unknown>", status: client.StatusFailed,
				details: fmt.Sprintf("The %s failed to report its status within the timeout.", typ)})
		}
		return list
	}
	sources = fill(sources, "source", expectedSources(g.conn))
	targets = fill(targets, "target", len(g.conn.Targets)*max(g.conn.ClientCount, 1))

	clientsLive := listStatus(clients, clients)
	live := overall(clientsLive, listStatus(sources, clients), listStatus(targets, clients))

	body := response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		set("connectionStatus", g.conn.ConnectionStatus).
		set("liveStatus", live).
		set("recoveryStatus", recoveryOf(clients))
	var since time.Time
	for _, c := range clients {
		if c.status == client.StatusOpen && (since.IsZero() || c.since.Before(since)) {
			since = c.since
		}
	}
	if !since.IsZero() {
		body.set("connectedSince", ditto.FormatInstant(since))
	}
	for _, l := range []struct {
		key  string
		list []statusEntry
	}{{"clientStatus", clients}, {"sourceStatus", sources}, {"targetStatus", targets}} {
		if len(l.list) > 0 {
			body.raw(l.key, jsonArray(l.list))
		}
	}
	return reply(http.StatusOK, body.bytes(), g.seq)
}

// listStatus is the live status of one resource list.
func listStatus(list, clients []statusEntry) string {
	count := map[string]int{}
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

func overall(lists ...string) string {
	count := map[string]int{}
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

func recoveryOf(clients []statusEntry) string {
	count := map[string]int{}
	for _, c := range clients {
		count[c.recovery]++
	}
	switch {
	case len(clients) > 0 && count["succeeded"] == len(clients):
		return "succeeded"
	case count["backOffLimitReached"] > 0:
		return "backOffLimitReached"
	case count["ongoing"] > 0:
		return "ongoing"
	}
	return "unknown"
}

// --- testConnection with a real client ---

// testLive connects a client of c once and disconnects, in a goroutine; the
// answer goes straight to the sender.
func (g *grain) testLive(ctx actor.Context, cmd *pb.Command, c *model.Connection, factory client.Factory) *pb.Reply {
	timeout := g.cfg.TestTimeout
	if cmd.DeadlineUnixNano > 0 {
		if left := time.Until(time.Unix(0, cmd.DeadlineUnixNano)); left < timeout {
			timeout = left
		}
	}
	root, sender := ctx.ActorSystem().Root, ctx.Sender()
	id, seq, log := g.id, g.seq, g.log
	tlsCfg, tlsErr := client.TLSConfig(c)
	env := client.Env{Connection: c, Instance: g.cfg.Instance, Logger: log, TLS: tlsCfg, Events: func(client.Event) {}}
	noAnswer := cmd.Headers[ditto.HeaderResponseRequired] == "false"
	errOf := func(err error) *ditto.Error { tmp := &grain{id: id, conn: c}; return tmp.connectError(err) }
	testSeconds := int(g.cfg.TestTimeout / time.Second)
	go func() {
		tctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		err := tlsErr
		if err == nil {
			err = runTest(tctx, factory, env)
		}
		var r *pb.Reply
		switch {
		case err == nil:
			r = reply(http.StatusOK, response(cmd.Type, http.StatusOK).
				set("connectionId", id).
				set("testResult", "Success(successfully connected + initialized mapper)").bytes(), seq)
		case tctx.Err() != nil && !errors.Is(err, client.ErrUnauthorized) && !errors.Is(err, client.ErrUnreachable):
			r = errorReply(ditto.ConnectionFailed(id, fmt.Sprintf("Failed to open requested connection within <%d> seconds!", testSeconds)), seq)
		default:
			r = errorReply(errOf(err), seq)
		}
		log.Debug().Err(err).Msg("test finished")
		if noAnswer {
			r = &pb.Reply{Kind: pb.Reply_NO_ANSWER}
		}
		if sender != nil {
			root.Send(sender, r)
		}
	}()
	return deferred
}

func runTest(ctx context.Context, factory client.Factory, env client.Env) error {
	cl, err := factory(env)
	if err != nil {
		return err
	}
	if t, ok := cl.(client.Tester); ok {
		return t.Test(ctx)
	}
	err = cl.Connect(ctx)
	cctx, cancel := context.WithTimeout(context.Background(), disconnectTimeout)
	defer cancel()
	_ = cl.Close(cctx)
	return err
}
