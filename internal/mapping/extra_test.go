package mapping

import (
	"encoding/json"
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func TestSignalExtraSelectsWhatTheSignalKnows(t *testing.T) {
	ev := func(topic, path, value, extra string) *protocol.Message {
		m := &protocol.Message{Topic: topic, Path: path, Value: json.RawMessage(value), Revision: 7}
		if extra != "" {
			m.Extra = json.RawMessage(extra)
		}
		return m
	}
	sel := ParseFieldSelector("thingId,features/temp(properties/value,definition),attributes/location,_revision")
	cases := []struct {
		name string
		m    *protocol.Message
		want string // "" = nothing
	}{
		{"a modified property: its value, the id, the revision",
			ev("org.acme/dev/things/twin/events/modified", "/features/temp/properties/value", "21", ""),
			`{"thingId":"org.acme:dev","features":{"temp":{"properties":{"value":21}}},"_revision":7}`},
		{"a whole thing",
			ev("org.acme/dev/things/twin/events/created", "/", `{"attributes":{"location":"hall","x":1},"features":{"temp":{"definition":["d:e:1"]}}}`, ""),
			`{"thingId":"org.acme:dev","features":{"temp":{"definition":["d:e:1"]}},"attributes":{"location":"hall"},"_revision":7}`},
		{"extra carried by the signal fills in, its own values win",
			ev("org.acme/dev/things/twin/events/modified", "/attributes/location", `"kitchen"`, `{"attributes":{"location":"hall"},"features":{"temp":{"properties":{"value":3}}}}`),
			`{"thingId":"org.acme:dev","features":{"temp":{"properties":{"value":3}}},"attributes":{"location":"kitchen"},"_revision":7}`},
		{"a deletion carries no value",
			ev("org.acme/dev/things/twin/events/deleted", "/attributes/location", "", ""),
			`{"thingId":"org.acme:dev","_revision":7}`},
		{"a live message's value is not the thing's",
			ev("org.acme/dev/things/live/messages/hello", "/attributes/location", `"x"`, ""),
			`{"thingId":"org.acme:dev","_revision":7}`},
		{"not a thing", ev("org.acme/p/policies/announcements/subjectDeletion", "/", `{}`, ""), ""},
	}
	for _, c := range cases {
		got, ok := SignalExtra(sel, c.m)
		if (c.want == "") == ok || string(got) != c.want {
			t.Errorf("%s: %s %v, want %s", c.name, got, ok, c.want)
		}
	}
	if _, ok := SignalExtra(ParseFieldSelector("attributes/nope"), ev("org.acme/dev/things/twin/events/modified", "/a", "1", "")); ok {
		t.Error("nothing selected must give no extra")
	}
}
