package kafka

import (
	"context"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/test/poll"
)

// Ditto's TransformationResult.isExpired: both headers in milliseconds,
// expired once now - creation-time >= ttl; anything unparsable never expires.
func TestKafkaMessageExpiryRule(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000)
	for _, tc := range []struct {
		h    map[string]string
		want bool
	}{
		{map[string]string{"creation-time": "1700000000000", "ttl": "10000"}, true}, // exactly ttl: expired
		{map[string]string{"creation-time": "1700000000000", "ttl": "10001"}, false},
		{map[string]string{"creation-time": "1700000000000", "ttl": "0"}, true},
		{map[string]string{"creation-time": "1700000000000"}, false},
		{map[string]string{"ttl": "1"}, false},
		{map[string]string{"creation-time": "yesterday", "ttl": "1"}, false},
		{map[string]string{"creation-time": "1700000000000", "ttl": "10s"}, false},
		{nil, false},
	} {
		if got := expired(tc.h, now); got != tc.want {
			t.Errorf("%v: expired %v, want %v", tc.h, got, tc.want)
		}
	}
}

// An expired record reaches the data plane marked Expired (Ditto counts it
// as consumed, then drops it) and, at qos 1, its offset is committed like
// any processed record's.
func TestKafkaMessageExpiryDropsExpiredRecords(t *testing.T) {
	cluster := newCluster(t, kfake.NumBrokers(1), kfake.SeedTopics(1, "in"))
	admin := adminClient(t, cluster)
	qos1 := 1
	conn := testConnection("kafka-ttl", "tcp://"+cluster.ListenAddrs()[0], cluster.ListenAddrs(),
		[]model.Source{{Addresses: []string{"in"}, ConsumerCount: 1, QoS: &qos1}}, nil)
	conn.SpecificConfig[cfgGroupID] = "group-ttl"
	c, rec := newTestClient(t, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	now := time.Now().UnixMilli()
	hdr := func(created int64, ttl string) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: "creation-time", Value: []byte(strconv.FormatInt(created, 10))},
			{Key: "ttl", Value: []byte(ttl)}}
	}
	produce(t, admin,
		&kgo.Record{Topic: "in", Value: []byte("expired"), Headers: hdr(now-10_000, "1000")},
		&kgo.Record{Topic: "in", Value: []byte("alive"), Headers: hdr(now, "600000")},
		&kgo.Record{Topic: "in", Value: []byte("bad-ttl"), Headers: hdr(now-10_000, "one second")},
		&kgo.Record{Topic: "in", Value: []byte("no-headers")})
	for payload, want := range map[string]bool{"expired": true, "alive": false, "bad-ttl": false, "no-headers": false} {
		m := rec.WaitMessage(t, payload, 10*time.Second)
		if m.Expired != want {
			t.Errorf("%s: Expired %v, want %v (headers %v)", payload, m.Expired, want, m.Headers)
		}
	}
	adm := kadm.NewClient(admin)
	poll.Check(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		offs, err := adm.FetchOffsets(ctx, "group-ttl")
		if err != nil {
			return err
		}
		if o, ok := offs.Lookup("in", 0); !ok || o.At != 4 {
			return fmt.Errorf("committed offset of in/0: %+v", o)
		}
		return nil
	})
}
