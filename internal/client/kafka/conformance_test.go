package kafka

import (
	"context"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

// The suite runs against an in-process cluster with SASL PLAIN, whose
// listener the test can cut (clients reach a Kafka broker at the address it
// advertises, so a proxy in front would be bypassed).
func TestIntegrationConformance(t *testing.T) {
	const user, pass = "suite", "suite-pw"
	clienttest.Run(t, func(t *testing.T) *clienttest.Harness {
		var front *clienttest.CutListener
		cluster := newCluster(t, kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("PLAIN", user, pass),
			kfake.ListenFn(func(network, address string) (net.Listener, error) {
				l, err := net.Listen(network, address)
				if err != nil {
					return nil, err
				}
				front = &clienttest.CutListener{Listener: l}
				return front, nil
			}))
		addr := cluster.ListenAddrs()[0]
		login := kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())
		admin := adminClient(t, cluster, login)
		n := 0
		return &clienttest.Harness{
			Factory: New,
			Broker:  addr,
			Front:   func(*testing.T) clienttest.Front { return front },
			Connection: func(addr string, sources []model.Source, targets []model.Target) *model.Connection {
				n++
				c := testConnection(fmt.Sprintf("suite-%d", n), "tcp://"+user+":"+pass+"@"+addr, []string{addr}, sources, targets)
				c.SpecificConfig[cfgSASLMechanism] = "PLAIN"
				return c
			},
			BadLogin: func(c *model.Connection, password string) { c.URI = clienttest.WithPassword(c.URI, password) },
			Addresses: func(t *testing.T) (string, string) {
				n++
				in, out := fmt.Sprintf("in-%d", n), fmt.Sprintf("out-%d", n)
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				if _, err := kadm.NewClient(admin).CreateTopics(ctx, 1, 1, nil, in, out); err != nil {
					t.Fatalf("create topics: %v", err)
				}
				return in, out
			},
			Send: func(t *testing.T, source string, payload []byte) {
				produce(t, admin, &kgo.Record{Topic: source, Value: payload})
			},
			Listen: func(t *testing.T, target string) func() [][]byte {
				cl := adminClient(t, cluster, login, kgo.ConsumeTopics(target), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
				var mu sync.Mutex
				var got [][]byte
				return func() [][]byte {
					mu.Lock()
					defer mu.Unlock()
					ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
					defer cancel()
					cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = append(got, r.Value) })
					return got
				}
			},
			Shape: Spec.Shape,
		}
	})
}
