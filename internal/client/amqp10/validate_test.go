package amqp10

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the AMQP 1.0 rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	amqpTgt := `{"address":"x","topics":["_/_/things/twin/events"],` + clienttest.AC + `}`
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "amqp scheme", JSON: clienttest.Conn("amqp-10", "tcp://h:5672", "", amqpTgt, ""), Status: 400, Code: ditto.CodeURIInvalid, Parts: []string{"The URI scheme 'tcp' is not valid for AMQP 1.0."}},
		// the shared rules ask the Spec: AMQP 1.0 signs with az-sasl only, takes no OAuth
		{Name: "hmac only az-sasl", JSON: clienttest.Conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"credentials":{"type":"hmac","algorithm":"aws4-hmac-sha256","parameters":{}}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Unsupported HMAC algorithm: aws4-hmac-sha256", "Supported algorithms: az-sasl"}},
		{Name: "hmac az-sasl", JSON: clienttest.Conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"credentials":{"type":"hmac","algorithm":"az-sasl","parameters":{}}`)},
		{Name: "oauth on amqp", JSON: clienttest.Conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"credentials":{"type":"oauth-client-credentials","tokenEndpoint":"https://a:443/t","clientId":"c","clientSecret":"s","requestedScopes":"x"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"OAuth client credentials are only supported for HTTP connection type."}},
	})
}

// TestValidateRefusesUnsupportedJMSOptions: Ditto passes any specificConfig
// key to Qpid JMS; the keys this client acts on pass, any other is refused
// with Ditto's configuration error instead of being stored and ignored.
func TestValidateRefusesUnsupportedJMSOptions(t *testing.T) {
	amqpTgt := `{"address":"x","topics":["_/_/things/twin/events"],` + clienttest.AC + `}`
	conn := func(sc string) string {
		return clienttest.Conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"specificConfig":`+sc)
	}
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "honoured keys", JSON: conn(`{"jms.clientID":"c","jms.connectTimeout":"1000","jms.sendTimeout":"1000","jms.requestTimeout":"1000","jms.prefetchPolicy.all":"5","jms.username":"u","jms.password":"p","amqp.saslMechanisms":"PLAIN","jms.queuePrefix":"q.","jms.topicPrefix":"t.","transport.trustAll":"false","transport.verifyHost":"true"}`)},
		{Name: "qpid idle timeout", JSON: conn(`{"amqp.idleTimeout":"0"}`), Status: 400, Code: ditto.CodeConfigurationInvalid,
			Parts: []string{"The specific config 'amqp.idleTimeout' is not supported for AMQP 1.0 connections.", "jms.clientID"}},
		// failoverEnabled defaults to true, as in Ditto
		{Name: "failover options", JSON: conn(`{"jms.clientID":"c","failover.initialReconnectDelay":"10","failover.reconnectDelay":"20","failover.maxReconnectDelay":"1000","failover.useReconnectBackOff":"true","failover.reconnectBackOffMultiplier":"1.5","failover.maxReconnectAttempts":"3","failover.startupMaxReconnectAttempts":"2","failover.warnAfterReconnectAttempts":"5","failover.randomize":"false"}`)},
		{Name: "failover option without failover", JSON: clienttest.Conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"failoverEnabled":false,"specificConfig":{"failover.maxReconnectAttempts":"3"}`), Status: 400, Code: ditto.CodeConfigurationInvalid,
			Parts: []string{"The specific config 'failover.maxReconnectAttempts' needs 'failoverEnabled' to be true."}},
		{Name: "failover server list", JSON: conn(`{"failover.amqpOpenServerListAction":"IGNORE"}`), Status: 400, Code: ditto.CodeConfigurationInvalid,
			Parts: []string{"The specific config 'failover.amqpOpenServerListAction' is not supported for AMQP 1.0 connections."}},
		{Name: "failover nested", JSON: conn(`{"failover.nested.amqp.idleTimeout":"0"}`), Status: 400, Code: ditto.CodeConfigurationInvalid,
			Parts: []string{"'failover.nested.amqp.idleTimeout' is not supported"}},
	})
}
