package kafka

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the Kafka rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	amqpTgt := `{"address":"x","topics":["_/_/things/twin/events"],` + clienttest.AC + `}`
	kafkaSC := `,"specificConfig":{"bootstrapServers":"k:9092"}`
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "kafka source topic", JSON: clienttest.Conn("kafka", "tcp://h:9092", `{"addresses":["bad topic"],`+clienttest.AC+`}`, "", kafkaSC), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided topic 'bad topic' is not valid"}},
		{Name: "kafka source qos", JSON: clienttest.Conn("kafka", "tcp://h:9092", `{"addresses":["t"],"qos":2,`+clienttest.AC+`}`, "", kafkaSC), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Configured 'qos' value was: <2>"}},
		{Name: "kafka partition", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", `{"address":"t#x",`+clienttest.AC+`}`, kafkaSC), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Can not parse partition number from x."}},
		{Name: "kafka empty key", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", `{"address":"t/",`+clienttest.AC+`}`, kafkaSC), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided key in your target address may not be empty."}},
		{Name: "kafka placeholder topic ok", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", `{"address":"t_{{ thing:id }}#{{ header:p }}",`+clienttest.AC+`}`, kafkaSC)},
		{Name: "kafka bootstrap", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", amqpTgt, `,"specificConfig":{"bootstrapServers":"nope"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided list of bootstrap servers 'nope' is not valid"}},
		{Name: "kafka sasl", JSON: clienttest.Conn("kafka", "tcp://u:p@h:9092", "", amqpTgt, `,"specificConfig":{"bootstrapServers":"k:9092","saslMechanism":"GSSAPI"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"invalid value for SASL mechanisms: <GSSAPI>"}},
		{Name: "kafka groupId", JSON: clienttest.Conn("kafka", "tcp://h:9092", `{"addresses":["t"],`+clienttest.AC+`}`, "", `,"specificConfig":{"bootstrapServers":"k:9092","groupId":"a b"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"consumer group ID"}},
		{Name: "kafka offset reset", JSON: clienttest.Conn("kafka", "tcp://h:9092", `{"addresses":["t"],`+clienttest.AC+`}`, "", `,"specificConfig":{"bootstrapServers":"k:9092","consumerOffsetReset":"middle"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Allowed values are: <[earliest, latest]>"}},
		// the shared rules ask the Spec: Kafka refuses SSH tunnels
		{Name: "kafka ssh tunnel", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", amqpTgt, kafkaSC+`,"sshTunnel":{"enabled":true,"credentials":{"type":"plain","username":"u","password":"p"},"validateHost":false,"uri":"ssh://s:22"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"SSH tunneling not supported.", "SSH tunneling is not supported for the connection type <kafka>."}},
	})
}

// In Ditto, debugEnabled (Boolean.parseBoolean) only turns a target's issued
// acknowledgement into a 200 with the Kafka record metadata
// (TestIntegrationDebugEnabledRecordMetadata); it is accepted with and
// without an issued label.
func TestKafkaDebugEnabledOnlyAffectsIssuedAcknowledgements(t *testing.T) {
	amqpTgt := `{"address":"x","topics":["_/_/things/twin/events"],` + clienttest.AC + `}`
	ackTgt := `{"address":"x","topics":["_/_/things/twin/events"],"issuedAcknowledgementLabel":"{{connection:id}}:done",` + clienttest.AC + `}`
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "kafka debugEnabled with issued acknowledgement", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", ackTgt, `,"specificConfig":{"bootstrapServers":"k:9092","debugEnabled":"TRUE"}`)},
		{Name: "kafka debugEnabled false with issued acknowledgement", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", ackTgt, `,"specificConfig":{"bootstrapServers":"k:9092","debugEnabled":"false"}`)},
		{Name: "kafka debugEnabled without issued acknowledgement", JSON: clienttest.Conn("kafka", "tcp://h:9092", "", amqpTgt, `,"specificConfig":{"bootstrapServers":"k:9092","debugEnabled":"true"}`)},
	})
}
