package connection

import (
	"reflect"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	pb "github.com/dittoconn/dittoconn/proto"
)

// Each internal message reads back as what was sent, under the command type
// and JSON that members of earlier versions send and expect.
func TestInternalCodec(t *testing.T) {
	since := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		msg      internal
		wantType string
		wantJSON string
	}{
		{&satStart{Connection: []byte(`{"id":"c1"}`), Index: 1, Gen: 3, OwnerAddress: "10.0.0.1:8090", OwnerID: "partition-activator/c1$x"},
			satStartType,
			`{"connection":{"id":"c1"},"index":1,"gen":3,"ownerAddress":"10.0.0.1:8090","ownerId":"partition-activator/c1$x"}`},
		{&satStop{satRef{ConnectionID: "c1", Index: 2}}, satStopType, `{"connectionId":"c1","index":2}`},
		{&satReset{satRef{ConnectionID: "c1", Index: 2}}, satResetType, `{"connectionId":"c1","index":2}`},
		{&satState{ConnectionID: "c1", Index: 1, Gen: 3, Instance: "i2", Status: client.StatusOpen, Recovery: client.RecoverySucceeded,
			Details: "connected", Since: since,
			Resources: []satEntry{{Type: "source", Address: "a/#", Status: client.StatusOpen, Since: since}}},
			satStateType,
			`{"connectionId":"c1","index":1,"gen":3,"instance":"i2","status":"open","recovery":"succeeded","details":"connected","since":"2026-05-02T10:00:00Z","resources":[{"type":"source","address":"a/#","status":"open","since":"2026-05-02T10:00:00Z"}]}`},
	} {
		cmd := encodeInternal(tc.msg)
		if cmd.Type != tc.wantType || string(cmd.Payload) != tc.wantJSON {
			t.Errorf("encoded as %s %s, want %s %s", cmd.Type, cmd.Payload, tc.wantType, tc.wantJSON)
		}
		back, known := decodeInternal(cmd)
		if !known || !reflect.DeepEqual(back, tc.msg) {
			t.Errorf("%s read back as %#v (known %v), sent %#v", tc.wantType, back, known, tc.msg)
		}
	}
	if m, known := decodeInternal(&pb.Command{Type: satStopType, Payload: []byte(`[`)}); !known || m != nil {
		t.Errorf("a malformed message is %v (known %v), want dropped", m, known)
	}
	for _, typ := range []string{WakeType, "connectivity.commands:retrieveConnection"} {
		if _, known := decodeInternal(&pb.Command{Type: typ}); known {
			t.Errorf("%s taken for an internal message", typ)
		}
	}
}

// A satellite's counters cross the wire without loss.
func TestMetricsWire(t *testing.T) {
	last := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	m := &monitor.MetricsSnapshot{
		Sources: []monitor.AddressMetrics{{Address: "a/#", Metric: monitor.AddressMetric{
			monitor.Consumed: {Success: monitor.Measurement{PT1M: 1, PT1H: 2, PT24H: 3, LastMessageAt: last},
				Failure: monitor.Measurement{PT1M: 4, PT1H: 5, PT24H: 6}}}}},
		Targets: []monitor.AddressMetrics{},
	}
	cmd := encodeInternal(&satState{ConnectionID: "c1", Index: 1, Metrics: toWire(m)})
	back, _ := decodeInternal(cmd)
	got := back.(*satState).Metrics.snapshot()
	if !reflect.DeepEqual(got, m) {
		t.Errorf("metrics read back as %+v, sent %+v", got, m)
	}
	if toWire(nil) != nil || (*wireMetrics)(nil).snapshot() != nil {
		t.Error("no metrics must stay none")
	}
}
