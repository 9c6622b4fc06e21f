package amqp10

import (
	"strings"
	"testing"

	amqp "github.com/Azure/go-amqp"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
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
				a.Queue(in)
				a.Queue(out)
				return "/amq/queue/" + in, "/queue/" + out
			},
			Send: func(t *testing.T, source string, payload []byte) {
				if p == nil {
					p = newPeer(t)
				}
				p.send(source, amqp.NewMessage(payload))
			},
			Listen: func(_ *testing.T, target string) func() [][]byte {
				return a.Drain(strings.TrimPrefix(target, "/queue/"))
			},
			Shape: Spec.Shape,
		}
	})
}
