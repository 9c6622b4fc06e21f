package dataplane

import (
	"fmt"
	"net/http"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Error codes of inbound processing failures sent to a source's reply target.
const (
	// CodeMappingFailed is Ditto's MessageMappingFailedException.
	CodeMappingFailed = "connectivity:message.mapping.failed"
	// CodeEnforcementFailed is Ditto's ConnectionSignalIdEnforcementFailedException.
	CodeEnforcementFailed = "connectivity:connection.id.enforcement.failed"
	// CodeTwinUnsupported is dittoconn's own: a twin command reached a
	// service that has no twin store.
	CodeTwinUnsupported = "connectivity:twin.command.unsupported"
)

func mappingFailed(contentType, reason string) *ditto.Error {
	return ditto.New(http.StatusBadRequest, CodeMappingFailed,
		fmt.Sprintf("The external message with content-type '%s' could not be mapped.", contentType), reason)
}

func enforcementFailed(input string) *ditto.Error {
	return ditto.New(http.StatusBadRequest, CodeEnforcementFailed,
		fmt.Sprintf("The configured filters could not be matched against the given target with ID '%s'.", input),
		"Check the enforcement filters of the source, or send the message with a matching ID.")
}

func twinUnsupported(topic string) *ditto.Error {
	return ditto.New(http.StatusNotImplemented, CodeTwinUnsupported,
		fmt.Sprintf("The twin command with topic '%s' cannot be processed: this connectivity service has no twin store.", topic),
		"Send live commands, live messages or events instead; twin commands need Eclipse Ditto's things service.")
}
