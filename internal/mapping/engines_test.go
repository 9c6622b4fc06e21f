package mapping

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

func outgoingText(t *testing.T, c *Configured, msg protocol.Message) protocol.External {
	t.Helper()
	o := c.MapOutgoing(msg)
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("outcome %+v", o)
	}
	return o.Messages[0]
}

func TestNormalized(t *testing.T) {
	m := mustNew(t, "Normalized", "", nil, nil)
	// Ditto's documented example.
	ext := outgoingText(t, m, protocol.Message{Topic: "thing/id/things/twin/events/modified",
		Path: "/features/sensors/properties/temperature/value", Value: json.RawMessage("42")})
	want := `{"thingId":"thing:id","features":{"sensors":{"properties":{"temperature":{"value":42}}}},"_context":{"topic":"thing/id/things/twin/events/modified","path":"/features/sensors/properties/temperature/value","value":42,"headers":{}}}`
	if ext.Text != want || ext.Headers["content-type"] != "application/json" {
		t.Fatalf("got %s %v", ext.Text, ext.Headers)
	}
	// Thing deleted: _deleted with the event's timestamp.
	ext = outgoingText(t, m, protocol.Message{Topic: "thing/id/things/twin/events/deleted", Path: "/",
		Headers: map[string]string{"content-type": "application/json"}, Timestamp: "2023-12-01T10:30:00Z", Revision: 5})
	want = `{"thingId":"thing:id","_modified":"2023-12-01T10:30:00Z","_revision":5,"_deleted":"2023-12-01T10:30:00Z","_context":{"topic":"thing/id/things/twin/events/deleted","path":"/","value":null,"headers":{"content-type":"application/json"}}}`
	if ext.Text != want {
		t.Fatalf("deleted\n got %s\nwant %s", ext.Text, want)
	}
	// Created thing at root, with extra fields merged in.
	ext = outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/created", Path: "/",
		Value: json.RawMessage(`{"thingId":"ns:t","attributes":{"a":1}}`), Extra: json.RawMessage(`{"attributes":{"b":2},"policyId":"ns:p"}`)})
	jsonEqual(t, ext.Text, `{"thingId":"ns:t","attributes":{"a":1,"b":2},"_context":{"topic":"ns/t/things/twin/events/created","path":"/","value":{"thingId":"ns:t","attributes":{"a":1}},"headers":{}},"policyId":"ns:p"}`)
	// Not a change event, or not a thing: dropped.
	for _, topic := range []string{"ns/t/things/twin/commands/modify", "ns/t/things/live/messages/x", "ns/t/things/twin/events/deleted"} {
		path := "/attributes/a"
		if o := m.MapOutgoing(protocol.Message{Topic: topic, Path: path}); o.Err != nil || len(o.Messages) != 0 {
			t.Errorf("%s: %+v", topic, o)
		}
	}
	// Normalized is outgoing only.
	if o := m.MapIncoming(textMsg(nil, twinEvent)); o.Err != nil || len(o.Messages) != 0 {
		t.Fatalf("incoming %+v", o)
	}
}

