package dittoemu

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// typedHeaders are the Ditto headers whose value is not a JSON string on the
// wire (DittoHeaderDefinition: requested-acks and declared-acks are JSON
// arrays, response-required and ditto-weak-ack booleans, version an integer).
// protocol.Message keeps every header as a string, so encode writes these raw.
var typedHeaders = map[string]func(json.RawMessage) bool{
	"requested-acks":    isArray,
	"declared-acks":     isArray,
	"response-required": isBool,
	"ditto-weak-ack":    isBool,
	"version":           isNumber,
}

func isArray(r json.RawMessage) bool { return len(r) > 0 && r[0] == '[' }
func isBool(r json.RawMessage) bool  { s := string(r); return s == "true" || s == "false" }
func isNumber(r json.RawMessage) bool {
	_, err := strconv.Atoi(string(r))
	return err == nil
}

// encode writes m as the gateway writes a Ditto Protocol message on /ws/2.
func encode(m *protocol.Message) []byte {
	var b bytes.Buffer
	b.WriteString(`{"topic":`)
	writeString(&b, m.Topic)
	b.WriteString(`,"headers":{`)
	first := true
	for _, k := range sortedKeys(m.Headers) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeString(&b, k)
		b.WriteByte(':')
		v := m.Headers[k]
		if ok := typedHeaders[k]; ok != nil && json.Valid([]byte(v)) && ok(json.RawMessage(v)) {
			b.WriteString(v)
		} else {
			writeString(&b, v)
		}
	}
	b.WriteString(`},"path":`)
	p := m.Path
	if p == "" {
		p = "/"
	}
	writeString(&b, p)
	raw := func(name string, v json.RawMessage) {
		if len(v) == 0 {
			return
		}
		b.WriteString(`,"` + name + `":`)
		if err := json.Compact(&b, v); err != nil {
			writeString(&b, string(v))
		}
	}
	raw("value", m.Value)
	raw("extra", m.Extra)
	if m.Status != 0 {
		b.WriteString(`,"status":` + strconv.Itoa(m.Status))
	}
	if m.Revision != 0 {
		b.WriteString(`,"revision":` + strconv.FormatInt(m.Revision, 10))
	}
	if m.Timestamp != "" {
		b.WriteString(`,"timestamp":`)
		writeString(&b, m.Timestamp)
	}
	if m.Fields != "" {
		b.WriteString(`,"fields":`)
		writeString(&b, m.Fields)
	}
	b.WriteByte('}')
	return b.Bytes()
}

func writeString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

func sortedKeys(h map[string]string) []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	for i := 1; i < len(keys); i++ {
		for j := i; j > 0 && keys[j] < keys[j-1]; j-- {
			keys[j], keys[j-1] = keys[j-1], keys[j]
		}
	}
	return keys
}

// headerList reads a list-valued header (requested-acks): Ditto writes a JSON
// array; the HTTP form is comma-separated, which Ditto's header parsing also accepts.
func headerList(v string) []string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") {
		var out []string
		if json.Unmarshal([]byte(v), &out) == nil {
			return out
		}
		return nil
	}
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func listHeader(labels []string) string {
	b, _ := json.Marshal(labels)
	if labels == nil {
		return "[]"
	}
	return string(b)
}

// parseTimeout reads Ditto's duration header: "42s", "250ms", "1m" or a bare
// number of seconds.
func parseTimeout(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	unit := time.Second
	switch {
	case strings.HasSuffix(v, "ms"):
		unit, v = time.Millisecond, strings.TrimSuffix(v, "ms")
	case strings.HasSuffix(v, "s"):
		v = strings.TrimSuffix(v, "s")
	case strings.HasSuffix(v, "m"):
		unit, v = time.Minute, strings.TrimSuffix(v, "m")
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	return time.Duration(n) * unit, true
}

// Ditto's errors the emulator answers with; messages and descriptions are
// Ditto's exception templates (things/model ...exceptions, base/model acks).
const (
	descThing     = "Check if the ID of your requested Thing was correct and you have sufficient permissions."
	descThingOnly = "Check if the ID of the Thing was correct and you have sufficient permissions."
)

func errThingNotFound(id string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:thing.notfound",
		fmt.Sprintf("The Thing with ID '%s' could not be found or requester had insufficient permissions to access it.", id), descThing)
}

func errThingNotModifiable(id string) *ditto.Error {
	return ditto.New(http.StatusForbidden, "things:thing.notmodifiable",
		fmt.Sprintf("The Thing with ID '%s' could not be modified as the requester had insufficient permissions (WRITE is required).", id), descThing)
}

func errThingNotDeletable(id string) *ditto.Error {
	return ditto.New(http.StatusForbidden, "things:thing.notdeletable",
		fmt.Sprintf("The Thing with ID '%s' could not be deleted as the requester had insufficient permissions ( WRITE on root resource is required).", id), descThing)
}

func errThingConflict(id string) *ditto.Error {
	return ditto.New(http.StatusConflict, "things:thing.conflict", fmt.Sprintf("The Thing with ID '%s' already exists", id), "Choose another Thing ID")
}

func errThingIDNotSettable() *ditto.Error {
	return ditto.New(http.StatusBadRequest, "things:id.notsettable",
		"The Thing ID in the thing JSON is not equal to the Thing ID in the topic path.",
		"Either delete the Thing ID from the thing JSON or use the same Thing ID as in the topic path.")
}

