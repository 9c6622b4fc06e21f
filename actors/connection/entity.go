package connection

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// entity is one connection as its journal tells it: the pure half of the
// grain. It decides what a command means for the journal and applies the
// events it decided; it does no I/O and never sees an actor, a client or a
// clock (the caller passes now). Everything live (clients, logs, metrics,
// tests against a broker) is the supervisor's, which acts on a decision's
// action.
type entity struct {
	id   string
	seq  int64             // last persisted sequence number (= revision)
	conn *model.Connection // nil: never created, or deleted
	// connJSON caches conn.JSON(false): retrieve is the hot path and the
	// connection changes only through apply, which clears it.
	connJSON []byte
}

// event is one journal event of the entity.
type event struct {
	typ string // ditto.EventConnection…
	rev int64
	at  time.Time
	// conn is the connection that created and modified events carry; the
	// other events change the current one or remove it.
	conn *model.Connection
}

// after is the connection once ev is applied (nil: deleted).
func (e *entity) after(ev event) *model.Connection {
	switch ev.typ {
	case ditto.EventConnectionCreated, ditto.EventConnectionModified:
		return ev.conn
	case ditto.EventConnectionOpened, ditto.EventConnectionClosed:
		if e.conn == nil {
			return nil
		}
		// opened and closed change the desired status but, as in Ditto,
		// not _revision or _modified inside the entity
		next := *e.conn
		next.ConnectionStatus = string(client.StatusClosed)
		if ev.typ == ditto.EventConnectionOpened {
			next.ConnectionStatus = string(client.StatusOpen)
		}
		return &next
	case ditto.EventConnectionDeleted:
		return nil
	}
	return e.conn // empty events carry journal tags only
}

// apply moves the entity past ev.
func (e *entity) apply(ev event) {
	e.conn, e.seq, e.connJSON = e.after(ev), ev.rev, nil
}

// policy is what decisions need from outside the entity; both may do I/O
// (validation resolves host names), which the entity does not see.
type policy struct {
	validate     func(*model.Connection) error // Ditto's connection validator
	checkMapping func(*model.Connection) error // the payload mappers initialise
}

// action is what the supervisor does once a decision's events are
// persisted.
type action int

const (
	actNone           action = iota
	actCreated               // connect when the new connection is desired open
	actModified              // reconnect with the new configuration, or stop
	actDeleted               // stop the clients, then disable logging
	actOpened                // connect, answer once connected
	actClosed                // stop the clients, answer once stopped
	actTest                  // connect the candidate once (decision.conn)
	actStatus                // answer retrieveConnectionStatus
	actMetrics               // answer retrieveConnectionMetrics
	actResetMetrics          // reset the counters
	actEnableLogs            // enable logging
	actRetrieveLogs          // answer retrieveConnectionLogs
	actResetLogs             // drop the kept log entries
	actLoggingExpired        // disable logging
)

// decision is what a command means: either a refusal (err), or events to
// persist, the answer once they are persisted (nil: the supervisor answers)
// and what the live side does then.
type decision struct {
	err *ditto.Error
	// parseErr: err answers a command whose JSON could not be read; the
	// gateway wraps it as devops.responses:errorResponse, as Ditto does.
	parseErr bool
	// logFailure is written to the connection log (validation failures).
	logFailure string

	events []event
	reply  *pb.Reply
	action action
	// conn is the candidate of a test; every other action is about the
	// entity's connection once the events are applied.
	conn *model.Connection
}

func refuse(err *ditto.Error) decision { return decision{err: err} }

// decider decides one command type.
type decider struct {
	decide func(e *entity, cmd *pb.Command, p policy, now time.Time) decision
	// onMissing: it also decides for never-created or deleted ids (create,
	// modify as upsert, test, wake); otherwise those get 404.
	onMissing bool
}

// deciders maps Ditto's command types to the entity's decisions.
var deciders = map[string]decider{
	ditto.CreateConnection:           {decide: (*entity).create, onMissing: true},
	ditto.ModifyConnection:           {decide: (*entity).modify, onMissing: true},
	ditto.TestConnection:             {decide: (*entity).test, onMissing: true},
	ditto.RetrieveConnection:         {decide: (*entity).retrieve},
	ditto.DeleteConnection:           {decide: (*entity).delete},
	ditto.OpenConnection:             {decide: (*entity).open},
	ditto.CloseConnection:            {decide: (*entity).close},
	ditto.SudoRetrieveConnectionTags: {decide: (*entity).tags},
	ditto.RetrieveConnectionStatus:   {decide: live(actStatus, false)},
	ditto.RetrieveConnectionMetrics:  {decide: live(actMetrics, false)},
	ditto.ResetConnectionMetrics:     {decide: live(actResetMetrics, true)},
	ditto.EnableConnectionLogs:       {decide: live(actEnableLogs, true)},
	ditto.RetrieveConnectionLogs:     {decide: live(actRetrieveLogs, false)},
	ditto.ResetConnectionLogs:        {decide: live(actResetLogs, true)},
	ditto.LoggingExpired:             {decide: (*entity).loggingExpired},
	WakeType:                         {decide: (*entity).wake, onMissing: true},
}

