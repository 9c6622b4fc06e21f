package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// seedEnvelope is the seed document's envelope for a command: aggregate and
// is-group-topic false, ditto-sudo true where the seed has it.
func seedEnvelope(target string, command map[string]any, sudo bool) map[string]any {
	h := map[string]any{}
	if sudo {
		h["ditto-sudo"] = true
	}
	return kit.Envelope(target, command, h)
}

// TestPiggybackLifecycle walks one connection through every management
// command over HTTP, asserting Ditto's exact answers, on both engines.
func TestPiggybackLifecycle(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			n := kit.Start(t, eng.Open(t)(), kit.Options{})
			id := "mqtt-life-1"
			conn := blackbox.MQTTConnection(id, "closed", "fleet-a")

			// create → 201 with the connection, no connectionId
			st, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", conn), false))
			if st != http.StatusOK {
				t.Fatalf("create: HTTP %d %s", st, body)
			}
			m := blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:createConnection", "type")
			blackbox.WantField(t, m, 201, "status")
			blackbox.WantField(t, m, nil, "connectionId")
			blackbox.WantField(t, m, id, "connection", "id")
			blackbox.WantField(t, m, "closed", "connection", "connectionStatus")
			blackbox.WantField(t, m, []string{"fleet-a"}, "connection", "tags")
			blackbox.WantField(t, m, nil, "connection", "_revision")

			// create again → 409
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", conn), false))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, 409, "status")
			blackbox.WantField(t, m, ditto.CodeConnectionConflict, "error")

			// retrieve → 200 with connection; hidden fields only when selected
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:retrieveConnection", "type")
			blackbox.WantField(t, m, 200, "status")
			blackbox.WantField(t, m, "demo "+id, "connection", "name")
			blackbox.WantField(t, m, nil, "connection", "_revision")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "id,_revision"), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, map[string]any{"id": id, "_revision": 1}, "connection")

			// tags
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.SudoRetrieveConnectionTags, "connectionId", id), false))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.sudo.responses:sudoRetrieveConnectionTags", "type")
			blackbox.WantField(t, m, []string{"fleet-a"}, "connectionTags")

			// modify → 204 with connectionId
			conn["name"] = "renamed"
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.ModifyConnection, "connection", conn), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:modifyConnection", "type")
			blackbox.WantField(t, m, 204, "status")
			blackbox.WantField(t, m, id, "connectionId")

			// open / close → 200
			for _, c := range []string{ditto.OpenConnection, ditto.CloseConnection} {
				_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(c, "connectionId", id), true))
				m = blackbox.Decode(t, body)
				blackbox.WantField(t, m, ditto.ResponseType(c), "type")
				blackbox.WantField(t, m, 200, "status")
				blackbox.WantField(t, m, id, "connectionId")
			}

			// status of a closed connection
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:retrieveConnectionStatus", "type")
			blackbox.WantField(t, m, "closed", "connectionStatus")
			blackbox.WantField(t, m, "closed", "liveStatus")
			blackbox.WantField(t, m, "unknown", "recoveryStatus")
			cs, _ := m["clientStatus"].([]any)
			if len(cs) != 1 {
				t.Fatalf("clientStatus = %v", m["clientStatus"])
			}
			entry := cs[0].(map[string]any)
			blackbox.WantField(t, entry, "client", "type")
			blackbox.WantField(t, entry, kit.Instance, "client")
			blackbox.WantField(t, entry, "[DISCONNECTED] connection is closed", "statusDetails")

			// metrics with no client running
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnectionMetrics, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, map[string]any{"inbound": nil, "outbound": nil}, "connectionMetrics")
			blackbox.WantField(t, m, false, "containsFailures")
			blackbox.WantField(t, m, map[string]any{"addressMetrics": nil}, "sourceMetrics")
			blackbox.WantField(t, m, map[string]any{"addressMetrics": nil}, "targetMetrics")

			for _, c := range []string{ditto.ResetConnectionMetrics, ditto.EnableConnectionLogs, ditto.ResetConnectionLogs} {
				_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(c, "connectionId", id), true))
				m = blackbox.Decode(t, body)
				blackbox.WantField(t, m, ditto.ResponseType(c), "type")
				blackbox.WantField(t, m, 200, "status")
				blackbox.WantField(t, m, id, "connectionId")
			}

			// logs: enabled by the enable above, reset left one entry
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:retrieveConnectionLogs", "type")
			if m["enabledSince"] == nil || m["enabledUntil"] == nil {
				t.Errorf("logging should be enabled: %s", body)
			}
			logs, _ := m["connectionLogs"].([]any)
			if len(logs) != 1 || blackbox.Field(logs[0].(map[string]any), "message") != "Successfully reset the logs." {
				t.Errorf("connectionLogs = %v", m["connectionLogs"])
			}

			// id listing
			_, body = n.Piggyback(t, seedEnvelope(blackbox.IDsPath, blackbox.Cmd(ditto.RetrieveAllConnectionIDs), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:retrieveAllConnectionIds", "type")
			blackbox.WantField(t, m, []string{id}, "connectionIds")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.IDsPath, blackbox.Cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "fleet-a"), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.sudo.responses:sudoRetrieveConnectionIdsByTag", "type")
			blackbox.WantField(t, m, []string{id}, "connectionIds")

			// test on an existing id → 409 testConnection response
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.TestConnection, "connection", conn), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:testConnection", "type")
			blackbox.WantField(t, m, 409, "status")
			blackbox.WantField(t, m, "Connection was already created - no test possible", "testResult")

			// delete → 204, then 404 for everything but create/test
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, "connectivity.responses:deleteConnection", "type")
			blackbox.WantField(t, m, 204, "status")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id), true))
			m = blackbox.Decode(t, body)
			blackbox.WantField(t, m, 404, "status")
			blackbox.WantField(t, m, ditto.CodeConnectionNotFound, "error")
			blackbox.WantField(t, m, "The Connection with ID '"+id+"' could not be found or requester had insufficient permissions to access it.", "message")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.IDsPath, blackbox.Cmd(ditto.RetrieveAllConnectionIDs), true))
			blackbox.WantField(t, blackbox.Decode(t, body), []string{}, "connectionIds")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.IDsPath, blackbox.Cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "fleet-a"), true))
			blackbox.WantField(t, blackbox.Decode(t, body), []string{}, "connectionIds")

			// create after delete continues the revision
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", conn), false))
			blackbox.WantField(t, blackbox.Decode(t, body), 201, "status")
			_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "_revision"), true))
			blackbox.WantField(t, blackbox.Decode(t, body), map[string]any{"_revision": 6}, "connection")
		})
	}
}

