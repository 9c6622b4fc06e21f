package gateway

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// seedEnvelopes are the envelopes of Ditto's "manage connections via
// piggyback" page, one file each under testdata/seed, as operators send them.
var seedEnvelopes = []struct {
	file        string
	typ         string
	target      string
	headers     map[string]string // without correlation-id
	invalidJSON bool              // the page's testConnection sample has "..." and a comment
}{
	{file: "createConnection", typ: "connectivity.commands:createConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false"}},
	{file: "modifyConnection", typ: "connectivity.commands:modifyConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "retrieveConnection", typ: "connectivity.commands:retrieveConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "sudoRetrieveConnectionTags", typ: "connectivity.sudo.commands:sudoRetrieveConnectionTags", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false"}},
	{file: "openConnection", typ: "connectivity.commands:openConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "closeConnection", typ: "connectivity.commands:closeConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "deleteConnection", typ: "connectivity.commands:deleteConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "testConnection-doc-literal", invalidJSON: true},
	{file: "testConnection", typ: "connectivity.commands:testConnection", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "retrieveAllConnectionIds", typ: "connectivity.commands:retrieveAllConnectionIds", target: "/user/connectivityRoot/connectionIdsRetrieval", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "sudoRetrieveConnectionIdsByTag", typ: "connectivity.sudo.commands:sudoRetrieveConnectionIdsByTag", target: "/user/connectivityRoot/connectionIdsRetrieval", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "retrieveConnectionStatus", typ: "connectivity.commands:retrieveConnectionStatus", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "retrieveConnectionMetrics", typ: "connectivity.commands:retrieveConnectionMetrics", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "resetConnectionMetrics", typ: "connectivity.commands:resetConnectionMetrics", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "enableConnectionLogs", typ: "connectivity.commands:enableConnectionLogs", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "retrieveConnectionLogs", typ: "connectivity.commands:retrieveConnectionLogs", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "resetConnectionLogs", typ: "connectivity.commands:resetConnectionLogs", target: "/system/sharding/connection", headers: map[string]string{"aggregate": "false", "is-group-topic": "false", "ditto-sudo": "true"}},
	{file: "migrateEncryption", typ: "connectivity.commands:migrateEncryption", target: "/user/connectivityRoot/encryptionMigration", headers: map[string]string{"aggregate": "false"}},
	{file: "migrateEncryption2", typ: "connectivity.commands:migrateEncryption", target: "/user/connectivityRoot/encryptionMigration", headers: map[string]string{"aggregate": "false"}},
	{file: "migrateEncryption3", typ: "connectivity.commands:migrateEncryption", target: "/user/connectivityRoot/encryptionMigration", headers: map[string]string{"aggregate": "false"}},
	{file: "migrateEncryptionStatus", typ: "connectivity.commands:migrateEncryptionStatus", target: "/user/connectivityRoot/encryptionMigration", headers: map[string]string{"aggregate": "false"}},
	{file: "migrateEncryptionAbort", typ: "connectivity.commands:migrateEncryptionAbort", target: "/user/connectivityRoot/encryptionMigration", headers: map[string]string{"aggregate": "false"}},
}

func readSeed(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "seed", name+".json"))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestSeedEnvelopes(t *testing.T) {
	for _, tt := range seedEnvelopes {
		t.Run(tt.file, func(t *testing.T) {
			body := readSeed(t, tt.file)
			d := okReply(responseJSON)
			rec := serve(t, newTestServer(t, d), request{path: "/devops/piggyback/connectivity", body: string(body)})
			if tt.invalidJSON {
				assertStatus(t, rec, http.StatusBadRequest)
				assertContentType(t, rec, "application/json")
				var e struct{ Error, Message string }
				if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error != "json.invalid" ||
					!strings.HasPrefix(e.Message, "Failed to parse JSON string '{") {
					t.Fatalf("want json.invalid quoting the body, got %s", rec.Body)
				}
				return
			}
			assertStatus(t, rec, http.StatusOK)
			assertContentType(t, rec, "application/json")
			assertBody(t, rec, responseJSON) // every seed sends aggregate=false

			c := d.onlyCall(t)
			if c.target != tt.target || c.cmd.GetType() != tt.typ {
				t.Fatalf("dispatched %q to %q, want %q to %q", c.cmd.GetType(), c.target, tt.typ, tt.target)
			}
			headers := c.cmd.GetHeaders()
			if headers["correlation-id"] == "" {
				t.Fatal("no correlation-id")
			}
			if got := copyWithout(headers, "correlation-id"); !equalMaps(got, tt.headers) {
				t.Fatalf("headers\n got %v\nwant %v", got, tt.headers)
			}
			var envelope struct{ PiggybackCommand json.RawMessage }
			if err := json.Unmarshal(body, &envelope); err != nil {
				t.Fatal(err)
			}
			if string(c.cmd.GetPayload()) != string(envelope.PiggybackCommand) {
				t.Fatalf("payload\n got %s\nwant %s", c.cmd.GetPayload(), envelope.PiggybackCommand)
			}
			if c.cmd.GetEntityId() != "" {
				t.Fatalf("EntityId = %q; the actors side derives it", c.cmd.GetEntityId())
			}
		})
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
