package blackbox

import (
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// MQTTPublisher is a plain MQTT client standing for a device.
func MQTTPublisher(t *testing.T, uri string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(uri).
		SetClientID(fmt.Sprintf("test-pub-%d", time.Now().UnixNano())).SetConnectTimeout(5 * time.Second))
	if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("test publisher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// PublishMQTT publishes payload at QoS 1 and waits for the broker's ack.
func PublishMQTT(t *testing.T, c paho.Client, topic string, payload string) {
	t.Helper()
	if tok := c.Publish(topic, 1, false, payload); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("publish to %s: %v", topic, tok.Error())
	}
}

// TwinEvent is a Ditto Protocol "modified" event of a feature property.
func TwinEvent(thing string, value int) string {
	ns, name, _ := strings.Cut(thing, ":")
	return fmt.Sprintf(`{"topic":"%s/%s/things/twin/events/modified","headers":{"correlation-id":"c-%s-%d"},`+
		`"path":"/features/temp/properties/value","value":%d,"revision":%d}`, ns, name, name, value, value, value)
}