func TestNormalizedOptions(t *testing.T) {
	m := mustNew(t, "Normalized", `{"fields":"thingId,attributes/location,features(sensors/properties),_context/topic","includeDeletedFields":true}`, nil, nil)
	ext := outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/created", Path: "/",
		Value: json.RawMessage(`{"thingId":"ns:t","attributes":{"location":"x","other":1},"features":{"sensors":{"properties":{"p":1},"definition":["d"]},"f2":{}}}`)})
	if ext.Text != `{"thingId":"ns:t","attributes":{"location":"x"},"features":{"sensors":{"properties":{"p":1}}},"_context":{"topic":"ns/t/things/twin/events/created"}}` {
		t.Fatalf("fields: %s", ext.Text)
	}
	// includeDeletedFields: partial deletions and merge-patch nulls (docs example shape).
	m = mustNew(t, "Normalized", `{"includeDeletedFields":"true","fields":"thingId,_deletedFields"}`, nil, nil)
	ext = outgoingText(t, m, protocol.Message{Topic: "thing/id/things/twin/events/deleted", Path: "/attributes/location/mountedOn",
		Timestamp: "2025-01-27T10:00:00Z"})
	if ext.Text != `{"thingId":"thing:id","_deletedFields":{"attributes":{"location":{"mountedOn":"2025-01-27T10:00:00Z"}}}}` {
		t.Fatalf("deleted field: %s", ext.Text)
	}
	ext = outgoingText(t, m, protocol.Message{Topic: "thing/id/things/twin/events/merged", Path: "/",
		Value: json.RawMessage(`{"features":{"myFeature":null,"{{ ~x~ }}":null},"attributes":{"keep":1}}`), Timestamp: "2025-01-27T11:00:00Z"})
	if ext.Text != `{"thingId":"thing:id","_deletedFields":{"features":{"myFeature":"2025-01-27T11:00:00Z"}}}` {
		t.Fatalf("merged nulls: %s", ext.Text)
	}
	// Merged events lose null values and empty objects.
	m = mustNew(t, "Normalized", "", nil, nil)
	ext = outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/merged", Path: "/attributes",
		Value: json.RawMessage(`{"a":null,"b":{"c":null},"d":1}`)})
	if !strings.HasPrefix(ext.Text, `{"thingId":"ns:t","attributes":{"d":1},"_context":{"topic":"ns/t/things/twin/events/merged","path":"/attributes","value":{"d":1}`) {
		t.Fatalf("merged: %s", ext.Text)
	}
}

func TestRawMessage(t *testing.T) {
	m := mustNew(t, "RawMessage", "", nil, nil)
	// Ditto's documented example: feature message response, 6 bytes.
	msg := protocol.Message{Topic: "org.eclipse.ditto/smartcoffee/things/live/messages/heatUp",
		Headers: map[string]string{"content-type": "application/octet-stream"},
		Path:    "/features/water-tank/inbox/messages/heatUp", Value: json.RawMessage(`"AQIDBAUG"`), Status: 200}
	ext := outgoingText(t, m, msg)
	wantHeaders := map[string]string{"content-type": "application/octet-stream", "status": "200", "ditto-message-subject": "heatUp",
		"ditto-message-direction": "TO", "ditto-message-thing-id": "org.eclipse.ditto:smartcoffee", "ditto-message-feature-id": "water-tank"}
	if !reflect.DeepEqual(ext.Headers, wantHeaders) || !reflect.DeepEqual(ext.Bytes, []byte{1, 2, 3, 4, 5, 6}) || ext.IsText {
		t.Fatalf("outgoing %+v", ext)
	}
	// And back.
	o := m.MapIncoming(protocol.External{Headers: wantHeaders, Bytes: []byte{1, 2, 3, 4, 5, 6}})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("incoming %+v", o)
	}
	want := msg
	want.Headers = map[string]string{"content-type": "application/octet-stream", HeaderInboundPayloadMapper: "m1"}
	if !reflect.DeepEqual(o.Messages[0], want) {
		t.Fatalf("incoming\n got %+v\nwant %+v", o.Messages[0], want)
	}
	// Text content, outbox direction, no feature; the fallback content type applies.
	ext = outgoingText(t, m, protocol.Message{Topic: "ns/t/things/live/messages/hello", Path: "/outbox/messages/hello", Value: json.RawMessage(`"hi there"`)})
	if ext.Text != "hi there" || ext.Headers["content-type"] != "text/plain; charset=UTF-8" || ext.Headers["ditto-message-direction"] != "FROM" {
		t.Fatalf("text %+v", ext)
	}
	// Non-messages and Ditto Protocol content go through the Ditto mapper.
	ext = outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/created", Path: "/", Value: json.RawMessage(`{}`)})
	if ext.Headers["content-type"] != ContentTypeDitto {
		t.Fatalf("event %+v", ext)
	}
	if o := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeDitto}, twinEvent)); o.Err != nil || len(o.Messages) != 1 || o.Messages[0].Topic != "org.eclipse.ditto/thing-1/things/twin/events/modified" {
		t.Fatalf("ditto incoming %+v", o)
	}
	// Binary content that is not base64 fails; a message without thing id fails.
	if o := m.MapOutgoing(protocol.Message{Topic: "ns/t/things/live/messages/x", Path: "/inbox/messages/x", Headers: map[string]string{"content-type": "application/octet-stream"}, Value: json.RawMessage(`{"a":1}`)}); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("bad base64 %+v", o)
	}
	if o := m.MapIncoming(textMsg(map[string]string{"ditto-message-subject": "x"}, "x")); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("no thing id %+v", o)
	}
}

