package mapping

import (
	"errors"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Factory instantiates mapping definitions for the connection validator
// (model.MapperFactory), as Ditto's validatePayloadMappings does with its
// DefaultMessageMapperFactory. Each call builds a mapper and drops it, so a
// JavaScript definition costs one script compilation per validation.
type Factory struct{ Config Config }

// Configure implements model.MapperFactory.
func (f Factory) Configure(connectionID, id string, def model.MappingDefinition) (bool, error) {
	cfg := f.Config
	cfg.ConnectionID = connectionID
	_, err := New(id, def, cfg)
	if err == nil {
		return true, nil
	}
	var failed *configFailure
	if errors.As(err, &failed) {
		return false, ditto.ConfigurationInvalidDesc(failed.message, failed.description)
	}
	// An unknown engine or invalid options: Ditto leaves the definition out.
	return false, nil
}
