package protocol

import (
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func TestParseTopic(t *testing.T) {
	cases := []struct {
		in     string
		want   Topic
		stream string
	}{
		{"org.eclipse.ditto/fancy-car-1/things/twin/commands/create",
			Topic{"org.eclipse.ditto", "fancy-car-1", "things", "twin", "commands", "create", ""}, ""},
		{"org.eclipse.ditto/fancy-car-0815/things/live/events/modified",
			Topic{"org.eclipse.ditto", "fancy-car-0815", "things", "live", "events", "modified", ""}, model.TopicLiveEvents},
		{"org.eclipse.ditto/fancy-car-0815/things/twin/events/merged",
			Topic{"org.eclipse.ditto", "fancy-car-0815", "things", "twin", "events", "merged", ""}, model.TopicTwinEvents},
		{"org.eclipse.ditto/fancy-car-42/things/live/messages/hello.world",
			Topic{"org.eclipse.ditto", "fancy-car-42", "things", "live", "messages", "", "hello.world"}, model.TopicLiveMessages},
		{"ns/n/things/live/messages/a/b/c",
			Topic{"ns", "n", "things", "live", "messages", "", "a/b/c"}, model.TopicLiveMessages},
		{"ns/n/things/live/commands/modify",
			Topic{"ns", "n", "things", "live", "commands", "modify", ""}, model.TopicLiveCommands},
		{"org.eclipse.ditto/fancy-policy-1/policies/commands/create",
			Topic{"org.eclipse.ditto", "fancy-policy-1", "policies", "none", "commands", "create", ""}, ""},
		{"ns/p/policies/announcements/subjectDeletion",
			Topic{"ns", "p", "policies", "none", "announcements", "subjectDeletion", ""}, model.TopicPolicyAnnouncements},
		{"_/my-conn/connections/announcements/opened",
			Topic{"_", "my-conn", "connections", "none", "announcements", "opened", ""}, model.TopicConnectionAnnouncements},
		{"ns/n/things/twin/errors", Topic{"ns", "n", "things", "twin", "errors", "", ""}, ""},
		{"ns/p/policies/errors", Topic{"ns", "p", "policies", "none", "errors", "", ""}, ""},
		{"ns/n/things/twin/acks", Topic{"ns", "n", "things", "twin", "acks", "", ""}, ""},
		{"ns/n/things/twin/acks/my-ack", Topic{"ns", "n", "things", "twin", "acks", "my-ack", ""}, ""},
		{"_/_/things/twin/search/subscribe", Topic{"_", "_", "things", "twin", "search", "subscribe", ""}, ""},
		{"ns/n/things/twin/streaming/subscribeForPersistedEvents",
			Topic{"ns", "n", "things", "twin", "streaming", "subscribeForPersistedEvents", ""}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseTopic(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v want %+v", got, tc.want)
			}
			if s := got.String(); s != tc.in {
				t.Fatalf("String() = %q", s)
			}
			if s := got.Stream(false); s != tc.stream {
				t.Fatalf("Stream = %q want %q", s, tc.stream)
			}
		})
	}
}

