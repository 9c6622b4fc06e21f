package connection

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/dittoconn/dittoconn/actors/dataplane"
	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/persistence"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// handler answers one command type. exists says whether the entity is live
// (created and not deleted); the table decides who may run on a missing one.
type handler struct {
	run func(g *grain, cmd *pb.Command) *pb.Reply
	// onMissing: the handler also runs for never-created or deleted ids
	// (create, modify as upsert, test); otherwise those get 404.
	onMissing bool
}

// handlers maps Ditto's command types to the grain's handlers.
var handlers = map[string]handler{
	ditto.CreateConnection:           {run: (*grain).create, onMissing: true},
	ditto.ModifyConnection:           {run: (*grain).modify, onMissing: true},
	ditto.TestConnection:             {run: (*grain).test, onMissing: true},
	ditto.RetrieveConnection:         {run: (*grain).retrieve},
	ditto.DeleteConnection:           {run: (*grain).delete},
	ditto.OpenConnection:             {run: (*grain).open},
	ditto.CloseConnection:            {run: (*grain).close},
	ditto.SudoRetrieveConnectionTags: {run: (*grain).tags},
	ditto.RetrieveConnectionStatus:   {run: (*grain).status},
	ditto.RetrieveConnectionMetrics:  {run: (*grain).metrics},
	ditto.ResetConnectionMetrics:     {run: (*grain).resetMetrics},
	ditto.EnableConnectionLogs:       {run: (*grain).enableLogs},
	ditto.RetrieveConnectionLogs:     {run: (*grain).retrieveLogs},
	ditto.ResetConnectionLogs:        {run: (*grain).resetLogs},
	ditto.LoggingExpired:             {run: (*grain).loggingExpired},
	WakeType:                         {run: (*grain).wake, onMissing: true},
}

// WakeType is dittoconn's internal command that only activates a grain (its
// recovery reopens a desired-open connection); it is never answered with
// content and never comes from the gateway.
const WakeType = "dittoconn.internal:wake"

func (g *grain) wake(*pb.Command) *pb.Reply { return &pb.Reply{Kind: pb.Reply_NO_ANSWER} }

func (g *grain) handle(cmd *pb.Command) *pb.Reply {
	if !g.recovered {
		g.recover() // a transient store failure may have passed
		if !g.recovered {
			return errorReply(ditto.ConnectionUnavailable(g.id), g.seq)
		}
	}
	h, ok := handlers[cmd.Type]
	if !ok {
		// e.g. checkConnectionLogsActive: only client actors handle it; the
		// persistence actor leaves it unhandled, which surfaces as 404.
		return errorReply(ditto.ConnectionNotFound(g.id), g.seq)
	}
	if g.conn == nil && !h.onMissing {
		return errorReply(ditto.ConnectionNotFound(g.id), g.seq)
	}
	return h.run(g, cmd)
}

// --- replies ---

func reply(status int, payload []byte, rev int64) *pb.Reply {
	r := &pb.Reply{Kind: pb.Reply_RESPONSE, Status: int32(status), Payload: payload}
	if rev > 0 {
		r.Headers = map[string]string{ditto.HeaderEntityRevision: strconv.FormatInt(rev, 10)}
	}
	return r
}

func errorReply(err *ditto.Error, rev int64) *pb.Reply {
	return reply(err.Status, err.JSON(), rev)
}

// parseErrorReply is for a command whose JSON could not be read: the gateway
// wraps it as devops.responses:errorResponse, as Ditto does.
func parseErrorReply(err *ditto.Error) *pb.Reply {
	return &pb.Reply{Kind: pb.Reply_PARSE_ERROR, Status: int32(err.Status), Payload: err.JSON()}
}

// response starts a response object: type, status.
func response(cmdType string, status int) *obj {
	return newObj().set("type", ditto.ResponseType(cmdType)).set("status", status)
}

// simple is {type, status, connectionId}.
func (g *grain) simple(cmd *pb.Command, status int) *pb.Reply {
	return reply(status, response(cmd.Type, status).set("connectionId", g.id).bytes(), g.seq)
}

// storeFailure maps a failed write to Ditto's answer: a conflicting writer
// means someone else owns this journal right now.
func (g *grain) storeFailure(op string, err error) *pb.Reply {
	g.log.Error().Err(err).Str("op", op).Msg("persisting event failed")
	if errors.Is(err, persistence.ErrConflict) {
		g.recovered = false // re-read the journal before the next command
	}
	return errorReply(ditto.ConnectionUnavailable(g.id), g.seq)
}

// commandConnection parses the "connection" of create/modify/test.
func commandConnection(cmd *pb.Command) (*model.Connection, *pb.Reply) {
	var body struct {
		Connection json.RawMessage `json:"connection"`
	}
	if err := json.Unmarshal(cmd.Payload, &body); err != nil {
		return nil, parseErrorReply(ditto.JSONInvalid(err.Error()))
	}
	if len(body.Connection) == 0 || string(body.Connection) == "null" {
		return nil, parseErrorReply(ditto.JSONFieldMissing("/connection"))
	}
	c, err := model.ParseCommand(body.Connection)
	if err != nil {
		if de, ok := ditto.As(err); ok {
			return nil, parseErrorReply(de)
		}
		return nil, parseErrorReply(ditto.JSONInvalid(err.Error()))
	}
	return c, nil
}

