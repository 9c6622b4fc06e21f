package test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/kit"
)

const shard = "/system/sharding/connection"
const idsPath = "/user/connectivityRoot/connectionIdsRetrieval"

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
	for _, eng := range engines() {
		t.Run(eng.Name, func(t *testing.T) {
			n := kit.Start(t, eng.Open(t)(), kit.Options{})
			id := "mqtt-life-1"
			conn := mqttConnection(id, "closed", "fleet-a")

			// create → 201 with the connection, no connectionId
			st, body := n.Piggyback(t, seedEnvelope(shard, cmd(ditto.CreateConnection, "connection", conn), false))
			if st != http.StatusOK {
				t.Fatalf("create: HTTP %d %s", st, body)
			}
			m := decode(t, body)
			wantField(t, m, "connectivity.responses:createConnection", "type")
			wantField(t, m, 201, "status")
			wantField(t, m, nil, "connectionId")
			wantField(t, m, id, "connection", "id")
			wantField(t, m, "closed", "connection", "connectionStatus")
			wantField(t, m, []string{"fleet-a"}, "connection", "tags")
			wantField(t, m, nil, "connection", "_revision")

			// create again → 409
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.CreateConnection, "connection", conn), false))
			m = decode(t, body)
			wantField(t, m, 409, "status")
			wantField(t, m, ditto.CodeConnectionConflict, "error")

			// retrieve → 200 with connection; hidden fields only when selected
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnection, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:retrieveConnection", "type")
			wantField(t, m, 200, "status")
			wantField(t, m, "demo "+id, "connection", "name")
			wantField(t, m, nil, "connection", "_revision")
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "id,_revision"), true))
			m = decode(t, body)
			wantField(t, m, map[string]any{"id": id, "_revision": 1}, "connection")

			// tags
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.SudoRetrieveConnectionTags, "connectionId", id), false))
			m = decode(t, body)
			wantField(t, m, "connectivity.sudo.responses:sudoRetrieveConnectionTags", "type")
			wantField(t, m, []string{"fleet-a"}, "connectionTags")

			// modify → 204 with connectionId
			conn["name"] = "renamed"
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.ModifyConnection, "connection", conn), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:modifyConnection", "type")
			wantField(t, m, 204, "status")
			wantField(t, m, id, "connectionId")

			// open / close → 200
			for _, c := range []string{ditto.OpenConnection, ditto.CloseConnection} {
				_, body = n.Piggyback(t, seedEnvelope(shard, cmd(c, "connectionId", id), true))
				m = decode(t, body)
				wantField(t, m, ditto.ResponseType(c), "type")
				wantField(t, m, 200, "status")
				wantField(t, m, id, "connectionId")
			}

			// status of a closed connection
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnectionStatus, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:retrieveConnectionStatus", "type")
			wantField(t, m, "closed", "connectionStatus")
			wantField(t, m, "closed", "liveStatus")
			wantField(t, m, "unknown", "recoveryStatus")
			cs, _ := m["clientStatus"].([]any)
			if len(cs) != 1 {
				t.Fatalf("clientStatus = %v", m["clientStatus"])
			}
			entry := cs[0].(map[string]any)
			wantField(t, entry, "client", "type")
			wantField(t, entry, kit.Instance, "client")
			wantField(t, entry, "[DISCONNECTED] connection is closed", "statusDetails")

			// metrics with no client running
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnectionMetrics, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, map[string]any{"inbound": nil, "outbound": nil}, "connectionMetrics")
			wantField(t, m, false, "containsFailures")
			wantField(t, m, map[string]any{"addressMetrics": nil}, "sourceMetrics")
			wantField(t, m, map[string]any{"addressMetrics": nil}, "targetMetrics")

			for _, c := range []string{ditto.ResetConnectionMetrics, ditto.EnableConnectionLogs, ditto.ResetConnectionLogs} {
				_, body = n.Piggyback(t, seedEnvelope(shard, cmd(c, "connectionId", id), true))
				m = decode(t, body)
				wantField(t, m, ditto.ResponseType(c), "type")
				wantField(t, m, 200, "status")
				wantField(t, m, id, "connectionId")
			}

			// logs: enabled by the enable above, reset left one entry
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnectionLogs, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:retrieveConnectionLogs", "type")
			if m["enabledSince"] == nil || m["enabledUntil"] == nil {
				t.Errorf("logging should be enabled: %s", body)
			}
			logs, _ := m["connectionLogs"].([]any)
			if len(logs) != 1 || field(logs[0].(map[string]any), "message") != "Successfully reset the logs." {
				t.Errorf("connectionLogs = %v", m["connectionLogs"])
			}

			// id listing
			_, body = n.Piggyback(t, seedEnvelope(idsPath, cmd(ditto.RetrieveAllConnectionIDs), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:retrieveAllConnectionIds", "type")
			wantField(t, m, []string{id}, "connectionIds")
			_, body = n.Piggyback(t, seedEnvelope(idsPath, cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "fleet-a"), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.sudo.responses:sudoRetrieveConnectionIdsByTag", "type")
			wantField(t, m, []string{id}, "connectionIds")

			// test on an existing id → 409 testConnection response
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.TestConnection, "connection", conn), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:testConnection", "type")
			wantField(t, m, 409, "status")
			wantField(t, m, "Connection was already created - no test possible", "testResult")

			// delete → 204, then 404 for everything but create/test
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.DeleteConnection, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, "connectivity.responses:deleteConnection", "type")
			wantField(t, m, 204, "status")
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnection, "connectionId", id), true))
			m = decode(t, body)
			wantField(t, m, 404, "status")
			wantField(t, m, ditto.CodeConnectionNotFound, "error")
			wantField(t, m, "The Connection with ID '"+id+"' could not be found or requester had insufficient permissions to access it.", "message")
			_, body = n.Piggyback(t, seedEnvelope(idsPath, cmd(ditto.RetrieveAllConnectionIDs), true))
			wantField(t, decode(t, body), []string{}, "connectionIds")
			_, body = n.Piggyback(t, seedEnvelope(idsPath, cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "fleet-a"), true))
			wantField(t, decode(t, body), []string{}, "connectionIds")

			// create after delete continues the revision
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.CreateConnection, "connection", conn), false))
			wantField(t, decode(t, body), 201, "status")
			_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "_revision"), true))
			wantField(t, decode(t, body), map[string]any{"_revision": 6}, "connection")
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
			st, body := n.Piggyback(t, seedEnvelope(shard, cmd(c, "connection", map[string]any{}), true))
			if st != http.StatusOK {
				t.Fatalf("HTTP %d", st)
			}
			m := decode(t, body)
			wantField(t, m, ditto.DevopsErrorResponse, "type")
			wantField(t, m, 400, "status")
			wantField(t, m, ditto.CodeJSONFieldMissing, "payload", "error")
		})
	}
	t.Run("tags with empty id", func(t *testing.T) {
		_, body := n.Piggyback(t, seedEnvelope(shard, cmd(ditto.SudoRetrieveConnectionTags, "connectionId", ""), false))
		m := decode(t, body)
		wantField(t, m, ditto.DevopsErrorResponse, "type")
		wantField(t, m, ditto.CodeConnectionIDInvalid, "payload", "error")
	})
	t.Run("placeholder id", func(t *testing.T) {
		// "<connectionID>" is not a valid id
		_, body := n.Piggyback(t, seedEnvelope(shard, cmd(ditto.RetrieveConnection, "connectionId", "<connectionID>"), true))
		wantField(t, decode(t, body), ditto.CodeConnectionIDInvalid, "payload", "error")
	})
	for _, c := range []string{ditto.RetrieveConnection, ditto.OpenConnection, ditto.CloseConnection, ditto.DeleteConnection,
		ditto.RetrieveConnectionStatus, ditto.RetrieveConnectionMetrics, ditto.ResetConnectionMetrics,
		ditto.EnableConnectionLogs, ditto.RetrieveConnectionLogs, ditto.ResetConnectionLogs, ditto.SudoRetrieveConnectionTags} {
		t.Run("404 "+c, func(t *testing.T) {
			_, body := n.Piggyback(t, seedEnvelope(shard, cmd(c, "connectionId", "never-created"), true))
			m := decode(t, body)
			wantField(t, m, 404, "status")
			wantField(t, m, ditto.CodeConnectionNotFound, "error")
		})
	}
}

