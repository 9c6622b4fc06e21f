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
	})
}