// validate runs Ditto's connection validator; failures are also written to
// the connection log, as Ditto does.
func (g *grain) validate(cmd *pb.Command, c *model.Connection) *pb.Reply {
	if err := model.Validate(c, g.cfg.Validation); err != nil {
		de, ok := ditto.As(err)
		if !ok {
			de = ditto.ConnectionFailed(g.id, err.Error())
		}
		g.live.logFailure(g.cfg.Now(), fmt.Sprintf("Operation %s failed due to %s", cmd.Type, de.Message))
		return errorReply(de, g.seq)
	}
	return nil
}

func isSudo(cmd *pb.Command) bool { return cmd.Headers[ditto.HeaderSudo] == "true" }

// --- mutating commands ---

func (g *grain) create(cmd *pb.Command) *pb.Reply {
	if g.conn != nil {
		return errorReply(ditto.ConnectionConflict(g.id), g.seq)
	}
	c, bad := commandConnection(cmd)
	if bad != nil {
		return bad
	}
	return g.createFrom(cmd, c, ditto.CreateConnection)
}

// createFrom persists connectionCreated for c and answers as createConnection.
func (g *grain) createFrom(cmd *pb.Command, c *model.Connection, respondAs string) *pb.Reply {
	if bad := g.validate(cmd, c); bad != nil {
		return bad
	}
	now := g.cfg.Now()
	c.Lifecycle = lifecycleActive
	c.Revision = g.seq + 1
	c.Created = ditto.FormatInstant(now)
	c.Modified = c.Created
	if err := g.persist(cmd, ditto.EventConnectionCreated, now, c, true); err != nil {
		return g.storeFailure("create", err)
	}
	if c.ConnectionStatus == "open" {
		g.live.enableLogs(now, g.cfg.Logs.LogDuration) // create with status open enables logging
		// Ditto replies 201 first and connects in the background; connecting
		// is asynchronous here, so the reply cannot wait for it.
		g.startClients(g.actx)
	}
	return reply(http.StatusCreated, response(respondAs, http.StatusCreated).raw("connection", c.JSON(false)).bytes(), g.seq)
}

func (g *grain) modify(cmd *pb.Command) *pb.Reply {
	c, bad := commandConnection(cmd)
	if bad != nil {
		return bad
	}
	if g.conn == nil {
		// Ditto turns a modify of an unknown id into a create (upsert).
		return g.createFrom(cmd, c, ditto.CreateConnection)
	}
	if c.ConnectionType != g.conn.ConnectionType && !isSudo(cmd) {
		return errorReply(ditto.ConfigurationInvalid(fmt.Sprintf(
			"ConnectionType <%s> of existing connection <%s> cannot be changed!", c.ConnectionType, g.id)), g.seq)
	}
	if bad := g.validate(cmd, c); bad != nil {
		return bad
	}
	now := g.cfg.Now()
	c.Lifecycle = lifecycleActive
	c.Revision = g.seq + 1
	c.Modified = ditto.FormatInstant(now)
	if c.Created == "" {
		// Ditto keeps _created only if the command carried it; we keep the
		// stored one (docs/COMPATIBILITY.md).
		c.Created = g.conn.Created
	}
	wasLive := g.running()
	if err := g.persist(cmd, ditto.EventConnectionModified, now, c, true); err != nil {
		return g.storeFailure("modify", err)
	}
	ok := g.simple(cmd, http.StatusNoContent)
	switch {
	case c.ConnectionStatus == "open" && g.hasFactory(c):
		// close the old clients, connect with the new configuration, then reply
		g.startClients(g.actx)
		return g.wait(waitConnected, ok, nil)
	case wasLive:
		g.stopClients()
		return g.wait(waitStopped, ok, nil)
	}
	return ok
}

func (g *grain) delete(cmd *pb.Command) *pb.Reply {
	if err := g.persist(cmd, ditto.EventConnectionDeleted, g.cfg.Now(), nil, false); err != nil {
		return g.storeFailure("delete", err)
	}
	ok := g.simple(cmd, http.StatusNoContent)
	if g.running() {
		// closed announcement, disconnect, stop; then reply
		g.stopClients()
		return g.wait(waitStopped, ok, g.live.disableLogs)
	}
	g.live.disableLogs() // deleting a connection disables its logging
	return ok
}

// setStatus persists connectionOpened/Closed; they change the desired status
// but, as in Ditto, not _revision or _modified inside the entity.
func (g *grain) setStatus(cmd *pb.Command, eventType, status string) *pb.Reply {
	next := *g.conn
	next.ConnectionStatus = status
	now := g.cfg.Now()
	if err := g.persist(cmd, eventType, now, &next, false); err != nil {
		return g.storeFailure(eventType, err)
	}
	return g.simple(cmd, http.StatusOK)
}

