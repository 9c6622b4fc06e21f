package amqp091

import (
	"sync"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/client/clienttest"
	"github.com/dittoconn/dittoconn/actors/model"
)

func TestIntegrationConformance(t *testing.T) {
	clienttest.Run(t, func(t *testing.T) *clienttest.Harness {
		var a *admin
		adm := func() *admin {
			if a == nil {
				a = newAdmin(t)
			}
			return a
		}
		return &clienttest.Harness{
			Factory: New,
			Broker:  brokerAddr,
			Connection: func(addr string, sources []model.Source, targets []model.Target) *model.Connection {
				return testConnection(uniqueName(t, "conn"), "amqp://guest:guest@"+addr+"/", sources, targets)
			},
			BadLogin: func(c *model.Connection, password string) { c.URI = clienttest.WithPassword(c.URI, password) },
			Addresses: func(t *testing.T) (string, string) {
				in, out := uniqueName(t, "in"), uniqueName(t, "out")
				adm().queue(in)
				adm().queue(out)
				return in, "/" + out // the default exchange routes to the queue
			},
			Send: func(t *testing.T, source string, payload []byte) {
				adm().publish("", source, amqp.Publishing{Body: payload})
			},
			Listen: func(t *testing.T, target string) func() [][]byte {
				var mu sync.Mutex
				var got [][]byte
				return func() [][]byte {
					mu.Lock()
					defer mu.Unlock()
					for {
						d, ok, err := adm().channel().Get(target[1:], true)
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
