package connection

import (
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/persistence"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

var testNow = time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)

const testID = "c1"

// connJSON is a createConnection's connection of type typ and status.
func connJSON(typ, status string) string {
	return `{"id":"` + testID + `","connectionType":"` + typ + `","connectionStatus":"` + status +
		`","uri":"tcp://broker:1883","sources":[],"targets":[{"address":"out","qos":1,"topics":["_/_/things/twin/events"],"authorizationContext":["a:b"]}],"tags":["prod"]}`
}

func withConnection(c string) string { return `{"connection":` + c + `}` }

// existing is an entity at revision 3 whose connection has status.
func existing(t *testing.T, status string) *entity {
	t.Helper()
	c, err := model.ParseCommand([]byte(connJSON(model.TypeMQTT, status)))
	if err != nil {
		t.Fatal(err)
	}
	c.Lifecycle, c.Revision, c.Created, c.Modified = model.LifecycleActive, 1, "2026-05-01T00:00:00Z", "2026-05-01T00:00:00Z"
	return &entity{id: testID, seq: 3, conn: c}
}

func missing(*testing.T) *entity { return &entity{id: testID, seq: 4} } // deleted at revision 4

var (
	valid        = policy{validate: func(*model.Connection) error { return nil }, checkMapping: func(*model.Connection) error { return nil }}
	errBlocked   = ditto.ConfigurationInvalid("the host is blocked")
	invalidConn  = policy{validate: func(*model.Connection) error { return errBlocked }, checkMapping: valid.checkMapping}
	brokenMapper = policy{validate: valid.validate, checkMapping: func(*model.Connection) error { return errors.New("no such mapper") }}
	plainFailure = policy{validate: func(*model.Connection) error { return errors.New("boom") }, checkMapping: valid.checkMapping}
)