func errAttributeNotFound(id, key string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:attribute.notfound",
		fmt.Sprintf("The attribute with key '%s' on the thing with ID '%s' could not be found or the requester had insufficient permissions to access it.", key, id),
		"Check if the ID of the thing and the key of your requested attribute was correct and you have sufficient permissions.")
}

func errAttributeNotModifiable(id, key string) *ditto.Error {
	return ditto.New(http.StatusForbidden, "things:attribute.notmodifiable",
		fmt.Sprintf(" The Attribute with name '%s' on the Thing with ID '%s' could not be modified as the requester had insufficient permissions (WRITE is required).", key, id), descThing)
}

func errAttributesNotFound(id string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:attributes.notfound",
		fmt.Sprintf("The Attributes of the Thing with ID '%s' could not be found or the requester had insufficient permissions to access it.", id), descThingOnly)
}

func errFeaturesNotFound(id string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:features.notfound",
		fmt.Sprintf("The Features on the Thing with ID '%s' do not exist or the requester had insufficient permissions to access it.", id), descThingOnly)
}

func errFeatureNotFound(id, feature string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:feature.notfound",
		fmt.Sprintf("The Feature with ID '%s' on the Thing with ID '%s' could not be found or the requester had insufficient permissions to access it.", feature, id),
		"Check if the ID of the Thing and the ID of your requested Feature was correct and you have sufficient permissions.")
}

func errFeaturePropertiesNotFound(id, feature string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:feature.properties.notfound",
		fmt.Sprintf("The Properties of the Feature with ID '%s' on the Thing with ID '%s' do not exist or the requester had insufficient permissions to access it.", feature, id),
		"Check if the ID of the Thing and the Feature ID was correct and you have sufficient permissions.")
}

func errFeaturePropertyNotFound(id, feature, ptr string) *ditto.Error {
	return ditto.New(http.StatusNotFound, "things:feature.property.notfound",
		fmt.Sprintf("The Property with JSON Pointer '%s' of the Feature with ID '%s' on the Thing with ID '%s' does not exist or the requester had insufficient permissions to access it.", ptr, feature, id),
		"Check if the ID of the Thing, the Feature ID and the key of your requested property was correct and you have sufficient permissions.")
}

func errAckTimeout(d time.Duration) *ditto.Error {
	return ditto.New(http.StatusRequestTimeout, "acknowledgement:request.timeout",
		fmt.Sprintf("The acknowledgement request reached the specified timeout of %sms.", ditto.GroupThousands(d.Milliseconds())),
		"Try increasing the timeout and make sure that the requested acknowledgement is sent back in time.")
}

func errAckLabelNotUnique() *ditto.Error {
	return ditto.New(http.StatusConflict, ditto.CodeAckLabelNotUnique,
		"One or more declared acknowledgement labels are taken by other subscribers.",
		"Please ensure all other subscribers with the declared acknowledgement labels are offline.")
}

func errAckLabelNotDeclared(label string) *ditto.Error {
	return ditto.New(http.StatusBadRequest, "acknowledgement:label.not.declared",
		fmt.Sprintf("Cannot send acknowledgement with label <%s>, which is not declared.", label),
		"Each connection may only send acknowledgements whose label matches one declared for the connection.")
}

// errAcksWithoutResponse answers m with the WebSocket-specific
// DittoHeaderInvalidException of StreamingSessionActor.checkForAcksWithoutResponse.
func errAcksWithoutResponse(t protocol.Topic, m *protocol.Message) *protocol.Message {
	return errHeaderInvalid(t, m, "requested-acks",
		"For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.",
		"Please set 'requested-acks' to [] or 'response-required' to true.")
}

// errHeaderInvalid answers m with Ditto's DittoHeaderInvalidException for
// key. Ditto adds "invalidHeaderKey" to its JSON, which ditto.Error has no
// field for, so the value is built by hand.
func errHeaderInvalid(t protocol.Topic, m *protocol.Message, key, message, description string) *protocol.Message {
	v, _ := json.Marshal(map[string]any{
		"status": http.StatusBadRequest, "error": "header.invalid", "message": message, "description": description,
		"invalidHeaderKey": key,
	})
	er := protocol.ErrorResponse(t, corrOnly(m), nil)
	er.Status, er.Value = http.StatusBadRequest, v
	return er
}

func errSendNotAllowed(id string) *ditto.Error {
	return ditto.New(http.StatusForbidden, "messages:send.notallowed",
		fmt.Sprintf("You are not allowed to send messages for the Thing with id '%s'!", id),
		"Please make sure that the Thing exists and that you have WRITE permissions on the message resource in the policy of the Thing.")
}

func errAuthFailed(msg string) *ditto.Error {
	return ditto.New(http.StatusUnauthorized, "gateway:authentication.failed", msg, "Check if your credentials were correct.")
}

func errNamespaceNotAccessible() *ditto.Error {
	return ditto.New(http.StatusForbidden, "gateway:namespace.notaccessible", "Access to the namespace is not allowed.",
		"Check if your credentials provide access to the requested namespace.")
}

// errUnsupported marks what the emulator does not emulate: a test that hits it
// learns so at once instead of seeing an invented Ditto answer.
func errUnsupported(what string) *ditto.Error {
	return ditto.New(http.StatusNotImplemented, "dittoemu:unsupported", "The Ditto emulator does not implement "+what+".",
		"Extend test/dittoemu or test against a real Ditto.")
}
