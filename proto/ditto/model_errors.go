package ditto

import (
	"fmt"
	"net/http"
)

// Error codes used by the connection model (internal/model).
const (
	CodeRQLInvalid                 = "rql.expression.invalid"
	CodeJSONPointerInvalid         = "json.pointer.invalid"
	CodeThingFieldSelectionInvalid = "things:field.selection.invalid"
)

// ConfigurationInvalidDesc is 400 connectivity:connection.configuration.invalid
// with a specific description (Ditto sets one on most validator failures).
func ConfigurationInvalidDesc(message, description string) *Error {
	return New(http.StatusBadRequest, CodeConfigurationInvalid, message, description)
}

// URIInvalidDesc is 400 connectivity:connection.uri.invalid with a custom
// message and description (scheme checks of the protocol validators).
func URIInvalidDesc(message, description string) *Error {
	return New(http.StatusBadRequest, CodeURIInvalid, message, description)
}

// TopicInvalid is 400 connectivity:topic.invalid (TopicParseException).
func TopicInvalid(topic, hint string) *Error {
	return New(http.StatusBadRequest, CodeTopicInvalid,
		fmt.Sprintf("The topic '%s' could not be parsed.", topic),
		fmt.Sprintf("'%s' - check if the format is the expected one.", hint))
}

// AckLabelInvalid is 400 acknowledgement:label.invalid. An empty description
// gives Ditto's default one.
func AckLabelInvalid(label, description string) *Error {
	if description == "" {
		description = "An acknowledgement label must conform to the regular expression of Ditto documentation."
	}
	return New(http.StatusBadRequest, CodeAckLabelInvalid,
		fmt.Sprintf("Acknowledgement label <%s> is invalid.", label), description)
}

// AckLabelNotUnique is 409 acknowledgement:label.not.unique for issued labels
// used by more than one target.
func AckLabelNotUnique() *Error {
	return New(http.StatusConflict, CodeAckLabelNotUnique,
		"An issued acknowledgement label may only be used for one target of the connection.",
		"Please choose unique suffixes for your configured issued acknowledgement labels.")
}

// RQLInvalid is 400 rql.expression.invalid.
func RQLInvalid(message string) *Error {
	if message == "" {
		message = "The given RQL expression was invalid"
	}
	return New(http.StatusBadRequest, CodeRQLInvalid, message,
		"Ensure that all opening parentheses have also closing ones and that the RQL expression is valid.")
}

// FieldSelectorInvalid is 400 json.fieldselector.invalid.
func FieldSelectorInvalid(selector string) *Error {
	return New(http.StatusBadRequest, CodeJSONFieldSelectorInvalid,
		fmt.Sprintf("The field selector <%s> is invalid!", selector),
		"Check, for example, if the amount of opening parentheses '(' matches the amount of closing ones ')'.")
}

// PointerConsecutiveSlashes is 400 json.pointer.invalid for a JSON pointer
// with "//" (JsonPointerInvalidException.newBuilderForConsecutiveSlashes).
func PointerConsecutiveSlashes(pointer string) *Error {
	return New(http.StatusBadRequest, CodeJSONPointerInvalid,
		fmt.Sprintf("The JSON pointer <%s> is invalid!", pointer),
		"Consecutive slashes in JSON pointers are not supported.")
}

// ThingFieldSelectionInvalid is 400 things:field.selection.invalid
// (InvalidThingFieldSelectionException): a selector naming something other
// than a thing's fields. validFields is Ditto's list as Java prints it.
func ThingFieldSelectionInvalid(selection, validFields string) *Error {
	return New(http.StatusBadRequest, CodeThingFieldSelectionInvalid,
		fmt.Sprintf("Thing field selection <%s> was not valid.", selection),
		"Please provide a comma separated List of valid Thing fields. "+
			"Make sure that you did not use a space after a comma. Valid Fields are: "+validFields)
}