// TestDecide holds every command type of the decider table to its Ditto
// answer: the error (code, status, parse error or not) or the events, the
// immediate answer and what the supervisor does next.
func TestDecide(t *testing.T) {
	type want struct {
		code       string   // Ditto error code of a refusal
		status     int      // status of the refusal or of the immediate answer; 0: none now
		parseErr   bool     // the refusal is a PARSE_ERROR reply
		events     []string // event types, in order
		action     action
		noAnswer   bool   // the answer is NO_ANSWER
		logFailure string // prefix of the connection log entry
		fields     map[string]any
	}
	sudo := map[string]string{ditto.HeaderSudo: "true"}
	for _, tc := range []struct {
		name    string
		entity  func(*testing.T) *entity
		cmd     string
		payload string
		headers map[string]string
		pol     policy
		want    want
	}{
		// create
		{name: "create", entity: missing, cmd: ditto.CreateConnection, payload: withConnection(connJSON("mqtt", "closed")),
			want: want{status: 201, events: []string{ditto.EventConnectionCreated}, action: actCreated}},
		{name: "create existing", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.CreateConnection,
			payload: withConnection(connJSON("mqtt", "closed")),
			want:    want{code: ditto.CodeConnectionConflict, status: 409}},
		{name: "create bad JSON", entity: missing, cmd: ditto.CreateConnection, payload: `{"connection":`,
			want: want{code: ditto.CodeJSONInvalid, status: 400, parseErr: true}},
		{name: "create without connection", entity: missing, cmd: ditto.CreateConnection, payload: `{}`,
			want: want{code: ditto.CodeJSONFieldMissing, status: 400, parseErr: true}},
		{name: "create null connection", entity: missing, cmd: ditto.CreateConnection, payload: `{"connection":null}`,
			want: want{code: ditto.CodeJSONFieldMissing, status: 400, parseErr: true}},
		{name: "create bad status", entity: missing, cmd: ditto.CreateConnection, payload: withConnection(connJSON("mqtt", "half-open")),
			want: want{code: ditto.CodeJSONInvalid, status: 400, parseErr: true}},
		{name: "create invalid", entity: missing, cmd: ditto.CreateConnection, payload: withConnection(connJSON("mqtt", "closed")),
			pol:  invalidConn,
			want: want{code: ditto.CodeConfigurationInvalid, status: 400, logFailure: "Operation connectivity.commands:createConnection failed due to the host is blocked"}},
		{name: "create, validator fails without a Ditto error", entity: missing, cmd: ditto.CreateConnection,
			payload: withConnection(connJSON("mqtt", "closed")), pol: plainFailure,
			want: want{code: ditto.CodeConnectionFailed, status: 504, logFailure: "Operation connectivity.commands:createConnection failed due to "}},

		// modify
		{name: "modify", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ModifyConnection,
			payload: withConnection(connJSON("mqtt", "open")),
			want:    want{status: 204, events: []string{ditto.EventConnectionModified}, action: actModified, fields: map[string]any{"connectionId": testID}}},
		{name: "modify missing creates", entity: missing, cmd: ditto.ModifyConnection, payload: withConnection(connJSON("mqtt", "closed")),
			want: want{status: 201, events: []string{ditto.EventConnectionCreated}, action: actCreated,
				fields: map[string]any{"type": "connectivity.responses:createConnection"}}},
		{name: "modify type", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ModifyConnection,
			payload: withConnection(connJSON("amqp-091", "closed")),
			want:    want{code: ditto.CodeConfigurationInvalid, status: 400}},
		{name: "modify type as sudo", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ModifyConnection,
			payload: withConnection(connJSON("amqp-091", "closed")), headers: sudo,
			want: want{status: 204, events: []string{ditto.EventConnectionModified}, action: actModified}},
		{name: "modify invalid", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ModifyConnection,
			payload: withConnection(connJSON("mqtt", "closed")), pol: invalidConn,
			want: want{code: ditto.CodeConfigurationInvalid, status: 400, logFailure: "Operation connectivity.commands:modifyConnection failed"}},
		{name: "modify bad JSON", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ModifyConnection,
			payload: `[`, want: want{code: ditto.CodeJSONInvalid, status: 400, parseErr: true}},

		// delete, open, close
		{name: "delete", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.DeleteConnection,
			want: want{status: 204, events: []string{ditto.EventConnectionDeleted}, action: actDeleted}},
		{name: "delete missing", entity: missing, cmd: ditto.DeleteConnection,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "open", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.OpenConnection,
			want: want{status: 200, events: []string{ditto.EventConnectionOpened}, action: actOpened}},
		{name: "open invalid", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.OpenConnection,
			pol:  invalidConn,
			want: want{code: ditto.CodeConfigurationInvalid, status: 400, logFailure: "Operation connectivity.commands:openConnection failed"}},
		{name: "open missing", entity: missing, cmd: ditto.OpenConnection,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "close", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.CloseConnection,
			want: want{status: 200, events: []string{ditto.EventConnectionClosed}, action: actClosed}},
		{name: "close missing", entity: missing, cmd: ditto.CloseConnection,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},

		// test
		{name: "test", entity: missing, cmd: ditto.TestConnection, payload: withConnection(connJSON("mqtt", "open")),
			want: want{action: actTest}},
		{name: "test existing", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.TestConnection,
			payload: withConnection(connJSON("mqtt", "open")),
			want: want{status: 409, fields: map[string]any{"connectionId": testID,
				"testResult": "Connection was already created - no test possible"}}},
		{name: "test invalid", entity: missing, cmd: ditto.TestConnection, payload: withConnection(connJSON("mqtt", "open")),
			pol:  invalidConn,
			want: want{code: ditto.CodeConfigurationInvalid, status: 400, logFailure: "Operation connectivity.commands:testConnection failed"}},
		{name: "test mapper", entity: missing, cmd: ditto.TestConnection, payload: withConnection(connJSON("mqtt", "open")),
			pol:  brokenMapper,
			want: want{code: ditto.CodeMapperConfigInvalid, status: 400}},
		{name: "test without connection", entity: missing, cmd: ditto.TestConnection, payload: `{}`,
			want: want{code: ditto.CodeJSONFieldMissing, status: 400, parseErr: true}},

		// queries
		{name: "retrieve", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.RetrieveConnection,
			want: want{status: 200}},
		{name: "retrieve selected", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.RetrieveConnection,
			payload: `{"selectedFields":"id,connectionStatus"}`,
			want:    want{status: 200, fields: map[string]any{"connection": map[string]any{"id": testID, "connectionStatus": "open"}}}},
		{name: "retrieve missing", entity: missing, cmd: ditto.RetrieveConnection,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "tags", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.SudoRetrieveConnectionTags,
			want: want{status: 200, fields: map[string]any{"type": "connectivity.sudo.responses:sudoRetrieveConnectionTags",
				"connectionTags": []any{"prod"}}}},
		{name: "tags missing", entity: missing, cmd: ditto.SudoRetrieveConnectionTags,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},

		// the live side's commands
		{name: "status", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.RetrieveConnectionStatus,
			want: want{action: actStatus}},
		{name: "status missing", entity: missing, cmd: ditto.RetrieveConnectionStatus,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "metrics", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.RetrieveConnectionMetrics,
			want: want{action: actMetrics}},
		{name: "metrics missing", entity: missing, cmd: ditto.RetrieveConnectionMetrics,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "reset metrics", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: ditto.ResetConnectionMetrics,
			want: want{status: 200, action: actResetMetrics, fields: map[string]any{"connectionId": testID}}},
		{name: "reset metrics missing", entity: missing, cmd: ditto.ResetConnectionMetrics,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "enable logs", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.EnableConnectionLogs,
			want: want{status: 200, action: actEnableLogs, fields: map[string]any{"connectionId": testID}}},
		{name: "enable logs missing", entity: missing, cmd: ditto.EnableConnectionLogs,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "retrieve logs", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.RetrieveConnectionLogs,
			want: want{action: actRetrieveLogs}},
		{name: "retrieve logs missing", entity: missing, cmd: ditto.RetrieveConnectionLogs,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "reset logs", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.ResetConnectionLogs,
			want: want{status: 200, action: actResetLogs, fields: map[string]any{"connectionId": testID}}},
		{name: "reset logs missing", entity: missing, cmd: ditto.ResetConnectionLogs,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},
		{name: "logging expired", entity: func(t *testing.T) *entity { return existing(t, "closed") }, cmd: ditto.LoggingExpired,
			want: want{noAnswer: true, action: actLoggingExpired}},
		{name: "logging expired missing", entity: missing, cmd: ditto.LoggingExpired,
			want: want{code: ditto.CodeConnectionNotFound, status: 404}},

		// internal and unknown
		{name: "wake", entity: func(t *testing.T) *entity { return existing(t, "open") }, cmd: WakeType,
			want: want{noAnswer: true}},
		{name: "wake missing", entity: missing, cmd: WakeType, want: want{noAnswer: true}},
		{name: "only client actors answer", entity: func(t *testing.T) *entity { return existing(t, "open") },
			cmd: ditto.CheckConnectionLogsActive, want: want{code: ditto.CodeConnectionNotFound, status: 404}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.entity(t)
			before := *e
			pol := tc.pol
			if pol.validate == nil {
				pol = valid
			}
			cmd := &pb.Command{Type: tc.cmd, EntityId: testID, Payload: []byte(tc.payload), Headers: tc.headers}
			d := e.decide(cmd, pol, testNow)
			w := tc.want

			if e.seq != before.seq || e.conn != before.conn {
				t.Fatalf("deciding changed the entity: seq %d → %d", before.seq, e.seq)
			}
			if w.code != "" {
				if d.err == nil || d.err.Code != w.code || d.err.Status != w.status || d.parseErr != w.parseErr {
					t.Fatalf("refusal %+v (parse error %v), want %s %d (parse error %v)", d.err, d.parseErr, w.code, w.status, w.parseErr)
				}
				if len(d.events) != 0 || d.reply != nil || d.action != actNone {
					t.Errorf("a refusal also decided events %v, reply %v, action %d", d.events, d.reply, d.action)
				}
			} else if d.err != nil {
				t.Fatalf("refused with %v", d.err)
			}
			if !strings.HasPrefix(d.logFailure, w.logFailure) || (w.logFailure == "") != (d.logFailure == "") {
				t.Errorf("connection log %q, want %q…", d.logFailure, w.logFailure)
			}
			var types []string
			for i, ev := range d.events {
				types = append(types, ev.typ)
				if ev.rev != before.seq+int64(i)+1 || !ev.at.Equal(testNow) {
					t.Errorf("event %s at revision %d, time %v; want %d, %v", ev.typ, ev.rev, ev.at, before.seq+int64(i)+1, testNow)
				}
				carries := ev.typ == ditto.EventConnectionCreated || ev.typ == ditto.EventConnectionModified
				if carries != (ev.conn != nil) {
					t.Errorf("event %s carries connection %v", ev.typ, ev.conn != nil)
				}
			}
			if !reflect.DeepEqual(types, w.events) {
				t.Errorf("events %v, want %v", types, w.events)
			}
			if d.action != w.action {
				t.Errorf("action %d, want %d", d.action, w.action)
			}
			if (d.action == actTest) != (d.conn != nil) {
				t.Errorf("action %d with candidate %v", d.action, d.conn)
			}
			switch {
			case w.noAnswer:
				if d.reply == nil || d.reply.Kind != pb.Reply_NO_ANSWER {
					t.Errorf("reply %v, want no answer", d.reply)
				}
			case w.code == "" && w.status == 0:
				if d.reply != nil {
					t.Errorf("answered %d at once; the supervisor answers", d.reply.Status)
				}
			case w.code == "":
				checkReply(t, d.reply, cmd.Type, w.status, before.seq+int64(len(d.events)), w.fields)
			}
		})
	}
}