func (g *grain) open(cmd *pb.Command) *pb.Reply {
	if bad := g.validate(cmd, g.conn); bad != nil {
		return bad
	}
	g.live.enableLogs(g.cfg.Now(), g.cfg.Logs.LogDuration) // open enables logging
	r := g.setStatus(cmd, ditto.EventConnectionOpened, "open")
	if r.Status != http.StatusOK || !g.hasFactory(g.conn) {
		return r
	}
	if len(g.clients.current) == 0 {
		g.startClients(g.actx)
	}
	// reply once every client connected, or with the first failure (the
	// clients keep retrying: the desired status stays open)
	return g.wait(waitConnected, r, nil)
}

func (g *grain) close(cmd *pb.Command) *pb.Reply {
	r := g.setStatus(cmd, ditto.EventConnectionClosed, "closed")
	if r.Status != http.StatusOK {
		return r
	}
	if g.running() {
		// each client sends the closed announcement, then disconnects
		g.stopClients()
		return g.wait(waitStopped, r, nil)
	}
	g.live.clientsStopped(g.cfg.Now())
	return r
}

// test validates the connection, then connects a real client and
// disconnects it (types without a live client: checks that the endpoint
// accepts a TCP connection); nothing is persisted.
func (g *grain) test(cmd *pb.Command) *pb.Reply {
	if g.conn != nil {
		return reply(http.StatusConflict, response(cmd.Type, http.StatusConflict).
			set("connectionId", g.id).
			set("testResult", "Connection was already created - no test possible").bytes(), g.seq)
	}
	c, bad := commandConnection(cmd)
	if bad != nil {
		return bad
	}
	if bad := g.validate(cmd, c); bad != nil {
		return bad
	}
	if err := dataplane.Check(c, g.cfg.Mapping); err != nil {
		// as Ditto's test: the payload mappers must initialise
		return errorReply(ditto.New(http.StatusBadRequest, ditto.CodeMapperConfigInvalid, err.Error(),
			"Check the mapping definitions, payload mappings, placeholders and filters of the connection."), g.seq)
	}
	if factory, ok := g.cfg.Clients[c.ConnectionType]; ok {
		return g.testLive(g.actx, cmd, c, factory)
	}
	if addr := dialAddress(c); addr != "" {
		timeout := g.cfg.DialTimeout
		if cmd.DeadlineUnixNano > 0 {
			if left := time.Until(time.Unix(0, cmd.DeadlineUnixNano)); left < timeout {
				timeout = left
			}
		}
		conn, err := net.DialTimeout("tcp", addr, timeout)
		if err != nil {
			return errorReply(ditto.ConnectionFailed(g.id, fmt.Sprintf(
				"Could not establish a connection on '%s'. Make sure the endpoint is reachable and that no firewall prevents the connection.", addr)), g.seq)
		}
		_ = conn.Close()
	}
	return reply(http.StatusOK, response(cmd.Type, http.StatusOK).
		set("connectionId", g.id).
		set("testResult", "Success(successfully connected + initialized mapper)").bytes(), g.seq)
}

// dialAddress is the host:port a test connects to: the URI's, or for Kafka
// the first bootstrap server.
func dialAddress(c *model.Connection) string {
	if c.ConnectionType == "kafka" {
		if bs := c.SpecificConfig["bootstrapServers"]; bs != "" {
			for i := 0; i < len(bs); i++ {
				if bs[i] == ',' {
					return bs[:i]
				}
			}
			return bs
		}
	}
	u, err := url.Parse(c.URI)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Host
}

// --- queries ---

func (g *grain) retrieve(cmd *pb.Command) *pb.Reply {
	var body struct {
		SelectedFields *string `json:"selectedFields"`
	}
	if bytes.Contains(cmd.Payload, []byte(`"selectedFields"`)) {
		_ = json.Unmarshal(cmd.Payload, &body) // the dispatcher already checked the JSON
	}
	if g.connJSON == nil {
		g.connJSON = g.conn.JSON(false)
	}
	connJSON := g.connJSON
	if body.SelectedFields != nil && *body.SelectedFields != "" {
		sel, err := g.conn.Select(*body.SelectedFields)
		if err != nil {
			if de, ok := ditto.As(err); ok {
				return errorReply(de, g.seq)
			}
			return errorReply(ditto.JSONInvalid(err.Error()), g.seq)
		}
		connJSON = sel
	}
	return reply(http.StatusOK, response(cmd.Type, http.StatusOK).raw("connection", connJSON).bytes(), g.seq)
}

func (g *grain) tags(cmd *pb.Command) *pb.Reply {
	tags := g.conn.Tags
	if tags == nil {
		tags = []string{}
	}
	return reply(http.StatusOK, response(cmd.Type, http.StatusOK).set("connectionTags", tags).bytes(), g.seq)
}
