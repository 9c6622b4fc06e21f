package mqtt5

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
)

// TestValidate holds the MQTT 5 rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "mqtt5 header enforcement ok, consumerCount ok", JSON: clienttest.Conn("mqtt-5", "tcp://h:1883", `{"addresses":["a"],"qos":1,"consumerCount":3,"enforcement":{"input":"{{ header:x }}","filters":["{{ thing:id }}"]},`+clienttest.AC+`}`, "", `,"clientCount":3`)},
	})
}