func TestRawMessageOptions(t *testing.T) {
	// The documented configuration: defaults for MQTT 3 where headers are lost.
	m := mustNew(t, "RawMessage", `{
  "outgoingContentType": "application/octet-stream",
  "incomingMessageHeaders": {
    "content-type": "{{ header:content-type | fn:default('application/json') }}",
    "status": "{{ header:status }}",
    "ditto-message-subject": "{{ header:ditto-message-subject | fn:default('fallback-subject') }}",
    "ditto-message-direction": "TO",
    "ditto-message-thing-id": "{{ header:ditto-message-thing-id | fn:default('ns:fallback-thing') }}",
    "ditto-message-feature-id": "{{ header:ditto-message-feature-id }}"
  }}`, nil, nil)
	o := m.MapIncoming(textMsg(map[string]string{"mqtt.topic": "a"}, `{"temp":1}`))
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("%+v", o)
	}
	got := o.Messages[0]
	if got.Topic != "ns/fallback-thing/things/live/messages/fallback-subject" || got.Path != "/inbox/messages/fallback-subject" ||
		string(got.Value) != `{"temp":1}` || got.Headers["content-type"] != "application/json" || got.Status != 0 {
		t.Fatalf("%+v", got)
	}
	ext := outgoingText(t, m, protocol.Message{Topic: "ns/t/things/live/messages/x", Path: "/inbox/messages/x", Value: json.RawMessage(`"AAE="`)})
	if !reflect.DeepEqual(ext.Bytes, []byte{0, 1}) || ext.Headers["content-type"] != "application/octet-stream" {
		t.Fatalf("%+v", ext)
	}
}

func TestConnectionStatus(t *testing.T) {
	m := mustNew(t, "ConnectionStatus", `{"thingId":"{{ header:device_id }}"}`, nil, nil)
	h := map[string]string{"device_id": "eclipse:ditto", "creation-time": "1572358578000", "ttd": "300", "correlation-id": "c"}
	o := m.MapIncoming(protocol.External{Headers: h})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("%+v", o)
	}
	got := o.Messages[0]
	if got.Topic != "eclipse/ditto/things/twin/commands/modify" || got.Path != "/features/ConnectionStatus" ||
		string(got.Value) != `{"definition":["org.eclipse.ditto:ConnectionStatus:1.0.0"],"properties":{"status":{"readySince":"2019-10-29T14:16:18Z","readyUntil":"2019-10-29T14:21:18Z"}}}` {
		t.Fatalf("%+v", got)
	}
	if got.Headers["response-required"] != "false" || got.Headers["correlation-id"] != "c" {
		t.Fatalf("headers %v", got.Headers)
	}
	// ttd=-1: ready until the distant future; custom featureId.
	m = mustNew(t, "ConnectionStatus", `{"thingId":"ns:fixed","featureId":"conn"}`, nil, nil)
	h["ttd"] = "-1"
	got = m.MapIncoming(protocol.External{Headers: h}).Messages[0]
	if got.Path != "/features/conn" || !strings.Contains(string(got.Value), `"readyUntil":"9999-12-31T23:59:59Z"`) {
		t.Fatalf("%+v", got)
	}
	// ttd=0: only readyUntil = creation time.
	h["ttd"] = "0"
	h["creation-time"] = "1572358578123"
	got = m.MapIncoming(protocol.External{Headers: h}).Messages[0]
	if got.Path != "/features/conn/properties/status/readyUntil" || string(got.Value) != `"2019-10-29T14:16:18.123Z"` {
		t.Fatalf("%+v", got)
	}
	// Missing or bad headers are dropped, not failed.
	for _, bad := range []map[string]string{{"creation-time": "1"}, {"creation-time": "x", "ttd": "1"}, {"creation-time": "1", "ttd": "-2"}} {
		if o := m.MapIncoming(protocol.External{Headers: bad}); o.Err != nil || len(o.Messages) != 0 {
			t.Fatalf("%v: %+v", bad, o)
		}
	}
	for _, opts := range []string{`{}`, `{"thingId":"no-namespace"}`} {
		if _, err := New("cs", defOf("ConnectionStatus", opts), testConfig()); !errors.Is(err, ErrConfiguration) {
			t.Fatalf("%s: %v", opts, err)
		}
	}
}

