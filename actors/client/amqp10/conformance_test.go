package amqp10

import (
	"strings"
	"sync"
	"testing"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/client/clienttest"
	"github.com/dittoconn/dittoconn/actors/model"
)

func TestIntegrationConformance(t *testing.T) {
	clienttest.Run(t, func(t *testing.T) *clienttest.Harness {
		needBroker(t) // the plugin, not only the port
		a := newAdmin(t)
		var p *peer
		return &clienttest.Harness{
			Factory: New,
			Broker:  brokerAddr,
			Connection: func(addr string, sources []model.Source, targets []model.Target) *model.Connection {
				return testConnection(uniqueName(t, "conn"), "amqp://guest:guest@"+addr, sources, targets)
			},
			BadLogin: func(c *model.Connection, password string) { c.URI = clienttest.WithPassword(c.URI, password) },
			Addresses: func(t *testing.T) (string, string) {
				in, out := uniqueName(t, "in"), uniqueName(t, "out")
				a.queue(in)
				a.queue(out)
				return "/amq/queue/" + in, "/queue/" + out
			},
			Send: func(t *testing.T, source string, payload []byte) {
				if p == nil {
					p = newPeer(t)
				}
				p.send(source, amqp.NewMessage(payload))
			},
			Listen: func(t *testing.T, target string) func() [][]byte {
				queue := strings.TrimPrefix(target, "/queue/")
				var mu sync.Mutex
				var got [][]byte
				return func() [][]byte {
					mu.Lock()
					defer mu.Unlock()
					for {
						d, ok, err := a.channel().Get(queue, true)
						if err != nil || !ok {
							return got
						}
						got = append(got, d.Body)
					}
				}
			},
			Shape: client.PerAddress,
		}
	})
}
