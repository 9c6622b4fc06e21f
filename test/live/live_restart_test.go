package live

import (
	"net/http"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationRestartReopens: connections stored with desired status open
// reconnect after a restart without any command; stopping the service closes
// them gracefully (closed announcement) first.
func TestIntegrationRestartReopens(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			open := eng.Open(t)
			n := kit.Start(t, open(), kit.Options{})
			push := startPushServer(t)
			ids := map[string]map[string]any{
				"reopen-mqtt-" + eng.Name:   mqttLive("mqtt", "reopen-mqtt-"+eng.Name, "open", "tcp://127.0.0.1:1883"),
				"reopen-mqtt5-" + eng.Name:  mqttLive("mqtt-5", "reopen-mqtt5-"+eng.Name, "open", "tcp://127.0.0.1:1883"),
				"reopen-push-" + eng.Name:   httpPushConnection("reopen-push-"+eng.Name, "open", push.URI(), nil),
				"reopen-closed-" + eng.Name: mqttLive("mqtt", "reopen-closed-"+eng.Name, "closed", "tcp://127.0.0.1:1883"),
			}
			sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "announce/reopen-mqtt-"+eng.Name)
			for id, c := range ids {
				if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", c)); r == nil || r.Status != http.StatusCreated {
					t.Fatalf("create %s: %v", id, r)
				}
			}
			for id, c := range ids {
				if c["connectionStatus"] == "open" {
					waitLive(t, n, id, "open", "succeeded", 10*time.Second)
				}
			}
			announcement(t, sub.Next(t, 10*time.Second, "opened announcement").Payload(), "reopen-mqtt-"+eng.Name, "opened")

			n.Stop()
			announcement(t, sub.Next(t, 10*time.Second, "closed announcement at shutdown").Payload(), "reopen-mqtt-"+eng.Name, "closed")

			n2 := kit.Start(t, open(), kit.Options{})
			announcement(t, sub.Next(t, 15*time.Second, "opened announcement after restart").Payload(), "reopen-mqtt-"+eng.Name, "opened")
			for id, c := range ids {
				if c["connectionStatus"] == "open" {
					waitLive(t, n2, id, "open", "succeeded", 15*time.Second)
				}
			}
			m := status(t, n2, "reopen-closed-"+eng.Name)
			blackbox.WantField(t, m, "closed", "liveStatus")
		})
	}
}