func TestImplicitThingCreation(t *testing.T) {
	// Ditto's documented configuration.
	m := mustNew(t, "ImplicitThingCreation", `{
  "thing": {"thingId": "{{ header:device_id }}", "attributes": {"CreatedBy": "ImplicitThingCreation", "at": "{{ time:now }}"},
            "_policy": {"entries": {}}, "policyId": "{{ header:device_id }}"},
  "commandHeaders": {"If-None-Match": "*", "correlation-id": "{{ header:correlation-id }}", "x": "{{ header:absent }}"},
  "allowPolicyLockout": true}`, nil, nil)
	o := m.MapIncoming(protocol.External{Headers: map[string]string{"device_id": "org.eclipse:dev-1", "correlation-id": "c-9"}, Text: "ignored", IsText: true})
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("%+v", o)
	}
	got := o.Messages[0]
	if got.Topic != "org.eclipse/dev-1/things/twin/commands/create" || got.Path != "/" {
		t.Fatalf("%+v", got)
	}
	if string(got.Value) != `{"thingId":"org.eclipse:dev-1","policyId":"org.eclipse:dev-1","attributes":{"CreatedBy":"ImplicitThingCreation","at":"2019-10-29T14:16:18Z"},"_policy":{"entries":{}}}` {
		t.Fatalf("value %s", got.Value)
	}
	wantHeaders := map[string]string{"if-none-match": "*", "correlation-id": "c-9", "allow-policy-lockout": "true", HeaderInboundPayloadMapper: "m1"}
	if !reflect.DeepEqual(got.Headers, wantHeaders) {
		t.Fatalf("headers %v", got.Headers)
	}
	// request:subjectId is the source's authorization subject the data plane
	// passes, never a header the sender chose.
	m = mustNew(t, "ImplicitThingCreation", `{"thing":{"thingId":"{{ header:device_id }}","attributes":{"by":"{{ request:subjectId }}"}}}`, nil, nil)
	o = m.MapIncoming(protocol.External{Headers: map[string]string{"device_id": "a:b", "ditto-auth-subject": "forged:x"}, AuthSubject: "pre:creator"})
	if o.Err != nil || string(o.Messages[0].Value) != `{"thingId":"a:b","attributes":{"by":"pre:creator"}}` {
		t.Fatalf("request:subjectId: %+v", o)
	}
	if o := m.MapIncoming(protocol.External{Headers: map[string]string{"device_id": "a:b", "ditto-auth-subject": "forged:x"}}); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("request:subjectId without a subject: %+v", o)
	}
	// Defaults: If-None-Match *, allowPolicyLockout true; an unresolvable template fails.
	m = mustNew(t, "ImplicitThingCreation", `{"thing":{"thingId":"{{ header:device_id }}"}}`, nil, nil)
	if o := m.MapIncoming(protocol.External{}); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("unresolved: %+v", o)
	}
	got = m.MapIncoming(protocol.External{Headers: map[string]string{"device_id": "a:b"}}).Messages[0]
	if got.Headers["if-none-match"] != "*" || got.Headers["allow-policy-lockout"] != "true" {
		t.Fatalf("defaults %v", got.Headers)
	}
	// An error response to the create fails the outgoing side.
	if o := m.MapOutgoing(protocol.Message{Topic: "a/b/things/twin/errors", Path: "/", Status: 409,
		Value: json.RawMessage(`{"status":409,"error":"things:thing.conflict","message":"exists"}`)}); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("error response %+v", o)
	}
	for _, opts := range []string{`{}`, `{"thing":{}}`, `{"thing":{"thingId":"bad"}}`, `{"thing":"x"}`} {
		if _, err := New("itc", defOf("ImplicitThingCreation", opts), testConfig()); !errors.Is(err, ErrConfiguration) {
			t.Fatalf("%s: %v", opts, err)
		}
	}
}