// WakeType is dittoconn's internal command that only activates a grain (its
// recovery reopens a desired-open connection); it is never answered with
// content and never comes from the gateway.
const WakeType = "dittoconn.internal:wake"

// noAnswer is the reply that tells the asker no answer comes; a fresh one
// each time, since receivers own the replies they get.
func noAnswer() *pb.Reply { return &pb.Reply{Kind: pb.Reply_NO_ANSWER} }

// decide is the entity's answer to cmd at time now.
func (e *entity) decide(cmd *pb.Command, p policy, now time.Time) decision {
	d, ok := deciders[cmd.Type]
	if !ok {
		// e.g. checkConnectionLogsActive: only client actors handle it; the
		// persistence actor leaves it unhandled, which surfaces as 404.
		return refuse(ditto.ConnectionNotFound(e.id))
	}
	if e.conn == nil && !d.onMissing {
		return refuse(ditto.ConnectionNotFound(e.id))
	}
	return d.decide(e, cmd, p, now)
}

// live is a command the live side answers; simple ones are answered
// {type, status 200, connectionId} right away.
func live(a action, simple bool) func(*entity, *pb.Command, policy, time.Time) decision {
	return func(e *entity, cmd *pb.Command, _ policy, _ time.Time) decision {
		d := decision{action: a}
		if simple {
			d.reply = e.simple(cmd, http.StatusOK, e.seq)
		}
		return d
	}
}

func (e *entity) wake(*pb.Command, policy, time.Time) decision { return decision{reply: noAnswer()} }

// loggingExpired is internal and, as in Ditto, never answered.
func (e *entity) loggingExpired(*pb.Command, policy, time.Time) decision {
	return decision{reply: noAnswer(), action: actLoggingExpired}
}

// --- mutating commands ---

func (e *entity) create(cmd *pb.Command, p policy, now time.Time) decision {
	if e.conn != nil {
		return refuse(ditto.ConnectionConflict(e.id))
	}
	c, bad := commandConnection(cmd)
	if bad != nil {
		return *bad
	}
	return e.createFrom(cmd, c, p, now)
}

// createFrom decides connectionCreated for c, answered as createConnection.
func (e *entity) createFrom(cmd *pb.Command, c *model.Connection, p policy, now time.Time) decision {
	if bad := e.validate(cmd, c, p); bad != nil {
		return *bad
	}
	rev := e.seq + 1
	c.Lifecycle = model.LifecycleActive
	c.Revision = rev
	c.Created = ditto.FormatInstant(now)
	c.Modified = c.Created
	// Ditto replies 201 first and connects in the background.
	body := connectionAnswer(ditto.CreateConnection, http.StatusCreated, c.JSON(false))
	return decision{
		events: []event{{typ: ditto.EventConnectionCreated, rev: rev, at: now, conn: c}},
		reply:  respond(http.StatusCreated, body, rev),
		action: actCreated,
	}
}

func (e *entity) modify(cmd *pb.Command, p policy, now time.Time) decision {
	c, bad := commandConnection(cmd)
	if bad != nil {
		return *bad
	}
	if e.conn == nil {
		// Ditto turns a modify of an unknown id into a create (upsert).
		return e.createFrom(cmd, c, p, now)
	}
	if c.ConnectionType != e.conn.ConnectionType && !isSudo(cmd) {
		return refuse(ditto.ConfigurationInvalid(fmt.Sprintf(
			"ConnectionType <%s> of existing connection <%s> cannot be changed!", c.ConnectionType, e.id)))
	}
	if bad := e.validate(cmd, c, p); bad != nil {
		return *bad
	}
	rev := e.seq + 1
	c.Lifecycle = model.LifecycleActive
	c.Revision = rev
	c.Modified = ditto.FormatInstant(now)
	if c.Created == "" {
		// Ditto keeps _created only if the command carried it; we keep the
		// stored one (docs/COMPATIBILITY.md).
		c.Created = e.conn.Created
	}
	return decision{
		events: []event{{typ: ditto.EventConnectionModified, rev: rev, at: now, conn: c}},
		reply:  e.simple(cmd, http.StatusNoContent, rev),
		action: actModified,
	}
}

func (e *entity) delete(cmd *pb.Command, _ policy, now time.Time) decision {
	rev := e.seq + 1
	return decision{
		events: []event{{typ: ditto.EventConnectionDeleted, rev: rev, at: now}},
		reply:  e.simple(cmd, http.StatusNoContent, rev),
		action: actDeleted,
	}
}