func TestParseTopicInvalid(t *testing.T) {
	for _, in := range []string{
		"", "ns", "ns/n/things", "ns/n/things/twin", "ns/n/things/none/commands/create", "ns/n/thingz/twin/events/created",
		"/n/things/twin/events/created", "ns//things/twin/events/created", "ns/n/things/twin/events",
		"ns/n/things/twin/events/created/x", "ns/n/things/twin/events/exploded", "ns/n/things/twin/messages/x",
		"ns/n/things/live/messages", "ns/n/things/live/messages/", "ns/n/things/twin/errors/x",
		"ns/n/policies/twin/commands/create", "ns/n/things/twin/announcements/x", "ns/n/connections/commands/create",
		"ns/n/things/live/search/subscribe", "ns/n/things/twin/foo/bar", "ns/n/policies/announcements",
	} {
		t.Run(in, func(t *testing.T) {
			_, err := ParseTopic(in)
			e, ok := ditto.As(err)
			if !ok || e.Code != CodeUnknownTopicPath || e.Status != 400 {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(e.Message, "'"+in+"'") {
				t.Fatalf("message %q", e.Message)
			}
		})
	}
}

func TestStreamResponses(t *testing.T) {
	for _, tc := range []struct {
		topic  string
		status int
		want   string
	}{
		{"ns/n/things/live/commands/modify", 0, model.TopicLiveCommands},
		{"ns/n/things/live/commands/modify", 204, ""},
		{"ns/n/things/live/messages/ask", 200, ""},
		{"ns/n/things/twin/events/modified", 0, model.TopicTwinEvents},
	} {
		_, s, err := Classify(&Message{Topic: tc.topic, Status: tc.status})
		if err != nil || s != tc.want {
			t.Errorf("%s %d: %q %v", tc.topic, tc.status, s, err)
		}
	}
	if _, _, err := Classify(&Message{Topic: "x"}); err == nil {
		t.Fatal("bad topic accepted")
	}
}

func TestEntityID(t *testing.T) {
	for in, want := range map[string]string{
		"ns/n/things/twin/events/created":         "ns:n",
		"_/n/things/twin/events/created":          ":n",
		"_/_/things/twin/search/subscribe":        "",
		"ns/p/policies/commands/create":           "ns:p",
		"_/conn/connections/announcements/opened": "conn",
	} {
		tp, err := ParseTopic(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := tp.EntityID(); got != want {
			t.Errorf("%s: %q want %q", in, got, want)
		}
	}
}

func TestEncodeOrderAndEscaping(t *testing.T) {
	m := &Message{
		Topic:     "ns/n/things/twin/events/modified",
		Headers:   map[string]string{"correlation-id": "c1", "content-type": "application/json", "x": "<a&b>\"\n\u2028ä"},
		Path:      "/attributes/a",
		Value:     json.RawMessage(`{ "b" : [1, 2.50, "x"] }`),
		Extra:     json.RawMessage(`{"attributes":{}}`),
		Status:    200,
		Revision:  7,
		Timestamp: "2024-01-01T00:00:00Z",
		Metadata:  json.RawMessage(`{"m":1}`),
		Fields:    "thingId",
	}
	want := `{"topic":"ns/n/things/twin/events/modified","headers":{"content-type":"application/json","correlation-id":"c1","x":"<a&b>\"\n` + "\u2028ä" + `"},"path":"/attributes/a","value":{"b":[1,2.50,"x"]},"extra":{"attributes":{}},"status":200,"revision":7,"timestamp":"2024-01-01T00:00:00Z","metadata":{"m":1},"fields":"thingId"}`
	want = strings.Replace(want, `\"`+"\n", `\"\n`, 1)
	got := string(Encode(m))
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	// json.Marshal goes through MarshalJSON (but HTML-escapes <, >, &
	// afterwards, which is why callers that need Ditto's bytes use Encode)
	viaJSON, err := json.Marshal(m)
	if err != nil || strings.NewReplacer(`\u003c`, "<", `\u003e`, ">", `\u0026`, "&", `\u2028`, "\u2028").Replace(string(viaJSON)) != want {
		t.Fatalf("json.Marshal: %s %v", viaJSON, err)
	}
	// minimal message: headers always (Ditto writes them, its schema requires
	// them), path defaults to "/", nothing else written
	if got := string(Encode(&Message{Topic: "t"})); got != `{"topic":"t","headers":{},"path":"/"}` {
		t.Fatal(got)
	}
	// explicit null value is kept
	if got := string(Encode(&Message{Topic: "t", Path: "/", Value: json.RawMessage("null")})); got != `{"topic":"t","headers":{},"path":"/","value":null}` {
		t.Fatal(got)
	}
}

// Typed headers are written as JSON of their type when their value is of
// it, else as strings, so Encode's output stays JSON whatever a header
// mapping put there.
func TestEncodeTypedHeaders(t *testing.T) {
	for v, raw := range map[string]bool{"2": true, "0": true, "-3": true, "-0": true,
		"02": false, "-01": false, "+2": false, "-": false, "": false, "x": false} {
		got := Encode(&Message{Topic: "t", Headers: map[string]string{"version": v}})
		want := `{"topic":"t","headers":{"version":` + strconv.Quote(v) + `},"path":"/"}`
		if raw {
			want = `{"topic":"t","headers":{"version":` + v + `},"path":"/"}`
		}
		if string(got) != want || !json.Valid(got) {
			t.Errorf("version %q: %s, want %s", v, got, want)
		}
	}
	got := Encode(&Message{Topic: "t", Headers: map[string]string{"requested-acks": `["a"]`,
		"response-required": "false", "ditto-weak-ack": "yes", "declared-acks": "[oops"}})
	want := `{"topic":"t","headers":{"declared-acks":"[oops","ditto-weak-ack":"yes","requested-acks":["a"],"response-required":false},"path":"/"}`
	if string(got) != want {
		t.Errorf("%s, want %s", got, want)
	}
}

func TestDecodeRoundTrip(t *testing.T) {
	in := `{"topic":"ns/n/things/twin/commands/modify","headers":{"Correlation-Id":"c1","requested-acks":["twin-persisted"],"response-required":false},` +
		`"path":"/features/f/properties/p","value":null,"status":204,"revision":3,"timestamp":"t","extra":{"a":1},"metadata":{"b":2},"fields":"f","unknown":1}`
	m, err := Decode([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{Topic: "ns/n/things/twin/commands/modify",
		Headers: map[string]string{"correlation-id": "c1", "requested-acks": `["twin-persisted"]`, "response-required": "false"},
		Path:    "/features/f/properties/p", Value: json.RawMessage("null"), Status: 204, Revision: 3, Timestamp: "t",
		Extra: json.RawMessage(`{"a":1}`), Metadata: json.RawMessage(`{"b":2}`), Fields: "f"}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v", m)
	}
	var viaJSON Message
	if err := json.Unmarshal([]byte(in), &viaJSON); err != nil || !reflect.DeepEqual(&viaJSON, want) {
		t.Fatalf("json.Unmarshal: %+v %v", viaJSON, err)
	}
	again, err := Decode(Encode(m))
	if err != nil || !reflect.DeepEqual(again, m) {
		t.Fatalf("round trip: %+v %v", again, err)
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ in, code, msg string }{
		{``, ditto.CodeJSONInvalid, "must not be empty"},
		{`{`, ditto.CodeJSONInvalid, "Failed to parse"},
		{`[1]`, ditto.CodeJSONInvalid, "is not a valid JSON object"},
		{`{"path":"/"}`, ditto.CodeJSONFieldMissing, "</topic>"},
		{`{"topic":"t"}`, ditto.CodeJSONFieldMissing, "</path>"},
		{`{"topic":1,"path":"/"}`, ditto.CodeJSONInvalid, "<String>"},
		{`{"topic":"t","path":"/","headers":[]}`, ditto.CodeJSONInvalid, "<JsonObject>"},
		{`{"topic":"t","path":"/","status":"200"}`, ditto.CodeJSONInvalid, "</status>"},
		{`{"topic":"t","path":"/","status":1.5}`, ditto.CodeJSONInvalid, "</status>"},
		{`{"topic":"t","path":"/","revision":true}`, ditto.CodeJSONInvalid, "</revision>"},
		{`{"topic":"t","path":"/","extra":1}`, ditto.CodeJSONInvalid, "</extra>"},
		{`{"topic":"t","path":"/","value":` + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + `}`, ditto.CodeJSONInvalid, "nested"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			e, ok := ditto.As(err)
			if !ok || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %v", err)
			}
		})
	}
}

func TestThingDoc(t *testing.T) {
	cases := []struct {
		name string
		m    Message
		want string
	}{
		{"attribute modified", Message{Topic: "ns/car/things/twin/events/modified", Path: "/attributes/a/b", Value: json.RawMessage(`1.5`), Revision: 4, Timestamp: "2024-01-01T00:00:00Z"},
			`{"_modified":"2024-01-01T00:00:00Z","_namespace":"ns","_revision":4,"attributes":{"a":{"b":1.5}},"thingId":"ns:car"}`},
		{"thing created", Message{Topic: "ns/car/things/twin/events/created", Path: "/", Value: json.RawMessage(`{"thingId":"ns:car","policyId":"ns:p","attributes":{"x":"y"}}`)},
			`{"_namespace":"ns","attributes":{"x":"y"},"policyId":"ns:p","thingId":"ns:car"}`},
		{"feature property", Message{Topic: "ns/car/things/live/events/modified", Path: "/features/lamp/properties/on", Value: json.RawMessage(`true`)},
			`{"_namespace":"ns","features":{"lamp":{"properties":{"on":true}}},"thingId":"ns:car"}`},
		{"deleted", Message{Topic: "ns/car/things/twin/events/deleted", Path: "/attributes/a", Value: json.RawMessage(`1`)},
			`{"_namespace":"ns","thingId":"ns:car"}`},
		{"message", Message{Topic: "ns/car/things/live/messages/hi", Path: "/inbox/messages/hi", Value: json.RawMessage(`"x"`)},
			`{"_namespace":"ns","thingId":"ns:car"}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tp, err := ParseTopic(tc.m.Topic)
			if err != nil {
				t.Fatal(err)
			}
			doc, ok := ThingDoc(tp, &tc.m)
			if !ok {
				t.Fatal("not ok")
			}
			got, _ := json.Marshal(doc)
			if string(got) != tc.want {
				t.Fatalf("got %s", got)
			}
		})
	}
	tp, _ := ParseTopic("ns/p/policies/announcements/subjectDeletion")
	if _, ok := ThingDoc(tp, &Message{}); ok {
		t.Fatal("policy gave a thing")
	}
	tp, _ = ParseTopic("ns/n/things/twin/events/modified")
	if _, ok := ThingDoc(tp, &Message{Path: "/attributes", Value: json.RawMessage(`{bad`)}); ok {
		t.Fatal("bad value gave a thing")
	}
}

func TestPlaceholderHelpers(t *testing.T) {
	tp, _ := ParseTopic("ns/n/things/twin/events/modified")
	if id, ok := FeatureID(tp, "/features/lamp/properties/on"); !ok || id != "lamp" {
		t.Fatal(id)
	}
	if _, ok := FeatureID(tp, "/attributes/x"); ok {
		t.Fatal("feature from attributes")
	}
	if ResourceType(tp) != "thing" {
		t.Fatal(ResourceType(tp))
	}
	mt, _ := ParseTopic("ns/n/things/live/messages/x")
	pt, _ := ParseTopic("ns/n/policies/commands/create")
	ct, _ := ParseTopic("_/c/connections/announcements/opened")
	if ResourceType(mt) != "message" || ResourceType(pt) != "policy" || ResourceType(ct) != "connection" {
		t.Fatal("resource types")
	}
}

func TestErrorResponse(t *testing.T) {
	e := ditto.New(400, "placeholder:unresolved", "The placeholder 'thing:id' could not be resolved.", "desc")
	for _, tc := range []struct{ topic, want string }{
		{"ns/n/things/twin/commands/modify", "ns/n/things/twin/errors"},
		{"ns/n/things/live/messages/x", "ns/n/things/live/errors"},
		{"ns/p/policies/commands/create", "ns/p/policies/errors"},
		{"garbage", "_/_/things/twin/errors"},
		{"ns/n/things/twin/bogus/x", "ns/n/things/twin/errors"},
		{"ns/n/things/live/bogus", "ns/n/things/live/errors"},
	} {
		m := ErrorResponseFor(tc.topic, map[string]string{"correlation-id": "c"}, e)
		if m.Topic != tc.want {
			t.Errorf("%s: topic %s", tc.topic, m.Topic)
		}
		if m.Status != 400 || m.Path != "/" || m.Headers["correlation-id"] != "c" || m.Headers["content-type"] != "application/json" {
			t.Errorf("%+v", m)
		}
	}
	m := ErrorResponse(Topic{}, nil, e)
	want := `{"topic":"_/_/things/twin/errors","headers":{"content-type":"application/json"},"path":"/","value":{"status":400,"error":"placeholder:unresolved","message":"The placeholder 'thing:id' could not be resolved.","description":"desc"},"status":400}`
	if got := string(Encode(m)); got != want {
		t.Fatalf("got %s", got)
	}
	if got := ErrorResponse(Topic{}, nil, nil); got.Status != 500 {
		t.Fatalf("nil error: %+v", got)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"topic":"ns/n/things/twin/events/modified","headers":{"a":"b"},"path":"/attributes/x","value":{"y":[1,null,"z"]},"revision":1}`,
		`{"topic":"ns/n/things/live/messages/a/b","path":"/inbox/messages/a/b","value":"hi","status":200}`,
		`{"topic":"_/c/connections/announcements/opened","path":"/","value":{"openedAt":"x"}}`,
		`{"topic":"x","path":"/","headers":{"n":1,"o":{"p":[]}},"extra":{},"metadata":null}`,
		`[]`, `{`, `{"topic":"\u0000\ud800","path":"\\"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Decode(data)
		if err != nil {
			if _, ok := ditto.As(err); !ok {
				t.Fatalf("error is not a *ditto.Error: %v", err)
			}
			return
		}
		out := Encode(m)
		if !json.Valid(out) {
			t.Fatalf("Encode produced invalid JSON: %s", out)
		}
		m2, err := Decode(out)
		if err != nil {
			t.Fatalf("re-decode: %v (%s)", err, out)
		}
		if m2.Topic != m.Topic || m2.Status != m.Status || m2.Revision != m.Revision || len(m2.Headers) != len(m.Headers) {
			t.Fatalf("round trip changed the message: %+v vs %+v", m, m2)
		}
		if tp, stream, err := Classify(m); err == nil {
			_ = tp.String()
			_ = stream
			_, _ = ThingDoc(tp, m)
			_ = ErrorResponse(tp, m.Headers, ditto.InternalError("x"))
		}
	})
}