func TestUpdateTwinWithLiveResponse(t *testing.T) {
	resp := `{"topic":"org.eclipse.ditto/thing-1/things/live/commands/retrieve","headers":{"correlation-id":"c-1"},"path":"/attributes","value":{"a":1},"status":200}`
	m := mustNew(t, "UpdateTwinWithLiveResponse", "", nil, nil)
	o := m.MapIncoming(textMsg(nil, resp))
	if o.Err != nil || len(o.Messages) != 1 {
		t.Fatalf("%+v", o)
	}
	want := protocol.Message{Topic: "org.eclipse.ditto/thing-1/things/twin/commands/merge", Path: "/attributes", Value: json.RawMessage(`{"a":1}`),
		Headers: map[string]string{"response-required": "false", "if-match": "*", "correlation-id": "c-1-merge-into-twin",
			"content-type": "application/merge-patch+json", HeaderInboundPayloadMapper: "m1"}}
	if !reflect.DeepEqual(o.Messages[0], want) {
		t.Fatalf("got %+v\nwant %+v", o.Messages[0], want)
	}
	// Configured headers with placeholders replace the defaults.
	m = mustNew(t, "UpdateTwinWithLiveResponse", `{"dittoHeadersForMerge":{"if-match":"*","response-required":false,
	  "put-metadata":[{"key":"*/updated-via","value":"device-live-response"}],"hint":"{{ header:some-custom-hint }}","at":"{{ time:now }}"}}`, nil, nil)
	got := m.MapIncoming(textMsg(map[string]string{"some-custom-hint": "h"}, resp)).Messages[0]
	if got.Headers["hint"] != "h" || got.Headers["at"] != "2019-10-29T14:16:18Z" || got.Headers["put-metadata"] != `[{"key":"*/updated-via","value":"device-live-response"}]` {
		t.Fatalf("headers %v", got.Headers)
	}
	// Not a live retrieve response: dropped; garbage: dropped.
	for _, p := range []string{twinEvent, strings.Replace(resp, "/live/", "/twin/", 1), strings.Replace(resp, `,"status":200`, "", 1), "garbage"} {
		if o := m.MapIncoming(textMsg(nil, p)); o.Err != nil || len(o.Messages) != 0 {
			t.Fatalf("%s: %+v", p, o)
		}
	}
}

