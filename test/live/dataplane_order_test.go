package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationDataPlaneMQTTOrder: messages of one MQTT topic leave
// through the target in the order the device sent them (MQTT orders per
// topic; a consumer that mapped them concurrently would not).
func TestIntegrationDataPlaneMQTTOrder(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{})
	run := fmt.Sprint(time.Now().UnixNano())
	srcID, tgtID := dpID("order-src"), dpID("order-tgt")
	dpOpen(t, n, map[string]any{
		"id": srcID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": srcID + run},
		"sources": []any{map[string]any{"addresses": []string{"ord/" + run + "/in/#"},
			"authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	})
	dpOpen(t, n, map[string]any{
		"id": tgtID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": tgtID + run},
		"targets": []any{map[string]any{"address": "ord/" + run + "/out/{{ thing:id }}",
			"topics": []string{"_/_/things/twin/events"}, "authorizationContext": []string{"nginx:ditto"}, "qos": 1}},
	})
	out := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "ord/"+run+"/out/#")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	const total = 500
	go func() {
		for i := 1; i <= total; i++ {
			dev.Publish("ord/"+run+"/in/dev-1", 1, false, blackbox.TwinEvent("org.acme:dev-1", i))
		}
	}()
	prev := 0
	for i := 1; i <= total; i++ {
		m := out.Next(t, 15*time.Second, fmt.Sprintf("message %d of %d", i, total))
		v, _ := blackbox.Decode(t, m.Payload())["value"].(float64)
		if int(v) != prev+1 {
			t.Fatalf("message %d carries value %v after %d: out of order", i, v, prev)
		}
		prev = int(v)
	}
}