func (e *entity) open(cmd *pb.Command, p policy, now time.Time) decision {
	if bad := e.validate(cmd, e.conn, p); bad != nil {
		return *bad
	}
	return e.setStatus(cmd, ditto.EventConnectionOpened, actOpened, now)
}

func (e *entity) close(cmd *pb.Command, _ policy, now time.Time) decision {
	return e.setStatus(cmd, ditto.EventConnectionClosed, actClosed, now)
}

func (e *entity) setStatus(cmd *pb.Command, typ string, a action, now time.Time) decision {
	rev := e.seq + 1
	ev := event{typ: typ, rev: rev, at: now}
	return decision{events: []event{ev}, reply: e.simple(cmd, http.StatusOK, rev), action: a}
}

// test validates the candidate; the supervisor then connects it once.
// Nothing is persisted.
func (e *entity) test(cmd *pb.Command, p policy, _ time.Time) decision {
	if e.conn != nil {
		return decision{reply: respond(http.StatusConflict, testAnswer(cmd.Type, http.StatusConflict,
			e.id, "Connection was already created - no test possible"), e.seq)}
	}
	c, bad := commandConnection(cmd)
	if bad != nil {
		return *bad
	}
	if bad := e.validate(cmd, c, p); bad != nil {
		return *bad
	}
	if err := p.checkMapping(c); err != nil {
		// as Ditto's test: the payload mappers must initialise
		return refuse(ditto.New(http.StatusBadRequest, ditto.CodeMapperConfigInvalid, err.Error(),
			"Check the mapping definitions, payload mappings, placeholders and filters of the connection."))
	}
	return decision{action: actTest, conn: c}
}

// validate runs Ditto's connection validator; failures are also written to
// the connection log, as Ditto does.
func (e *entity) validate(cmd *pb.Command, c *model.Connection, p policy) *decision {
	err := p.validate(c)
	if err == nil {
		return nil
	}
	de, ok := ditto.As(err)
	if !ok {
		de = ditto.ConnectionFailed(e.id, err.Error())
	}
	return &decision{err: de, logFailure: fmt.Sprintf("Operation %s failed due to %s", cmd.Type, de.Message)}
}

// commandConnection parses the "connection" of create/modify/test.
func commandConnection(cmd *pb.Command) (*model.Connection, *decision) {
	parseErr := func(err *ditto.Error) *decision { return &decision{err: err, parseErr: true} }
	var body struct {
		Connection json.RawMessage `json:"connection"`
	}
	if err := json.Unmarshal(cmd.Payload, &body); err != nil {
		return nil, parseErr(ditto.JSONInvalid(err.Error()))
	}
	if len(body.Connection) == 0 || string(body.Connection) == "null" {
		return nil, parseErr(ditto.JSONFieldMissing("/connection"))
	}
	c, err := model.ParseCommand(body.Connection)
	if err != nil {
		if de, ok := ditto.As(err); ok {
			return nil, parseErr(de)
		}
		return nil, parseErr(ditto.JSONInvalid(err.Error()))
	}
	return c, nil
}

func isSudo(cmd *pb.Command) bool { return cmd.Headers[ditto.HeaderSudo] == "true" }

// --- queries ---

func (e *entity) retrieve(cmd *pb.Command, _ policy, _ time.Time) decision {
	var body struct {
		SelectedFields *string `json:"selectedFields"`
	}
	if bytes.Contains(cmd.Payload, []byte(`"selectedFields"`)) {
		_ = json.Unmarshal(cmd.Payload, &body) // the dispatcher already checked the JSON
	}
	if e.connJSON == nil {
		e.connJSON = e.conn.JSON(false)
	}
	connJSON := e.connJSON
	if body.SelectedFields != nil && *body.SelectedFields != "" {
		sel, err := e.conn.Select(*body.SelectedFields)
		if err != nil {
			if de, ok := ditto.As(err); ok {
				return refuse(de)
			}
			return refuse(ditto.JSONInvalid(err.Error()))
		}
		connJSON = sel
	}
	return decision{reply: respond(http.StatusOK, connectionAnswer(cmd.Type, http.StatusOK, connJSON), e.seq)}
}

func (e *entity) tags(cmd *pb.Command, _ policy, _ time.Time) decision {
	tags := make([]any, len(e.conn.Tags))
	for i, t := range e.conn.Tags {
		tags[i] = str(t)
	}
	body := answer(cmd.Type, http.StatusOK, 1)
	body.Set("connectionTags", tags)
	return decision{reply: respond(http.StatusOK, body, e.seq)}
}

// simple is {type, status, connectionId} at revision rev.
func (e *entity) simple(cmd *pb.Command, status int, rev int64) *pb.Reply {
	return respond(status, withID(cmd.Type, status, e.id, 0), rev)
}
