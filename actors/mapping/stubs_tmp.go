package mapping

import "github.com/dittoconn/dittoconn/actors/protocol"

// pending stands in for engines still being written.
type pending struct{}

func (pending) MapIncoming(protocol.External) ([]protocol.Message, error) {
	return nil, mappingFailed("engine not implemented yet")
}
func (pending) MapOutgoing(protocol.Message) ([]protocol.External, error) {
	return nil, mappingFailed("engine not implemented yet")
}

const rawDefaults = ""
const updateTwinDefaults = ""

func newNormalizedMapper(string, Options, Config) (Mapper, error)            { return pending{}, nil }
func newRawMessageMapper(string, Options, Config) (Mapper, error)            { return pending{}, nil }
func newConnectionStatusMapper(string, Options, Config) (Mapper, error)      { return pending{}, nil }
func newImplicitThingCreationMapper(string, Options, Config) (Mapper, error) { return pending{}, nil }
func newUpdateTwinMapper(string, Options, Config) (Mapper, error)            { return pending{}, nil }
func newCloudEventsMapper(string, Options, Config) (Mapper, error)           { return pending{}, nil }
