package hono

import (
	"net"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the Hono rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	blocked := model.DefaultValidationConfig()
	blocked.BlockedHostnames = []string{"localhost"}
	blocked.LookupIP = func(string) ([]net.IP, error) { return []net.IP{net.ParseIP("127.0.0.1")}, nil }
	clienttest.RunValidation(t, NewSpec(testConfig, client.Spec{}), []clienttest.ValidationCase{
		{Name: "hono source alias", JSON: clienttest.Conn("hono", "", `{"addresses":["nope"],`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided source address <nope> is invalid."}},
		{Name: "hono target", JSON: clienttest.Conn("hono", "", "", `{"address":"x",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The provided target address <x> is invalid. It should be <command>."}},
		{Name: "hono qos", JSON: clienttest.Conn("hono", "", `{"addresses":["event"],"qos":2,`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"Invalid source 'qos' value <2>."}},
		{Name: "hono debugEnabled with an issued acknowledgement", JSON: clienttest.Conn("hono", "", "", `{"address":"command","issuedAcknowledgementLabel":"c1:done",`+clienttest.AC+`}`, `,"specificConfig":{"debugEnabled":"true"}`)},
		{Name: "hono debugEnabled without one", JSON: clienttest.Conn("hono", "", "", `{"address":"command",`+clienttest.AC+`}`, `,"specificConfig":{"debugEnabled":"true"}`)},
		{Name: "hono without uri", JSON: `{"id":"h1","connectionType":"hono","connectionStatus":"open",
		 "sources":[{"addresses":["telemetry"],"authorizationContext":["a:b"],"qos":1}]}`},
		// the shared rules ask the Spec: a Hono URI's host is not checked against the blocked hosts
		{Name: "hono host not checked", JSON: clienttest.Conn("hono", "amqp://localhost:5672", `{"addresses":["telemetry"],`+clienttest.AC+`}`, "", ""), Config: &blocked},
	})
}

// TestValidateNotConfigured: without the service's Hono settings a hono
// connection is refused, never stored and left idle.
func TestValidateNotConfigured(t *testing.T) {
	clienttest.RunValidation(t, NewSpec(DefaultConfig(), client.Spec{}), []clienttest.ValidationCase{
		{Name: "hono not configured", JSON: clienttest.Conn("hono", "", `{"addresses":["telemetry"],`+clienttest.AC+`}`, "", ""),
			Status: 400, Code: ditto.CodeConfigurationInvalid,
			Parts: []string{"Connections of type <hono> are not available", "HONO_CONNECTION_BOOTSTRAP_SERVERS"}},
	})
}
