package live

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// Ditto publishes connection announcements through each subscribed target's
// payload mapping: a Normalized target maps them to nothing, a JavaScript
// target gets them as any signal (channel "none"). Checked on Mosquitto
// through the whole service, for opened and closed.
func TestIntegrationAnnouncementsGoThroughTheTargetsPayloadMapping(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	id := fmt.Sprintf("ann-mapping-%d", runID)
	sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "announce/"+id+"/#")
	script := `function mapFromDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders, value, status, extra) {
  return Ditto.buildExternalMsg({}, [namespace, name, group, channel, criterion, action, path, dittoHeaders['content-type'], JSON.stringify(value)].join('|'), null, 'text/plain');
}`
	conn := map[string]any{
		"id": id, "connectionType": "mqtt", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"mappingDefinitions": map[string]any{"js": map[string]any{"mappingEngine": "JavaScript",
			"options": map[string]any{"incomingScript": "", "outgoingScript": script}}},
		"targets": []any{
			map[string]any{"address": "announce/{{ connection:id }}/normalized", "qos": 1,
				"topics":               []string{"_/_/connections/announcements"},
				"authorizationContext": []string{"nginx:ditto"}, "payloadMapping": []string{"Normalized"}},
			map[string]any{"address": "announce/{{ connection:id }}/js", "qos": 1,
				"topics":               []string{"_/_/connections/announcements"},
				"authorizationContext": []string{"nginx:ditto"}, "payloadMapping": []string{"js"}},
		},
	}
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", conn)); r.Status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.Status, r.Payload)
	}
	// Both targets publish through the same client in target order: had the
	// Normalized target published, its message would come first.
	expect := func(kind string) {
		t.Helper()
		m := sub.Next(t, 10*time.Second, kind+" announcement")
		if m.Topic() != "announce/"+id+"/js" {
			t.Fatalf("%s announcement on %s: %s", kind, m.Topic(), m.Payload())
		}
		parts := strings.Split(string(m.Payload()), "|")
		want := []string{"_", id, "connections", "none", "announcements", kind, "/", "application/json"}
		if len(parts) != len(want)+1 || strings.Join(parts[:len(want)], "|") != strings.Join(want, "|") {
			t.Fatalf("%s announcement %s, want %s|<value>", kind, m.Payload(), strings.Join(want, "|"))
		}
		var value map[string]string
		if err := json.Unmarshal([]byte(parts[len(want)]), &value); err != nil || len(value) != 1 ||
			!strings.HasSuffix(value[kind+"At"], "Z") {
			t.Errorf("%s announcement value %s", kind, parts[len(want)])
		}
	}
	expect("opened")
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.Status, r.Payload)
	}
	expect("closed")
}
