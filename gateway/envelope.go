package gateway

import (
	"bytes"
	"encoding/json"
	"strings"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Envelope field names (ExecutePiggybackCommand's JSON).
const (
	fieldServiceName = "serviceName"
	fieldInstance    = "instance"
	fieldTarget      = "targetActorSelection"
	fieldHeaders     = "headers"
	fieldCommand     = "piggybackCommand"
	fieldType        = "type"
)

// envelope is a decoded piggyback request body.
type envelope struct {
	serviceName string // URL segment, else body field, else ""
	instance    string
	target      string
	// headers are the envelope's Ditto headers: lower-case keys, values as text.
	headers map[string]string
	// command is the piggybackCommand object exactly as sent.
	command json.RawMessage
	// commandType is the command's "type"; typeText is how Ditto prints it in
	// json.type.notparsable ("null" when absent).
	commandType string
	typeText    string
}

// decodeEnvelope validates a piggyback body in the order Ditto does
// (ExecutePiggybackCommand.fromJson): serviceName, instance,
// targetActorSelection, headers (incl. the timeout header), piggybackCommand.
// URL segments replace the body's serviceName/instance, as Ditto overwrites them.
func decodeEnvelope(body []byte, urlService, urlInstance string) (*envelope, *ditto.Error) {
	if len(body) == 0 {
		return nil, ditto.JSONEmpty()
	}
	if !json.Valid(body) {
		return nil, ditto.JSONParseFailed(string(body))
	}
	trimmed := bytes.TrimSpace(body)
	fields := map[string]json.RawMessage{}
	switch {
	case bytes.Equal(trimmed, []byte("null")):
		// Ditto reads the null literal as an empty object.
	case trimmed[0] != '{':
		// Ditto fails this with a bare 500; an operator is better served by a 400.
		return nil, ditto.JSONNotAnObject(compactJSON(trimmed))
	default:
		if err := json.Unmarshal(trimmed, &fields); err != nil {
			return nil, ditto.JSONParseFailed(string(body))
		}
	}

	env := &envelope{serviceName: urlService, instance: urlInstance}
	var derr *ditto.Error
	if urlService == "" {
		if env.serviceName, _, derr = optionalString(fields, fieldServiceName); derr != nil {
			return nil, derr
		}
	}
	if urlInstance == "" {
		if env.instance, _, derr = optionalString(fields, fieldInstance); derr != nil {
			return nil, derr
		}
	}
	target, present, derr := optionalString(fields, fieldTarget)
	if derr != nil {
		return nil, derr
	}
	if !present {
		return nil, ditto.JSONFieldMissing("/" + fieldTarget)
	}
	env.target = target

	rawHeaders, ok := fields[fieldHeaders]
	if !ok {
		return nil, ditto.JSONFieldMissing("/" + fieldHeaders)
	}
	if env.headers, derr = decodeHeaders(rawHeaders); derr != nil {
		return nil, derr
	}
	// Ditto validates header values while building the command's headers,
	// before it looks at piggybackCommand.
	if t, ok := env.headers[ditto.HeaderTimeout]; ok {
		if _, derr := parseTimeout(t); derr != nil {
			return nil, derr
		}
	}

	rawCmd, ok := fields[fieldCommand]
	if !ok {
		return nil, ditto.JSONFieldMissing("/" + fieldCommand)
	}
	switch kind := jsonKind(rawCmd); kind {
	case '{':
		env.command = rawCmd
	case 'n':
		// Ditto reads null as an empty object; the command then has no type.
		env.command = json.RawMessage("{}")
	default:
		return nil, ditto.JSONWrongType(compactJSON(rawCmd), "/"+fieldCommand, "JsonObject")
	}
	env.commandType, env.typeText = commandType(env.command)
	return env, nil
}

// optionalString reads a string field; null counts as absent, as in Ditto.
func optionalString(fields map[string]json.RawMessage, name string) (string, bool, *ditto.Error) {
	raw, ok := fields[name]
	if !ok || jsonKind(raw) == 'n' {
		return "", false, nil
	}
	var s string
	if jsonKind(raw) != '"' || json.Unmarshal(raw, &s) != nil {
		return "", false, ditto.JSONWrongType(compactJSON(raw), "/"+name, "String")
	}
	return s, true, nil
}

// decodeHeaders turns the envelope's headers object into Ditto headers:
// strings as they are, other values as their JSON text, nulls dropped, keys
// lower-cased (the later of two keys differing in case wins, in body order).
func decodeHeaders(raw json.RawMessage) (map[string]string, *ditto.Error) {
	headers := map[string]string{}
	switch jsonKind(raw) {
	case 'n':
		return headers, nil
	case '{':
	default:
		return nil, ditto.JSONWrongType(compactJSON(raw), "/"+fieldHeaders, "JsonObject")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // the opening brace
		return nil, ditto.JSONParseFailed(string(raw))
	}
	for dec.More() {
		keyTok, err := dec.Token()
		if err != nil {
			return nil, ditto.JSONParseFailed(string(raw))
		}
		key, _ := keyTok.(string)
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return nil, ditto.JSONParseFailed(string(raw))
		}
		switch jsonKind(value) {
		case 'n':
			continue
		case '"':
			var s string
			if err := json.Unmarshal(value, &s); err != nil {
				return nil, ditto.JSONParseFailed(string(raw))
			}
			headers[strings.ToLower(key)] = s
		default:
			headers[strings.ToLower(key)] = compactJSON(value)
		}
	}
	return headers, nil
}

// commandType returns the command's type and its text for error messages.
func commandType(cmd json.RawMessage) (string, string) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(cmd, &fields); err != nil {
		return "", "null"
	}
	raw, ok := fields[fieldType]
	if !ok || jsonKind(raw) == 'n' {
		return "", "null"
	}
	var s string
	if jsonKind(raw) == '"' && json.Unmarshal(raw, &s) == nil {
		return s, s
	}
	return "", compactJSON(raw)
}

// jsonKind returns the first byte of a JSON value: '{', '[', '"', 'n', 't',
// 'f' or a digit/minus.
func jsonKind(raw []byte) byte {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0
	}
	return raw[0]
}

// compactJSON prints a JSON value without insignificant whitespace, as
// Ditto's toString does in messages.
func compactJSON(raw []byte) string {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return string(bytes.TrimSpace(raw))
	}
	return buf.String()
}