// TestPiggybackSeedPlaceholders sends the seed's envelopes as printed: the
// empty connection placeholder gets Ditto's 400 json.field.missing, wrapped
// as devops.responses:errorResponse.
func TestPiggybackSeedPlaceholders(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	for _, c := range []string{ditto.CreateConnection, ditto.ModifyConnection, ditto.TestConnection} {
		t.Run(c, func(t *testing.T) {
			st, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(c, "connection", map[string]any{}), true))
			if st != http.StatusOK {
				t.Fatalf("HTTP %d", st)
			}
			m := blackbox.Decode(t, body)
			blackbox.WantField(t, m, ditto.DevopsErrorResponse, "type")
			blackbox.WantField(t, m, 400, "status")
			blackbox.WantField(t, m, ditto.CodeJSONFieldMissing, "payload", "error")
		})
	}
	t.Run("tags with empty id", func(t *testing.T) {
		_, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.SudoRetrieveConnectionTags, "connectionId", ""), false))
		m := blackbox.Decode(t, body)
		blackbox.WantField(t, m, ditto.DevopsErrorResponse, "type")
		blackbox.WantField(t, m, ditto.CodeConnectionIDInvalid, "payload", "error")
	})
	t.Run("placeholder id", func(t *testing.T) {
		// "<connectionID>" is not a valid id
		_, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "<connectionID>"), true))
		blackbox.WantField(t, blackbox.Decode(t, body), ditto.CodeConnectionIDInvalid, "payload", "error")
	})
	for _, c := range []string{ditto.RetrieveConnection, ditto.OpenConnection, ditto.CloseConnection, ditto.DeleteConnection,
		ditto.RetrieveConnectionStatus, ditto.RetrieveConnectionMetrics, ditto.ResetConnectionMetrics,
		ditto.EnableConnectionLogs, ditto.RetrieveConnectionLogs, ditto.ResetConnectionLogs, ditto.SudoRetrieveConnectionTags} {
		t.Run("404 "+c, func(t *testing.T) {
			_, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(c, "connectionId", "never-created"), true))
			m := blackbox.Decode(t, body)
			blackbox.WantField(t, m, 404, "status")
			blackbox.WantField(t, m, ditto.CodeConnectionNotFound, "error")
		})
	}
}

