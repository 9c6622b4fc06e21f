package httppush

import (
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the HTTP push rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "http source", JSON: clienttest.Conn("http-push", "https://h:443", `{"addresses":["q"],`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"A connection of type 'http-push' may not have any source."}},
		{Name: "http scheme", JSON: clienttest.Conn("http-push", "tcp://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeURIInvalid, Parts: []string{"The URI scheme 'tcp' is not valid for HTTP."}},
		{Name: "http address format", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"nocolon",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Target of address 'nocolon' of connection 'c1': Target address has invalid format."}},
		{Name: "http method", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"HEAD:/x",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The method 'HEAD' is not supported"}},
		{Name: "http parallelism", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"specificConfig":{"parallelism":"0"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The configured value '0' of 'parallelism' is invalid."}},
		{Name: "http idle timeout", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"specificConfig":{"idleTimeout":"2m"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Idle timeout '120' is not within the allowed range of [0, 60] seconds."}},
		// a bare number is milliseconds, as Typesafe's getDuration reads it
		{Name: "http idle timeout bare millis over", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"specificConfig":{"idleTimeout":"61000"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Idle timeout '61' is not within the allowed range of [0, 60] seconds."}},
		{Name: "http idle timeout bare millis", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"specificConfig":{"idleTimeout":"120"}`)},
		{Name: "http omit body", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"specificConfig":{"omitRequestBody":"GET,FOO"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"It contains an invalid HTTP method: FOO"}},
		{Name: "oauth http endpoint", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"credentials":{"type":"oauth-client-credentials","tokenEndpoint":"http://a:80/t","clientId":"c","clientSecret":"s","requestedScopes":"x"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The OAuth2 token endpoint must be accessed via HTTPS"}},
		// the shared rules ask the Spec: HTTP push takes HMAC with the service's algorithms, and OAuth
		{Name: "hmac with userinfo", JSON: clienttest.Conn("http-push", "https://u:p@h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"credentials":{"type":"hmac","algorithm":"az-sasl","parameters":{}}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"There are conflicting authentication mechanisms."}},
		{Name: "hmac unknown algorithm", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"credentials":{"type":"hmac","algorithm":"md5","parameters":{}}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Unsupported HMAC algorithm: md5", "Supported algorithms: aws4-hmac-sha256, az-monitor-2016-04-01, az-sasl"}},
		{Name: "hmac configured algorithm", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"credentials":{"type":"hmac","algorithm":"aws4-hmac-sha256","parameters":{}}`)},
		{Name: "oauth bad scopes", JSON: clienttest.Conn("http-push", "https://h:443", "", `{"address":"POST:/x",`+clienttest.AC+`}`, `,"credentials":{"type":"oauth-client-credentials","tokenEndpoint":"https://a:443/t","clientId":"c","clientSecret":"s","requestedScopes":"a  b"}`), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Invalid format of requested scopes: a  b"}},
	})
}
