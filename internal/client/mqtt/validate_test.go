package mqtt

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the MQTT 3.1.1 rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	mqttTgt := `{"address":"out/x","qos":1,"topics":["_/_/things/twin/events"],` + clienttest.AC + `}`
	mqttSrc := `{"addresses":["a/#"],"qos":1,` + clienttest.AC + `}`
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "mqtt scheme", JSON: clienttest.Conn("mqtt", "amqp://h:1883", mqttSrc, "", ""), Status: 400, Code: ditto.CodeURIInvalid, Parts: []string{"The URI scheme 'amqp' is not valid for MQTT 3.1.1.", "Accepted URI schemes are: tcp, ssl"}},
		{Name: "mqtt ca insecure", JSON: clienttest.Conn("mqtt", "tcp://h:1883", mqttSrc, "", `,"ca":"-----BEGIN CERTIFICATE-----"`), Config: &model.ValidationConfig{MaxSources: 4, MaxTargets: 4, MaxSourceMappers: 10, MaxTargetMappers: 10}, Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"/ca: bad format"}},
		{Name: "mqtt client count", JSON: clienttest.Conn("mqtt", "tcp://h:1883", mqttSrc, "", `,"clientCount":2`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Client count limited to 1 for MQTT 3.1.1 connections."}},
		{Name: "mqtt source filter", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a/#/b"],"qos":1,`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided topic 'a/#/b' is not valid"}},
		{Name: "mqtt target wildcard", JSON: clienttest.Conn("mqtt", "tcp://h:1883", "", `{"address":"a/+","qos":1,`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided topic 'a/+' is not valid", "single level wildcard"}},
		{Name: "mqtt source qos missing", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"MQTT Source <Source of index 0 of connection 'c1'> must contain QoS value."}},
		{Name: "mqtt source qos range", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],"qos":3,`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Invalid value '3' for configuration 'qos' in Source of index 0 of connection 'c1'"}},
		{Name: "mqtt target qos missing", JSON: clienttest.Conn("mqtt", "tcp://h:1883", "", `{"address":"a",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"MQTT Target <Target of address 'a' of connection 'c1'> must contain QoS value."}},
		{Name: "mqtt enforcement input", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],"qos":1,"enforcement":{"input":"{{ header:x }}","filters":[]},`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Invalid value '{{ header:x }}' for configuration 'input'", "Valid placeholders are: 'source:address'"}},
		{Name: "mqtt consumer count", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],"qos":1,"consumerCount":2,`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Consumer count limited to 1 for MQTT 3.1.1 connections."}},
		{Name: "mqtt target header key", JSON: clienttest.Conn("mqtt", "tcp://h:1883", "", `{"address":"a","qos":0,"headerMapping":{"foo":"bar"},`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The header 'foo' is not allowed in MQTT 3.1.1 target header mapping."}},
		{Name: "mqtt source header placeholder", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],"qos":1,"headerMapping":{"x":"{{ header:foo }}"},`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The placeholder 'header:foo' could not be resolved."}},
		{Name: "mqtt keepAlive", JSON: clienttest.Conn("mqtt", "tcp://h:1883", mqttSrc, "", `,"specificConfig":{"keepAlive":"70000s"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Expected seconds of duration to be within [0, 65535] but it was <70000>."}},
		{Name: "mqtt lastWill qos", JSON: clienttest.Conn("mqtt", "tcp://h:1883", mqttSrc, "", `,"specificConfig":{"lastWillTopic":"lw","lastWillQos":"5"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"<5> is not a valid MQTT QoS code."}},
		{Name: "mqtt unknown mapper", JSON: clienttest.Conn("mqtt", "tcp://h:1883", `{"addresses":["a"],"qos":1,"payloadMapping":["nope"],`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The mapper <nope> could not be loaded."}},
		// the shared rules ask the Spec: MQTT takes no HMAC credentials
		{Name: "hmac on mqtt", JSON: clienttest.Conn("mqtt", "tcp://h:1883", "", mqttTgt, `,"credentials":{"type":"hmac","algorithm":"az-sasl","parameters":{}}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"HMAC credentials are not supported for the connection type."}},
	})
}