func TestPiggybackRouting(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	t.Run("aggregate true wraps by service and instance", func(t *testing.T) {
		env := map[string]any{"targetActorSelection": blackbox.IDsPath, "headers": map[string]any{},
			"piggybackCommand": blackbox.Cmd(ditto.RetrieveAllConnectionIDs)}
		st, body := n.Piggyback(t, env)
		if st != 200 {
			t.Fatalf("HTTP %d", st)
		}
		m := blackbox.Decode(t, body)
		blackbox.WantField(t, m, "connectivity.responses:retrieveAllConnectionIds", "connectivity", kit.Instance, "type")
	})
	t.Run("unknown actor path → 408 null", func(t *testing.T) {
		st, body := n.Piggyback(t, kit.Envelope("/user/nobody", blackbox.Cmd(ditto.RetrieveAllConnectionIDs), nil))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("migration path has no answer yet", func(t *testing.T) {
		st, body := n.Piggyback(t, kit.Envelope(ditto.PathEncryptionMigration, blackbox.Cmd(ditto.MigrateEncryptionStatus), nil))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("unknown command type", func(t *testing.T) {
		_, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd("connectivity.commands:nope", "connectionId", "x"), nil))
		m := blackbox.Decode(t, body)
		blackbox.WantField(t, m, ditto.DevopsErrorResponse, "type")
		blackbox.WantField(t, m, ditto.CodeJSONTypeNotParsable, "payload", "error")
	})
	t.Run("loggingExpired is never answered", func(t *testing.T) {
		_, _ = n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.MQTTConnection("le-1", "closed")), nil))
		st, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.LoggingExpired, "connectionId", "le-1"), map[string]any{"timeout": "1s"}))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("response-required false gets no answer", func(t *testing.T) {
		st, _ := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "le-1"), map[string]any{"response-required": false}))
		if st != http.StatusRequestTimeout {
			t.Fatalf("got %d", st)
		}
	})
	t.Run("auth missing and wrong", func(t *testing.T) {
		env := kit.Envelope(blackbox.IDsPath, blackbox.Cmd(ditto.RetrieveAllConnectionIDs), nil)
		st, _ := n.Do(t, http.MethodPost, "/devops/piggyback/connectivity", env, false)
		if st != http.StatusUnauthorized {
			t.Fatalf("no auth: %d", st)
		}
	})
	t.Run("modify of unknown id creates it", func(t *testing.T) {
		_, body := n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.ModifyConnection, "connection", blackbox.MQTTConnection("upsert-1", "closed")), true))
		m := blackbox.Decode(t, body)
		blackbox.WantField(t, m, "connectivity.responses:createConnection", "type")
		blackbox.WantField(t, m, 201, "status")
	})
	t.Run("connectionType change needs sudo", func(t *testing.T) {
		c := blackbox.MQTTConnection("upsert-1", "closed")
		c["connectionType"] = "mqtt-5"
		_, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.ModifyConnection, "connection", c), nil))
		m := blackbox.Decode(t, body)
		blackbox.WantField(t, m, 400, "status")
		blackbox.WantField(t, m, ditto.CodeConfigurationInvalid, "error")
		blackbox.WantField(t, m, "ConnectionType <mqtt-5> of existing connection <upsert-1> cannot be changed!", "message")
		_, body = n.Piggyback(t, seedEnvelope(blackbox.Shard, blackbox.Cmd(ditto.ModifyConnection, "connection", c), true))
		blackbox.WantField(t, blackbox.Decode(t, body), 204, "status")
	})
}