func TestPiggybackRouting(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	t.Run("aggregate true wraps by service and instance", func(t *testing.T) {
		env := map[string]any{"targetActorSelection": idsPath, "headers": map[string]any{},
			"piggybackCommand": cmd(ditto.RetrieveAllConnectionIDs)}
		st, body := n.Piggyback(t, env)
		if st != 200 {
			t.Fatalf("HTTP %d", st)
		}
		m := decode(t, body)
		wantField(t, m, "connectivity.responses:retrieveAllConnectionIds", "connectivity", kit.Instance, "type")
	})
	t.Run("unknown actor path → 408 null", func(t *testing.T) {
		st, body := n.Piggyback(t, kit.Envelope("/user/nobody", cmd(ditto.RetrieveAllConnectionIDs), nil))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("migration path has no answer yet", func(t *testing.T) {
		st, body := n.Piggyback(t, kit.Envelope(ditto.PathEncryptionMigration, cmd(ditto.MigrateEncryptionStatus), nil))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("unknown command type", func(t *testing.T) {
		_, body := n.Piggyback(t, kit.Envelope(shard, cmd("connectivity.commands:nope", "connectionId", "x"), nil))
		m := decode(t, body)
		wantField(t, m, ditto.DevopsErrorResponse, "type")
		wantField(t, m, ditto.CodeJSONTypeNotParsable, "payload", "error")
	})
	t.Run("loggingExpired is never answered", func(t *testing.T) {
		_, _ = n.Piggyback(t, kit.Envelope(shard, cmd(ditto.CreateConnection, "connection", mqttConnection("le-1", "closed")), nil))
		st, body := n.Piggyback(t, kit.Envelope(shard, cmd(ditto.LoggingExpired, "connectionId", "le-1"), map[string]any{"timeout": "1s"}))
		if st != http.StatusRequestTimeout || strings.TrimSpace(string(body)) != "null" {
			t.Fatalf("got %d %s", st, body)
		}
	})
	t.Run("response-required false gets no answer", func(t *testing.T) {
		st, _ := n.Piggyback(t, kit.Envelope(shard, cmd(ditto.RetrieveConnection, "connectionId", "le-1"), map[string]any{"response-required": false}))
		if st != http.StatusRequestTimeout {
			t.Fatalf("got %d", st)
		}
	})
	t.Run("auth missing and wrong", func(t *testing.T) {
		env := kit.Envelope(idsPath, cmd(ditto.RetrieveAllConnectionIDs), nil)
		st, _ := n.Do(t, http.MethodPost, "/devops/piggyback/connectivity", env, false)
		if st != http.StatusUnauthorized {
			t.Fatalf("no auth: %d", st)
		}
	})
	t.Run("modify of unknown id creates it", func(t *testing.T) {
		_, body := n.Piggyback(t, seedEnvelope(shard, cmd(ditto.ModifyConnection, "connection", mqttConnection("upsert-1", "closed")), true))
		m := decode(t, body)
		wantField(t, m, "connectivity.responses:createConnection", "type")
		wantField(t, m, 201, "status")
	})
	t.Run("connectionType change needs sudo", func(t *testing.T) {
		c := mqttConnection("upsert-1", "closed")
		c["connectionType"] = "mqtt-5"
		_, body := n.Piggyback(t, kit.Envelope(shard, cmd(ditto.ModifyConnection, "connection", c), nil))
		m := decode(t, body)
		wantField(t, m, 400, "status")
		wantField(t, m, ditto.CodeConfigurationInvalid, "error")
		wantField(t, m, "ConnectionType <mqtt-5> of existing connection <upsert-1> cannot be changed!", "message")
		_, body = n.Piggyback(t, seedEnvelope(shard, cmd(ditto.ModifyConnection, "connection", c), true))
		wantField(t, decode(t, body), 204, "status")
	})
}
