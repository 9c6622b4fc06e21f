package dataplane

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
)

// Ditto's Kafka consumer counts an expired message (ttl + creation-time) as
// consumed and drops it before mapping: nothing else is counted or sent.
func TestKafkaMessageExpiryCountsConsumedAndDrops(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, sourceConn)
	_, rec := start(t, b, targetConn)
	in := src.Inbound(0)
	in(client.Message{Address: "q", Headers: map[string]string{"device-id": "org.acme:dev"},
		Payload: liveMessage("org.acme", "late"), Expired: true})
	rec.none(t)
	if got := count(src, monitor.Inbound, monitor.Consumed, "q", true); got != 1 {
		t.Errorf("consumed %d, want 1", got)
	}
	for _, typ := range []monitor.MetricType{monitor.Mapped, monitor.Dropped, monitor.Enforced} {
		if got := count(src, monitor.Inbound, typ, "q", true) + count(src, monitor.Inbound, typ, "q", false); got != 0 {
			t.Errorf("%s counted %d times for an expired message", typ, got)
		}
	}
	// The same message, not expired, goes through.
	in(client.Message{Address: "q", Headers: map[string]string{"device-id": "org.acme:dev"},
		Payload: liveMessage("org.acme", "late")})
	if m := rec.next(t); m.Headers["subject"] != "late" {
		t.Fatalf("published %+v", m)
	}
}
