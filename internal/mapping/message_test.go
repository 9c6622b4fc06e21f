package mapping

import (
	"encoding/json"
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// TestMessageJSONMatchesObject: the direct writer renders what
// marshal(messageObject(m)) renders.
func TestMessageJSONMatchesObject(t *testing.T) {
	msgs := []protocol.Message{
		{Topic: "org.acme/dev/things/twin/events/modified", Path: "/features/a", Value: json.RawMessage(`{"b":1,"a":[1,"x"]}`),
			Headers: map[string]string{"correlation-id": "c", "response-required": "true", "requested-acks": `["a","b"]`,
				"entity-revision": "12", "Content-Type": "x", "q\"uote": "v\n"}, Revision: 4, Timestamp: "2026-01-01T00:00:00Z"},
		{Topic: "t", Value: json.RawMessage(`not json`), Extra: json.RawMessage(`{"z":null}`), Status: 204,
			Metadata: json.RawMessage(` { "m" : 1 } `), Fields: "a,b"},
		{Topic: "", Path: "", Headers: map[string]string{}},
		{Topic: "x", Headers: map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8",
			"i": "9", "j": "10", "k": "11", "l": "12", "m": "13", "n": "14", "o": "15", "p": "16", "q": "17"}},
	}
	for _, m := range msgs {
		if got, want := string(messageJSON(m)), string(gojson.Marshal(messageObject(m))); got != want {
			t.Errorf("messageJSON:\n%s\nwant\n%s", got, want)
		}
	}
}
