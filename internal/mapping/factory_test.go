package mapping

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Ditto's validatePayloadMappings instantiates every mapping definition: a
// configuration that fails (MessageMapperConfigurationFailedException, a JSON
// error) refuses the connection as connection.configuration.invalid, named or
// not; invalid options (MessageMapperConfigurationInvalidException) or an
// unknown engine leave the definition out, and only a payloadMapping naming it
// fails with "could not be loaded".
func TestValidatorInstantiatesEveryMappingDefinition(t *testing.T) {
	big := "var x = '" + strings.Repeat("a", 50001) + "';"
	bigJSON, _ := json.Marshal(big)
	refused := []struct {
		name    string
		def     model.MappingDefinition
		message string
	}{
		{"Normalized fields with an open parenthesis", defOf("Normalized", `{"fields":"foo(bar"}`),
			"The field selector <foo(bar> is invalid!"},
		{"Normalized fields with consecutive slashes", defOf("Normalized", `{"fields":"a//b"}`),
			"The JSON pointer <a//b> is invalid!"},
		{"JavaScript syntax error", defOf("JavaScript", `{"incomingScript":"function mapToDittoProtocolMsg( {"}`), ""},
		{"JavaScript over the size limit", defOf("JavaScript", `{"incomingScript":`+string(bigJSON)+`}`),
			"The script size was bigger than the allowed <50000> bytes"},
	}
	f := Factory{Config: testConfig()}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			for _, referenced := range []bool{true, false} {
				c := connWithMapping(tc.def, referenced)
				err := (&model.Check{Conn: c, Config: model.ValidationConfig{Mappers: f}}).PayloadMappings()
				de, ok := ditto.As(err)
				if !ok || de.Status != 400 || de.Code != ditto.CodeConfigurationInvalid {
					t.Fatalf("referenced=%v: err = %v, want 400 %s", referenced, err, ditto.CodeConfigurationInvalid)
				}
				if !strings.Contains(de.Message, tc.message) {
					t.Fatalf("message %q lacks %q", de.Message, tc.message)
				}
			}
		})
	}
	left := []struct {
		name string
		def  model.MappingDefinition
	}{
		{"ConnectionStatus with an invalid thingId", defOf("ConnectionStatus", `{"thingId":"no namespace"}`)},
		{"ConnectionStatus without thingId", defOf("ConnectionStatus", `{}`)},
		{"ImplicitThingCreation without thing", defOf("ImplicitThingCreation", `{}`)},
		{"unknown engine", defOf("Protobuf", `{}`)},
	}
	for _, tc := range left {
		t.Run(tc.name, func(t *testing.T) {
			check := func(referenced bool) error {
				c := connWithMapping(tc.def, referenced)
				return (&model.Check{Conn: c, Config: model.ValidationConfig{Mappers: f}}).PayloadMappings()
			}
			if err := check(false); err != nil {
				t.Fatalf("unreferenced: %v", err)
			}
			de, ok := ditto.As(check(true))
			if !ok || de.Code != ditto.CodeConfigurationInvalid || de.Message != "The mapper <m> could not be loaded." ||
				!strings.Contains(de.Description, "mappingDefinitions names [] or fallback mapper names") {
				t.Fatalf("referenced: %+v", de)
			}
		})
	}
	// A valid definition configures and may be named.
	c := connWithMapping(defOf("ConnectionStatus", `{"thingId":"ns:device"}`), true)
	if err := (&model.Check{Conn: c, Config: model.ValidationConfig{Mappers: f}}).PayloadMappings(); err != nil {
		t.Fatal(err)
	}
}

// connWithMapping is a connection with the definition "m", named by its
// source's payloadMapping when referenced.
func connWithMapping(def model.MappingDefinition, referenced bool) *model.Connection {
	s := model.Source{Addresses: []string{"q"}}
	if referenced {
		s.PayloadMapping = []string{"m"}
	}
	return &model.Connection{ID: "c1", Sources: []model.Source{s},
		MappingDefinitions: map[string]model.MappingDefinition{"m": def}}
}

// The data plane builds its registry as the validator sees it: a definition
// left out does not stop the others, a failing one stops the registry.
func TestRegistryLeavesOutInvalidDefinitions(t *testing.T) {
	r, err := NewRegistry(map[string]model.MappingDefinition{
		"cs": defOf("ConnectionStatus", `{}`), "n": defOf("Normalized", `{}`)}, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if r.Known("cs") || !r.Known("n") {
		t.Fatalf("known cs=%v n=%v", r.Known("cs"), r.Known("n"))
	}
	if _, err := NewRegistry(map[string]model.MappingDefinition{"n": defOf("Normalized", `{"fields":"foo(bar"}`)}, testConfig()); err == nil {
		t.Fatal("a failing definition built a registry")
	}
}
