package amqp091

import (
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/rabbitmq"
	"github.com/dittoconn/dittoconn/internal/model"
)

func TestIntegrationConformance(t *testing.T) {
	clienttest.Run(t, func(t *testing.T) *clienttest.Harness {
		var a *rabbitmq.Admin
		adm := func() *rabbitmq.Admin {
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
				adm().Queue(in)
				adm().Queue(out)
				return in, "/" + out // the default exchange routes to the queue
			},
			Send: func(t *testing.T, source string, payload []byte) {
				adm().Publish("", source, amqp.Publishing{Body: payload})
			},
			Listen: func(_ *testing.T, target string) func() [][]byte { return adm().Drain(target[1:]) },
			Shape:  Spec.Shape,
		}
	})
}
