package ditto

import (
	"fmt"
	"net/http"
	"strings"
)

// Error codes of the HTTP API for connections (/api/2/connections).
const (
	CodePreconditionFailed = "connectivity:precondition.failed"
	// CodeOptionInvalid is dittoconn's own: Ditto has no paging on
	// /api/2/connections, so it has no code for a bad paging option.
	CodeOptionInvalid = "connectivity:option.invalid"
	// CodeMediaTypeUnsupported is a general Ditto code, without prefix.
	CodeMediaTypeUnsupported = "mediatype.unsupported"
)

// IDNotSettable is 400 connectivity:id.notsettable for an id in the body of
// POST /api/2/connections, which generates the id itself, and for a PUT
// whose body id differs from the URL's: Ditto's route answers both with
// this one error (ConnectionsRoute.buildConnectionForPut).
func IDNotSettable() *Error {
	return New(http.StatusBadRequest, CodeIDNotSettable,
		"It is not allowed to provide an explicit ID for a connection.",
		"Remove the ID from the connection as it will be generated.")
}

// MediaTypeUnsupported is 415 mediatype.unsupported: the request's media
// type is not one the resource reads. allowed is listed as Ditto lists it,
// a Java set printed with brackets.
func MediaTypeUnsupported(got string, allowed []string) *Error {
	return New(http.StatusUnsupportedMediaType, CodeMediaTypeUnsupported,
		fmt.Sprintf("The Media-Type <%s> is not supported for this resource.", got),
		fmt.Sprintf("Allowed Media-Types are: <[%s]>.", strings.Join(allowed, ", ")))
}

// PreconditionFailed is 412 connectivity:precondition.failed: a conditional
// header (If-None-Match) did not hold for the stored connection.
func PreconditionFailed(header, expected, actual string) *Error {
	return New(http.StatusPreconditionFailed, CodePreconditionFailed,
		fmt.Sprintf("The comparison of precondition header '%s' for the requested connection resource evaluated to false. Expected: '%s' not to match actual: '%s'.",
			header, expected, actual),
		"The comparison of the provided precondition header with the current ETag value of the requested connection resource evaluated to false. Check the value of your conditional header value.")
}

// CommandInvalid is 400 connectivity:command.invalid for a text body of
// POST /api/2/connections/{id}/command that names no supported command.
func CommandInvalid(command string) *Error {
	return New(http.StatusBadRequest, CodeCommandInvalid,
		fmt.Sprintf("The command <%s> is invalid or unknown.", command),
		"Send one of the supported connectivity commands.")
}

// ConnectionsAmountIllegal is 400 connectivity:connections.amount.illegal:
// listing more connections than the limit in one answer. Ditto's first
// version said "requested exceptions"; it says "connections" since commit
// 2ed264136c (July 2024) of ConnectionsAmountIllegalException.
func ConnectionsAmountIllegal(limit int) *Error {
	return New(http.StatusBadRequest, CodeConnectionsAmount,
		fmt.Sprintf("The amount of requested connections exceeds the limit of '%d'.", limit),
		"Please request less connection ids.")
}

// OptionInvalid is 400 connectivity:option.invalid for a malformed
// option=size(n),cursor(c) query parameter.
func OptionInvalid(message string) *Error {
	return New(http.StatusBadRequest, CodeOptionInvalid, message,
		"Use option=size(<1-200>),cursor(<cursor of the previous page>).")
}

// CommandTimeout is 408 command.timeout: the command got no answer within
// the request's timeout.
func CommandTimeout(timeoutMillis int64) *Error {
	return New(http.StatusRequestTimeout, CodeCommandTimeout,
		"The Command reached the specified timeout of "+GroupThousands(timeoutMillis)+"ms.",
		"Try increasing the command timeout.")
}

// ServiceUnavailable is 503 gateway:service.unavailable
// (GatewayServiceUnavailableException): the connectivity actors, or Ditto's
// gateway, could not be reached.
func ServiceUnavailable() *Error {
	return New(http.StatusServiceUnavailable, CodeServiceUnavailable,
		"The service you wanted to reach is currently not available.",
		"Please contact the service team if this happens again.")
}
