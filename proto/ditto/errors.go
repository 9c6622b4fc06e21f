package ditto

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Error codes, exactly as Ditto sends them in the "error" field.
const (
	CodeConnectionNotFound       = "connectivity:connection.notfound"
	CodeConnectionConflict       = "connectivity:connection.conflict"
	CodeConfigurationInvalid     = "connectivity:connection.configuration.invalid"
	CodeConnectionIDInvalid      = "connectivity:connection.id.invalid"
	CodeIDNotSettable            = "connectivity:id.notsettable"
	CodeURIInvalid               = "connectivity:connection.uri.invalid"
	CodeConnectionUnavailable    = "connectivity:connection.unavailable"
	CodeConnectionFailed         = "connectivity:connection.failed"
	CodeConnectionTimeout        = "connectivity:connection.timeout"
	CodeConnectionUnauthorized   = "connectivity:connection.unauthorized"
	CodeCommandInvalid           = "connectivity:command.invalid"
	CodeConnectionsAmount        = "connectivity:connections.amount.illegal"
	CodeSignalIllegal            = "connectivity:signal.illegal"
	CodeInternalError            = "connectivity:internalerror"
	CodeTopicInvalid             = "connectivity:topic.invalid"
	CodeMapperConfigInvalid      = "connectivity:message.mapper.config.invalid"
	CodeMapperConfigFailed       = "connectivity:message.mapper.config.failed"
	CodeAckLabelInvalid          = "acknowledgement:label.invalid"
	CodeAckLabelNotUnique        = "acknowledgement:label.not.unique"
	CodePlaceholderUnresolved    = "placeholder:unresolved"
	CodePlaceholderFuncUnknown   = "placeholder:function.unknown"
	CodeAskError                 = "ask.error"
	CodeJSONTypeNotParsable      = "json.type.notparsable"
	CodeJSONFieldMissing         = "json.field.missing"
	CodeJSONInvalid              = "json.invalid"
	CodeJSONFormatInvalid        = "json.format.invalid"
	CodeJSONFieldSelectorInvalid = "json.fieldselector.invalid"
	CodeCommandTimeout           = "command.timeout"
	CodeTimeoutInvalid           = "gateway:timeout.invalid"
	CodeServiceUnavailable       = "gateway:service.unavailable"
	CodeEntityTooLarge           = "gateway:request.entity.too.large"
)

