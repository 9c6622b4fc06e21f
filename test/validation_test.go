package test

import (
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestValidationOverHTTP sends one broken connection per Ditto validation
// rule through createConnection and checks Ditto's status, error code and
// that the message names what is wrong. Parse-time failures come back as
// devops.responses:errorResponse (Ditto parses the command before the actor
// sees it); validator failures as the command's own error JSON.
func TestValidationOverHTTP(t *testing.T) {
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	type tc struct {
		name    string
		mutate  func(c map[string]any)
		parse   bool // failure arrives wrapped as errorResponse
		status  int
		code    string
		mention string // the message must contain this
	}
	src := func(c map[string]any) map[string]any { return c["sources"].([]any)[0].(map[string]any) }
	tgt := func(c map[string]any) map[string]any { return c["targets"].([]any)[0].(map[string]any) }
	cases := []tc{
		{"missing connectionType", func(c map[string]any) { delete(c, "connectionType") }, true, 400, ditto.CodeJSONFieldMissing, "connectionType"},
		{"missing uri", func(c map[string]any) { delete(c, "uri") }, true, 400, ditto.CodeJSONFieldMissing, "uri"},
		{"invalid id", func(c map[string]any) { c["id"] = "bad id!" }, true, 400, ditto.CodeConnectionIDInvalid, "bad id!"},
		{"uri without port", func(c map[string]any) { c["uri"] = "tcp://127.0.0.1" }, true, 400, ditto.CodeURIInvalid, "tcp://127.0.0.1"},
		{"uri with query", func(c map[string]any) { c["uri"] = "tcp://127.0.0.1:1883?x=1" }, true, 400, ditto.CodeURIInvalid, "tcp://127.0.0.1:1883?x=1"},
		{"wrong scheme for mqtt", func(c map[string]any) { c["uri"] = "amqp://127.0.0.1:1883" }, false, 400, ditto.CodeURIInvalid, "amqp"},
		{"invalid uri with a password", func(c map[string]any) { c["uri"] = "tcp://user:s3cr3t@127.0.0.1" }, true, 400, ditto.CodeURIInvalid, "'tcp://***@127.0.0.1'"},
		{"no sources and no targets", func(c map[string]any) { c["sources"] = []any{}; c["targets"] = []any{} }, true, 400, ditto.CodeConfigurationInvalid, "source or a target"},
		{"source without authorizationContext", func(c map[string]any) { delete(src(c), "authorizationContext") }, true, 400, ditto.CodeConfigurationInvalid, "authorization context"},
		{"too many sources", func(c map[string]any) {
			s := src(c)
			c["sources"] = []any{s, s, s, s, s}
		}, false, 400, ditto.CodeConfigurationInvalid, "exceeded"},
		{"empty source address", func(c map[string]any) { src(c)["addresses"] = []string{""} }, false, 400, ditto.CodeConfigurationInvalid, "address"},
		{"mqtt source without qos", func(c map[string]any) { delete(src(c), "qos") }, false, 400, ditto.CodeConfigurationInvalid, "QoS"},
		{"mqtt qos out of range", func(c map[string]any) { tgt(c)["qos"] = 3 }, false, 400, ditto.CodeConfigurationInvalid, "'qos'"},
		{"mqtt target with wildcard", func(c map[string]any) { tgt(c)["address"] = "out/#" }, false, 400, ditto.CodeConfigurationInvalid, "out/#"},
		{"mqtt clientCount 2", func(c map[string]any) { c["clientCount"] = 2 }, false, 400, ditto.CodeConfigurationInvalid, "Client count limited to 1"},
		{"unknown topic", func(c map[string]any) { tgt(c)["topics"] = []string{"_/_/things/nope"} }, true, 400, ditto.CodeTopicInvalid, "_/_/things/nope"},
		{"bad RQL filter", func(c map[string]any) {
			tgt(c)["topics"] = []string{"_/_/things/twin/events?filter=eq(attributes/x"}
		}, false, 400, ditto.CodeRQLInvalid, "eq(attributes/x"},
		{"clientCount 0", func(c map[string]any) { c["clientCount"] = 0 }, true, 400, ditto.CodeConfigurationInvalid, "client count"},
		{"unknown payload mapping", func(c map[string]any) { src(c)["payloadMapping"] = []string{"nope"} }, false, 400, "", "nope"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			conn := blackbox.MQTTConnection("val-1", "closed")
			c.mutate(conn)
			_, body := n.Piggyback(t, kit.Envelope(blackbox.Shard, blackbox.Cmd(ditto.CreateConnection, "connection", conn), nil))
			m := blackbox.Decode(t, body)
			errJSON := m
			if c.parse {
				blackbox.WantField(t, m, ditto.DevopsErrorResponse, "type")
				errJSON, _ = m["payload"].(map[string]any)
				if errJSON == nil {
					t.Fatalf("no payload: %s", body)
				}
			}
			blackbox.WantField(t, errJSON, c.status, "status")
			if c.code != "" {
				blackbox.WantField(t, errJSON, c.code, "error")
			} else if code, _ := errJSON["error"].(string); !strings.HasPrefix(code, "connectivity:") && !strings.HasPrefix(code, "placeholder:") {
				t.Errorf("error code %q", code)
			}
			if msg, _ := errJSON["message"].(string); !strings.Contains(msg, c.mention) {
				t.Errorf("message %q does not mention %q", msg, c.mention)
			}
			// nothing was stored
			r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", "val-1"))
			if r == nil || r.Status != 404 {
				t.Errorf("invalid connection was stored: %+v", r)
			}
		})
	}
}