func TestCloudEvents(t *testing.T) {
	m := mustNew(t, "CloudEvents", "", nil, nil)
	data := `{"topic":"my.sensors/sensor01/things/twin/commands/modify","path":"/","value":{"thingId":"my.sensors:sensor01","policyId":"my.test:policy","attributes":{"manufacturer":"Well known sensors producer","serial number":"100","location":"Ground floor"},"features":{"measurements":{"properties":{"temperature":100,"humidity":0}}}}}`
	// Binary mode (documented example).
	bin := map[string]string{"ce-specversion": "1.0", "ce-id": "some-id", "ce-type": "some-type", "ce-source": "generic-producer", "content-type": ContentTypeDitto}
	o := m.MapIncoming(textMsg(bin, data))
	if o.Err != nil || len(o.Messages) != 1 || o.Messages[0].Headers["correlation-id"] != "some-id" || o.Messages[0].Topic != "my.sensors/sensor01/things/twin/commands/modify" {
		t.Fatalf("binary %+v", o)
	}
	delete(bin, "ce-id")
	if o := m.MapIncoming(textMsg(bin, data)); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("binary without ce-id %+v", o)
	}
	// Structured mode (documented example), data and data_base64.
	structured := `{"specversion":"1.0","id":"3212e","source":"http:somesite.com","type":"com.site.com","data":` + data + `}`
	o = m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeCloudEvents}, structured))
	if o.Err != nil || len(o.Messages) != 1 || o.Messages[0].Headers["correlation-id"] != "3212e" {
		t.Fatalf("structured %+v", o)
	}
	jsonEqual(t, string(o.Messages[0].Value), `{"thingId":"my.sensors:sensor01","policyId":"my.test:policy","attributes":{"manufacturer":"Well known sensors producer","serial number":"100","location":"Ground floor"},"features":{"measurements":{"properties":{"temperature":100,"humidity":0}}}}`)
	b64 := `{"specversion":"1.0","id":"x","source":"s","type":"t","data_base64":"eyJ0b3BpYyI6ImEvYi90aGluZ3MvdHdpbi9jb21tYW5kcy9kZWxldGUiLCJwYXRoIjoiLyJ9"}`
	o = m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeCloudEvents}, b64))
	if o.Err != nil || o.Messages[0].Topic != "a/b/things/twin/commands/delete" {
		t.Fatalf("base64 %+v", o)
	}
	if o := m.MapIncoming(textMsg(map[string]string{"content-type": ContentTypeCloudEvents}, `{"id":"x","data":{}}`)); !errors.Is(o.Err, ErrMappingFailed) {
		t.Fatalf("not a cloud event %+v", o)
	}
	if o := m.MapIncoming(textMsg(map[string]string{"content-type": "text/plain"}, "x")); o.Err != nil || len(o.Messages) != 0 {
		t.Fatalf("other content type %+v", o)
	}
	// Outbound: structured mode.
	ext := outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/modified", Headers: map[string]string{"correlation-id": "c-1"},
		Path: "/attributes/a", Value: json.RawMessage(`1`), Revision: 2})
	want := `{"data":{"topic":"ns/t/things/twin/events/modified","headers":{"correlation-id":"c-1"},"path":"/attributes/a","value":1,"revision":2},"specversion":"1.0","id":"c-1","source":"https://github.com/eclipse-ditto/ditto","type":"org.eclipse.ditto.outbound:things/twin/events/modified","datacontenttype":"application/vnd.eclipse.ditto+json","time":"2019-10-29T14:16:18Z","subject":"ns:t"}`
	if ext.Text != want || ext.Headers["content-type"] != ContentTypeCloudEvents {
		t.Fatalf("outbound\n got %s\nwant %s", ext.Text, want)
	}
	ext = outgoingText(t, m, protocol.Message{Topic: "ns/t/things/twin/events/deleted", Path: "/"})
	var ev map[string]any
	_ = json.Unmarshal([]byte(ext.Text), &ev)
	if id, _ := ev["id"].(string); len(id) != 36 {
		t.Fatalf("random id %q", id)
	}
}

func TestEngines(t *testing.T) {
	want := []string{"CloudEvents", "ConnectionStatus", "Ditto", "ImplicitThingCreation", "JavaScript", "Normalized", "RawMessage", "UpdateTwinWithLiveResponse"}
	if got := Engines(); !reflect.DeepEqual(got, want) {
		t.Fatalf("%v", got)
	}
}
