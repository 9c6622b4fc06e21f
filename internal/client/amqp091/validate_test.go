package amqp091

import (
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestValidate holds the AMQP 0.9.1 rules Spec registers to the answers
// Ditto gives.
func TestValidate(t *testing.T) {
	clienttest.RunValidation(t, Spec, []clienttest.ValidationCase{
		{Name: "amqp target placeholder", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ thing:nope }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The placeholder 'thing:nope' could not be resolved."}},
		{Name: "amqp unknown function", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ thing:id | fn:shout() }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The function <fn:shout()> is not known."}},
		// validation compiles with the run-time engine: signatures, pipeline length and the function that starts a pipeline count
		{Name: "amqp function signature", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ thing:id | fn:upper('a') }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The function signature of <fn:upper('a')> is invalid."}},
		{Name: "amqp first function unknown", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ fn:shout() }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The function <fn:shout()> is not known."}},
		{Name: "amqp too many functions", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ thing:id`+strings.Repeat(" | fn:upper()", 11)+` }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The function pipeline contained more than the allowed 10 functions."}},
		{Name: "amqp unknown argument placeholder", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ header:a | fn:default(thing:nope) }}",`+clienttest.AC+`}`, ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"The placeholder 'thing:nope' could not be resolved."}},
		{Name: "amqp pipe inside parentheses splits", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ header:x ) | fn:upper() }}",`+clienttest.AC+`}`, "")},
		{Name: "amqp split join format", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", "", `{"address":"x/{{ header:a | fn:split(',') | fn:join('-') }}/{{ header:j | fn:format('{a}') }}",`+clienttest.AC+`}`, "")},
		{Name: "amqp enforcement input", JSON: clienttest.Conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"enforcement":{"input":"{{ source:address }}","filters":[]},`+clienttest.AC+`}`, "", ""), Status: 400, Code: ditto.CodeConfigurationInvalid, Parts: []string{"source:address"}},
	})
}
