package live

import (
	"fmt"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
)

// TestIntegrationStandaloneRoutingNeedsASharedSubject: through Mosquitto, a
// twin event consumed under tenant:acme reaches another connection's target
// that shares that subject, and never a target whose authorizationContext is
// nobody:never-authorized (the cross-tenant leak standalone routing had).
func TestIntegrationStandaloneRoutingNeedsASharedSubject(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	run := fmt.Sprint(runID)
	srcID, tgtID := dpID("auth-src"), dpID("auth-tgt")
	dpOpen(t, n, map[string]any{
		"id": srcID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": srcID},
		"sources": []any{map[string]any{"addresses": []string{"auth/" + run + "/in/#"},
			"authorizationContext": []string{"tenant:acme"}, "qos": 1}},
	})
	same, leak := "auth/"+run+"/same/{{ thing:id }}", "auth/"+run+"/leak/{{ thing:id }}"
	dpOpen(t, n, map[string]any{
		"id": tgtID, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": tgtID},
		"targets": []any{
			map[string]any{"address": leak, "topics": []string{"_/_/things/twin/events"},
				"authorizationContext": []string{"nobody:never-authorized"}, "qos": 1},
			map[string]any{"address": same, "topics": []string{"_/_/things/twin/events"},
				"authorizationContext": []string{"integration:other", "tenant:acme"}, "qos": 1},
		},
	})
	sameSub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "auth/"+run+"/same/#")
	leakSub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "auth/"+run+"/leak/#")
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")

	blackbox.PublishMQTT(t, dev, "auth/"+run+"/in/dev-1", blackbox.TwinEvent("org.acme:dev-1", 21))
	blackbox.PublishMQTT(t, dev, "auth/"+run+"/in/dev-1", blackbox.TwinEvent("org.acme:dev-1", 22))
	for _, want := range []float64{21, 22} {
		m := sameSub.Next(t, 10*time.Second, "event for the same-subject target")
		if m.Topic() != "auth/"+run+"/same/org.acme:dev-1" {
			t.Errorf("published to %q", m.Topic())
		}
		blackbox.WantField(t, blackbox.Decode(t, m.Payload()), want, "value")
	}
	// Both events were offered to both targets before the second was
	// published: the counts of the unauthorized target are final.
	tm := dpWaitCount(t, n, tgtID, "target", same, "published", "success", 2)
	for _, typ := range []string{"dispatched", "filtered", "mapped", "published"} {
		if c := dpCount(tm, "target", leak, typ, "success"); c != 0 {
			t.Errorf("unauthorized target %s = %d, want 0", typ, c)
		}
	}
	select {
	case m := <-leakSub.Msgs:
		t.Errorf("the unauthorized target published on %s: %s", m.Topic(), m.Payload())
	default:
	}
}