// checkReply asserts a response's status, revision header, type, status
// field and the given fields.
func checkReply(t *testing.T, r *pb.Reply, cmdType string, status int, rev int64, fields map[string]any) {
	t.Helper()
	if r == nil || r.Kind != pb.Reply_RESPONSE || int(r.Status) != status {
		t.Fatalf("reply %+v, want a %d response", r, status)
	}
	if got := r.Headers[ditto.HeaderEntityRevision]; got != strconv.FormatInt(rev, 10) {
		t.Errorf("revision header %q, want %d", got, rev)
	}
	var body map[string]any
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	want := map[string]any{"type": ditto.ResponseType(cmdType), "status": float64(status)}
	for k, v := range fields {
		want[k] = v
	}
	for k, v := range want {
		if !reflect.DeepEqual(body[k], v) {
			t.Errorf("%s = %v, want %v (payload %s)", k, body[k], v, r.Payload)
		}
	}
	if !strings.HasPrefix(string(r.Payload), `{"type":`) {
		t.Errorf("payload does not start with type: %s", r.Payload)
	}
}

// A decided create stamps the connection; applying the events yields the
// state the journal will hold.
func TestCreateThenApply(t *testing.T) {
	e := missing(t)
	cmd := &pb.Command{Type: ditto.CreateConnection, Payload: []byte(withConnection(connJSON("mqtt", "open")))}
	d := e.decide(cmd, valid, testNow)
	c := d.events[0].conn
	if c.Revision != 5 || c.Created != ditto.FormatInstant(testNow) || c.Modified != c.Created || c.Lifecycle != model.LifecycleActive {
		t.Fatalf("created connection revision %d, created %q, modified %q, lifecycle %q", c.Revision, c.Created, c.Modified, c.Lifecycle)
	}
	// the answer shows the connection without its hidden fields
	var body struct {
		Connection struct {
			ID       string `json:"id"`
			Revision int64  `json:"_revision"`
		} `json:"connection"`
	}
	if err := json.Unmarshal(d.reply.Payload, &body); err != nil || body.Connection.ID != testID || body.Connection.Revision != 0 {
		t.Errorf("201 carries %s (%v)", d.reply.Payload, err)
	}
	e.apply(d.events[0])
	if e.seq != 5 || e.conn != c {
		t.Fatalf("after apply: seq %d, conn %p, want 5, %p", e.seq, e.conn, c)
	}

	// modify keeps the stored _created and moves _modified
	later := testNow.Add(time.Hour)
	d = e.decide(&pb.Command{Type: ditto.ModifyConnection, Payload: []byte(withConnection(connJSON("mqtt", "closed")))}, valid, later)
	m := d.events[0].conn
	if m.Created != c.Created || m.Modified != ditto.FormatInstant(later) || m.Revision != 6 {
		t.Errorf("modified: created %q, modified %q, revision %d", m.Created, m.Modified, m.Revision)
	}
}

