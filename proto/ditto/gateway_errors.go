package ditto

import (
	"fmt"
	"net/http"
	"strconv"
)

// Error codes raised by the HTTP edge (gateway).
const (
	// CodeTimeoutValueInvalid is sent when a timeout header is no duration at
	// all (Ditto's header validation); a parsable timeout outside the bounds is
	// CodeTimeoutInvalid ("gateway:timeout.invalid") instead.
	CodeTimeoutValueInvalid = "timeout.invalid"
	// CodeGatewayInternalError is Ditto's service-neutral internal error.
	CodeGatewayInternalError = "internalerror"
)

const (
	descJSONInvalid    = "Check if the JSON was valid (e.g. on https://jsonlint.com) and if it was in required format."
	descAskError       = "Please retry the performed action in order to improve resiliency."
	descTimeoutBounds  = "Choose a timeout inside the bounds."
	descTimeoutInvalid = "Please choose a valid timeout."
)

// JSONEmpty is 400 json.invalid for an empty request body.
func JSONEmpty() *Error {
	return New(http.StatusBadRequest, CodeJSONInvalid,
		"The JSON string to read from must not be empty!", descJSONInvalid)
}

// JSONParseFailed is 400 json.invalid for a body that is not JSON; Ditto
// quotes the whole body in the message.
func JSONParseFailed(text string) *Error {
	return New(http.StatusBadRequest, CodeJSONInvalid,
		fmt.Sprintf("Failed to parse JSON string '%s'!", text), descJSONInvalid)
}

// JSONNotAnObject is 400 json.invalid for JSON that is not an object.
func JSONNotAnObject(jsonText string) *Error {
	return New(http.StatusBadRequest, CodeJSONInvalid,
		fmt.Sprintf("<%s> is not a valid JSON object!", jsonText), descJSONInvalid)
}

// JSONWrongType is 400 json.invalid for a field whose value has the wrong JSON
// type; typeName is Ditto's Java type name ("String", "JsonObject").
func JSONWrongType(jsonText, pointer, typeName string) *Error {
	return New(http.StatusBadRequest, CodeJSONInvalid,
		fmt.Sprintf("Value <%s> for <%s> is not of type <%s>!", jsonText, pointer, typeName), descJSONInvalid)
}

// GatewayTimeoutInvalid is 400 gateway:timeout.invalid for a timeout outside
// 0..max. Ditto 3.9 formats both numbers with Java's MessageFormat, which
// groups thousands ("<70,000ms>"); Ditto 4 dropped the grouping.
func GatewayTimeoutInvalid(timeoutMillis, maxMillis int64) *Error {
	return New(http.StatusBadRequest, CodeTimeoutInvalid,
		fmt.Sprintf("The timeout <%sms> is not inside its allowed bounds <0ms - %sms>",
			GroupThousands(timeoutMillis), GroupThousands(maxMillis)),
		descTimeoutBounds)
}

// TimeoutValueInvalid is 400 timeout.invalid for a timeout that is no Ditto
// duration; message is the parser's complaint.
func TimeoutValueInvalid(message string) *Error {
	return New(http.StatusBadRequest, CodeTimeoutValueInvalid, message, descTimeoutInvalid)
}

// RequestEntityTooLarge is 413 gateway:request.entity.too.large. Ditto itself
// answers 413 with an empty body; dittoconn adds a JSON body so clients that
// parse every error still get a code.
func RequestEntityTooLarge(limitBytes int64) *Error {
	return New(http.StatusRequestEntityTooLarge, CodeEntityTooLarge,
		fmt.Sprintf("The request entity is larger than the allowed <%d> bytes.", limitBytes),
		"Send a smaller request body.")
}

// GatewayInternalError is 500 internalerror, for failures of the edge itself.
func GatewayInternalError() *Error {
	return New(http.StatusInternalServerError, CodeGatewayInternalError,
		"There was a rare case of an unexpected internal error.",
		"Please contact the service team or your administrator.")
}

// AskFailed is 503 ask.error: asking the target actor failed for a reason
// other than its deadline.
func AskFailed(message string) *Error {
	return New(http.StatusServiceUnavailable, CodeAskError, message, descAskError)
}

// GroupThousands renders n as Java's default (en) NumberFormat does: 60000 →
// "60,000".
func GroupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	if len(s) <= 3 {
		return sign + s
	}
	out := make([]byte, 0, len(s)+len(s)/3)
	lead := len(s) % 3
	if lead > 0 {
		out = append(out, s[:lead]...)
	}
	for i := lead; i < len(s); i += 3 {
		if len(out) > 0 {
			out = append(out, ',')
		}
		out = append(out, s[i:i+3]...)
	}
	return sign + string(out)
}
