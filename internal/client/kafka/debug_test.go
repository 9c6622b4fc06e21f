package kafka

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestIntegrationDebugEnabledRecordMetadata: as in Ditto, a publish's issued
// acknowledgement is 204 without a payload, and with debugEnabled ("TRUE":
// Boolean.parseBoolean) 200 carrying the record metadata: timestamp,
// serializedKeySize, serializedValueSize, topic, partition, offset.
func TestIntegrationDebugEnabledRecordMetadata(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(2, "out"))
	addr := cluster.ListenAddrs()[0]
	for _, debug := range []string{"", "TRUE"} {
		conn := testConnection("debug", "tcp://"+addr, []string{addr}, nil, []model.Target{{Address: "out"}})
		if debug != "" {
			conn.SpecificConfig[cfgDebugEnabled] = debug
		}
		c, rec := newTestClient(t, conn)
		if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
			t.Fatalf("Connect: %v", err)
		}
		rec.WaitEvent(t, client.Connected, time.Second)
		rp, ok := c.(client.ResultPublisher)
		if !ok {
			t.Fatalf("the kafka client is no client.ResultPublisher")
		}
		for i, address := range []string{"out/key-1", "out#1"} {
			res, err := rp.PublishResult(clienttest.Context(t, 5*time.Second), client.Message{Address: address, Payload: []byte("hello")})
			if err != nil {
				t.Fatalf("debugEnabled %q, PublishResult %s: %v", debug, address, err)
			}
			if debug == "" {
				if res.Status != 204 || res.Payload != nil {
					t.Fatalf("without debugEnabled: %d %s, want 204 without payload", res.Status, res.Payload)
				}
				continue
			}
			if res.Status != 200 {
				t.Fatalf("debugEnabled: status %d, want 200", res.Status)
			}
			var m map[string]any
			if err := json.Unmarshal(res.Payload, &m); err != nil {
				t.Fatalf("payload %s: %v", res.Payload, err)
			}
			ts, _ := m["timestamp"].(float64)
			if d := time.Since(time.UnixMilli(int64(ts))); d < 0 || d > time.Minute {
				t.Errorf("timestamp %v is not the publish time (ms since the epoch): %s", m["timestamp"], res.Payload)
			}
			keySize := map[int]float64{0: 5, 1: -1}[i] // "key-1"; none for a partition target
			want := map[string]any{"timestamp": m["timestamp"], "serializedKeySize": keySize, "serializedValueSize": float64(5),
				"topic": "out", "partition": m["partition"], "offset": m["offset"]}
			if len(m) != len(want) {
				t.Errorf("payload %s, want the fields of %v", res.Payload, want)
			}
			for k, v := range want {
				if m[k] != v {
					t.Errorf("%s = %v, want %v (payload %s)", k, m[k], v, res.Payload)
				}
			}
			if i == 1 && m["partition"] != float64(1) {
				t.Errorf("partition %v, want 1", m["partition"])
			}
			if off, ok := m["offset"].(float64); !ok || off < 0 {
				t.Errorf("offset %v, want the record's", m["offset"])
			}
		}
		if err := c.Close(clienttest.Context(t, 5*time.Second)); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}