// Opened and closed change the desired status only, on a copy: the
// connection a reader holds does not change under it.
func TestApplySequence(t *testing.T) {
	e := existing(t, "closed")
	held := e.conn
	e.connJSON = []byte("cached")
	steps := []struct {
		ev     event
		status string // "": deleted
	}{
		{event{typ: ditto.EventConnectionOpened, rev: 4}, "open"},
		{event{typ: ditto.EventEmpty, rev: 5}, "open"},
		{event{typ: ditto.EventConnectionClosed, rev: 6}, "closed"},
		{event{typ: ditto.EventConnectionDeleted, rev: 7}, ""},
		{event{typ: ditto.EventConnectionOpened, rev: 8}, ""}, // nothing to open
		{event{typ: ditto.EventConnectionCreated, rev: 9, conn: held}, "closed"},
	}
	for _, s := range steps {
		e.apply(s.ev)
		got := ""
		if e.conn != nil {
			got = e.conn.ConnectionStatus
		}
		if got != s.status || e.seq != s.ev.rev || e.connJSON != nil {
			t.Fatalf("after %s: status %q, seq %d, cache %q; want %q, %d, none", s.ev.typ, got, e.seq, e.connJSON, s.status, s.ev.rev)
		}
	}
	if held.ConnectionStatus != "closed" || held.Revision != 1 {
		t.Errorf("the held connection changed: %s, revision %d", held.ConnectionStatus, held.Revision)
	}
}