// Error is a Ditto error (DittoRuntimeException): it knows its HTTP status and
// serialises to Ditto's error JSON.
type Error struct {
	Status      int    `json:"status"`
	Code        string `json:"error"`
	Message     string `json:"message"`
	Description string `json:"description,omitempty"`
	Href        string `json:"href,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// JSON is Ditto's error JSON: status, error, message, description, href (empty
// ones left out).
// Like Ditto, it leaves <, > and & as they are (encoding/json would escape them).
func (e *Error) JSON() []byte {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(e) // cannot fail: strings and an int
	return bytes.TrimRight(buf.Bytes(), "\n")
}

// New builds an error from the catalogue.
func New(status int, code, message, description string) *Error {
	return &Error{Status: status, Code: code, Message: message, Description: description}
}

// As returns the *Error inside err, if there is one.
func As(err error) (*Error, bool) {
	var de *Error
	if errors.As(err, &de) {
		return de, true
	}
	return nil, false
}

// ConnectionNotFound is 404 connectivity:connection.notfound.
func ConnectionNotFound(id string) *Error {
	return New(http.StatusNotFound, CodeConnectionNotFound,
		fmt.Sprintf("The Connection with ID '%s' could not be found or requester had insufficient permissions to access it.", id),
		"Check if the ID of your requested Connection was correct and you have sufficient permissions.")
}

// ConnectionConflict is 409 connectivity:connection.conflict.
func ConnectionConflict(id string) *Error {
	return New(http.StatusConflict, CodeConnectionConflict,
		fmt.Sprintf("The Connection with ID '%s' was already created.", id),
		"If you need to update it, remove it first before creating it again.")
}

// ConfigurationInvalid is 400 connectivity:connection.configuration.invalid.
func ConfigurationInvalid(message string) *Error {
	return New(http.StatusBadRequest, CodeConfigurationInvalid, message,
		"Make sure all required properties are set and valid in the configuration.")
}

// ConnectionIDInvalid is 400 connectivity:connection.id.invalid.
func ConnectionIDInvalid(id string) *Error {
	return New(http.StatusBadRequest, CodeConnectionIDInvalid,
		fmt.Sprintf("The Connection ID '%s' is not valid.", id),
		"It must be conform to the regular expression: <"+ConnectionIDRegex+">.")
}

// URIInvalid is 400 connectivity:connection.uri.invalid with Ditto's format hint.
// The URI's user info is masked: the answer, and any log of it, must not
// carry the password (Ditto echoes the URI as given).
func URIInvalid(uri string) *Error {
	return New(http.StatusBadRequest, CodeURIInvalid,
		fmt.Sprintf("The Connection URI '%s' has an invalid format.", MaskUserInfo(uri)),
		"The accepted format is {protocol}://{username}:{password}@{hostname}:{port}/{path}")
}

// MaskUserInfo replaces what stands before the last '@' of a URI's
// authority (after "scheme://", or from the start without one) with "***":
// the URI may be too broken to parse, so this works on the text, and masks
// too much rather than too little.
func MaskUserInfo(uri string) string {
	start := 0
	if i := strings.Index(uri, "://"); i >= 0 {
		start = i + 3
	}
	at := strings.LastIndex(uri[start:], "@")
	if at < 0 {
		return uri
	}
	return uri[:start] + "***" + uri[start+at:]
}

// ConnectionUnavailable is 503 connectivity:connection.unavailable.
func ConnectionUnavailable(id string) *Error {
	return New(http.StatusServiceUnavailable, CodeConnectionUnavailable,
		fmt.Sprintf("The Connection with ID '%s' is not available, please try again later.", id),
		"The requested Connection is temporarily not available.")
}

// ConnectionFailed is 504 connectivity:connection.failed.
func ConnectionFailed(id, description string) *Error {
	return New(http.StatusGatewayTimeout, CodeConnectionFailed,
		fmt.Sprintf("The Connection with ID '%s' failed to connect.", id), description)
}

// InternalError is 500 connectivity:internalerror.
func InternalError(message string) *Error {
	return New(http.StatusInternalServerError, CodeInternalError, message,
		"Please contact the service team.")
}

// JSONFieldMissing is 400 json.field.missing for a JSON pointer such as "/connectionType".
func JSONFieldMissing(pointer string) *Error {
	return New(http.StatusBadRequest, CodeJSONFieldMissing,
		fmt.Sprintf("JSON did not include required <%s> field!", pointer),
		"Check if all required JSON fields were set.")
}

// JSONInvalid is 400 json.invalid: the text is not JSON (or not of the expected shape).
func JSONInvalid(message string) *Error {
	return New(http.StatusBadRequest, CodeJSONInvalid, message,
		"Check if the JSON was valid (e.g. on https://jsonlint.com) and if it was in required format.")
}

// JSONTypeNotParsable is 400 json.type.notparsable for a piggyback command type
// this service has no mapping strategy for.
func JSONTypeNotParsable(commandType string) *Error {
	return New(http.StatusBadRequest, CodeJSONTypeNotParsable,
		fmt.Sprintf("ExecutePiggybackCommand with PiggybackCommand <%s> cannot be executed by this service as there is no mapping strategy for it!", commandType),
		"Check if you sent the JSON with the correct type.")
}

// ErrNoRoute: no actor lives at the targeted actor path; Ditto's gateway then
// receives no answer at all.
var ErrNoRoute = errors.New("ditto: no actor at that path")
