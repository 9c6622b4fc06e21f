package mqtt

import (
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/client/clienttest/mosquitto"
	"github.com/dittoconn/dittoconn/internal/model"
)

// The data plane keeps many publishes in flight through PublishAsync; it
// must go through the lifecycle's state like Publish.
func TestIntegrationPublishAsync(t *testing.T) {
	clienttest.NeedBroker(t, mosquitto.Addr)
	conn := &model.Connection{ID: "async-" + time.Now().Format("150405.000000000"), ConnectionType: model.TypeMQTT,
		URI: "tcp://" + mosquitto.Addr, Targets: []model.Target{{Address: "dittoconn/test/async"}}, ClientCount: 1}
	c, _ := clienttest.NewClient(t, New, conn)
	ap, ok := c.(client.AsyncPublisher)
	if !ok {
		t.Fatalf("%T is not an AsyncPublisher", c)
	}
	wait := func(p client.Pending) error {
		t.Helper()
		select {
		case <-p.Done():
			return p.Err()
		case <-time.After(5 * time.Second):
			t.Fatal("publish not done in 5 s")
			return nil
		}
	}
	if err := wait(ap.PublishAsync(client.Message{Address: "dittoconn/test/async"})); err == nil {
		t.Fatal("PublishAsync before Connect succeeded")
	}
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	qos := 1
	if err := wait(ap.PublishAsync(client.Message{Address: "dittoconn/test/async", QoS: &qos, Payload: []byte("x")})); err != nil {
		t.Fatalf("PublishAsync: %v", err)
	}
	if err := c.Close(clienttest.Context(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	if err := wait(ap.PublishAsync(client.Message{Address: "dittoconn/test/async"})); err == nil {
		t.Fatal("PublishAsync after Close succeeded")
	}
}

func TestIntegrationSeparatePublisher(t *testing.T) { mosquitto.SeparatePublisher(t, Spec) }