// What encodeEvent writes, decodeEvent reads back as the same event; the
// journal tags follow the desired status.
func TestEventRoundTrip(t *testing.T) {
	e := existing(t, "open")
	for _, ev := range []event{
		{typ: ditto.EventConnectionModified, rev: 4, at: testNow, conn: e.conn},
		{typ: ditto.EventConnectionClosed, rev: 4, at: testNow},
		{typ: ditto.EventConnectionOpened, rev: 4, at: testNow},
		{typ: ditto.EventConnectionDeleted, rev: 4, at: testNow},
	} {
		next := e.after(ev)
		stored := encodeEvent(PIDPrefix+testID, testID, "w", ev, next)
		if stored.PID != "connection:c1" || stored.Seq != 4 || stored.Manifest != ev.typ || stored.Writer != "w" {
			t.Errorf("%s stored as %+v", ev.typ, stored)
		}
		wantTags := []string(nil)
		switch {
		case next == nil:
		case next.ConnectionStatus == "open":
			wantTags = []string{"prod", AlwaysAliveTag, "priority-0"}
		default:
			wantTags = []string{"prod"}
		}
		if !reflect.DeepEqual(stored.Tags, wantTags) {
			t.Errorf("%s tags %v, want %v", ev.typ, stored.Tags, wantTags)
		}
		wantPrefix := `{"type":"` + ev.typ + `","_timestamp":"` + ditto.FormatInstant(testNow) + `","revision":4,"connectionId":"c1"`
		if !strings.HasPrefix(string(stored.Payload), wantPrefix) || !strings.HasSuffix(string(stored.Payload), `"__hh":{}}`) {
			t.Errorf("payload %s", stored.Payload)
		}
		back, err := decodeEvent(stored)
		if err != nil {
			t.Fatalf("%s: %v", ev.typ, err)
		}
		if back.typ != ev.typ || back.rev != ev.rev || (back.conn == nil) != (ev.conn == nil) {
			t.Errorf("read back %+v, wrote %+v", back, ev)
		}
		if back.conn != nil && string(back.conn.JSON(true)) != string(ev.conn.JSON(true)) {
			t.Errorf("connection read back as %s, wrote %s", back.conn.JSON(true), ev.conn.JSON(true))
		}
	}
	for _, bad := range []persistence.Event{
		{Seq: 1, Payload: []byte(`{"type":"connectivity.events:connectionCreated"}`)},
		{Seq: 1, Payload: []byte(`{"type":"connectivity.events:somethingElse"}`)},
		{Seq: 1, Payload: []byte(`not json`)},
	} {
		if _, err := decodeEvent(bad); err == nil {
			t.Errorf("%s read without error", bad.Payload)
		}
	}
	// the manifest stands in for a missing type
	if ev, err := decodeEvent(persistence.Event{Seq: 2, Manifest: ditto.EventConnectionOpened, Payload: []byte(`{}`)}); err != nil || ev.typ != ditto.EventConnectionOpened {
		t.Errorf("manifest fallback: %+v, %v", ev, err)
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	e := existing(t, "open")
	c, err := decodeSnapshot(encodeSnapshot(e.conn))
	if err != nil || c == nil || string(c.JSON(true)) != string(e.conn.JSON(true)) {
		t.Fatalf("snapshot read back as %v, %v", c, err)
	}
	if c, err := decodeSnapshot(encodeSnapshot(nil)); err != nil || c != nil {
		t.Errorf("deleted snapshot read back as %v, %v", c, err)
	}
	if string(encodeSnapshot(nil)) != `{"__lifecycle":"DELETED"}` {
		t.Errorf("deleted snapshot %s", encodeSnapshot(nil))
	}
}

// Every command type the grain knows is decided by the table, and the
// table's 404 rule is the one Ditto's persistence actor applies.
func TestDeciderTableCoversCommands(t *testing.T) {
	for _, typ := range []string{
		ditto.CreateConnection, ditto.ModifyConnection, ditto.RetrieveConnection, ditto.DeleteConnection,
		ditto.OpenConnection, ditto.CloseConnection, ditto.TestConnection, ditto.RetrieveConnectionStatus,
		ditto.RetrieveConnectionMetrics, ditto.ResetConnectionMetrics, ditto.EnableConnectionLogs,
		ditto.RetrieveConnectionLogs, ditto.ResetConnectionLogs, ditto.LoggingExpired,
		ditto.SudoRetrieveConnectionTags, WakeType,
	} {
		if _, ok := deciders[typ]; !ok {
			t.Errorf("%s has no decider", typ)
		}
	}
	if len(deciders) != 16 {
		t.Errorf("%d deciders: a new one needs a case in TestDecide", len(deciders))
	}
}
