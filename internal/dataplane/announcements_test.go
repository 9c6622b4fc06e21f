package dataplane

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
)

// announcing has one target per mapper that subscribes to connection
// announcements, and one that does not.
const announcing = `{"id":"ann-1","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1883",
 "mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"incomingScript":"",
   "outgoingScript":"function mapFromDittoProtocolMsg(namespace, name, group, channel, criterion, action, path, dittoHeaders, value, status, extra) { return Ditto.buildExternalMsg({'x-action': action, 'x-channel': channel, 'x-ct': dittoHeaders['content-type']}, JSON.stringify({ns: namespace, name: name, group: group, criterion: criterion, path: path, value: value}), null, 'text/plain'); }"}}},
 "targets":[
  {"address":"ann/{{ connection:id }}/{{ topic:action-subject }}","qos":1,"topics":["_/_/connections/announcements"],
   "authorizationContext":["a:b"],"headerMapping":{"kind":"{{ topic:criterion }}","conn":"{{ connection:id }}"}},
  {"address":"normalized","topics":["_/_/connections/announcements","_/_/things/twin/events"],"authorizationContext":["a:b"],
   "payloadMapping":["Normalized"]},
  {"address":"js/{{ connection:id }}","topics":["_/_/connections/announcements"],"authorizationContext":["a:b"],
   "payloadMapping":["js"]},
  {"address":"events","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"]}]}`

// Ditto publishes connection announcements through the outbound mapping of
// each subscribed target: the Ditto mapper writes the Ditto Protocol
// message, Normalized maps them to nothing (dropped), a JavaScript mapper
// gets them with channel "none"; address placeholders and header mapping
// apply as to any signal.
func TestAnnouncementsGoThroughTheTargetsPayloadAndHeaderMapping(t *testing.T) {
	p, err := New(parse(t, announcing), Config{Bus: bus.NewLocal()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); p.Wait() })
	if !p.Announces() {
		t.Fatal("Announces() is false")
	}
	rec := newRecorder()
	at := time.Date(2026, 12, 6, 14, 0, 5, 0, time.UTC)
	p.Announce(context.Background(), rec, client.AnnouncementOpened, at)

	if len(rec.msgs) != 2 {
		t.Fatalf("published %d messages: %+v", len(rec.msgs), rec.msgs)
	}
	ditto, js := rec.msgs[0], rec.msgs[1]
	if ditto.Address != "ann/ann-1/opened" || ditto.QoS == nil || *ditto.QoS != 1 {
		t.Errorf("Ditto-mapped announcement to %s qos %v", ditto.Address, ditto.QoS)
	}
	wantHeaders := map[string]string{"content-type": "application/vnd.eclipse.ditto+json", "kind": "announcements", "conn": "ann-1"}
	if !equalMaps(ditto.Headers, wantHeaders) {
		t.Errorf("headers %v, want %v", ditto.Headers, wantHeaders)
	}
	var got, want any
	_ = json.Unmarshal(ditto.Payload, &got)
	_ = json.Unmarshal([]byte(`{"topic":"_/ann-1/connections/announcements/opened","headers":{"content-type":"application/json"},
		"path":"/","value":{"openedAt":"2026-12-06T14:00:05Z"}}`), &want)
	if !jsonEqual(got, want) {
		t.Errorf("payload %s", ditto.Payload)
	}

	if js.Address != "js/ann-1" || js.QoS != nil {
		t.Errorf("JavaScript-mapped announcement to %s", js.Address)
	}
	wantHeaders = map[string]string{"content-type": "text/plain", "x-action": "opened", "x-channel": "none", "x-ct": "application/json"}
	if !equalMaps(js.Headers, wantHeaders) {
		t.Errorf("headers %v, want %v", js.Headers, wantHeaders)
	}
	_ = json.Unmarshal(js.Payload, &got)
	_ = json.Unmarshal([]byte(`{"ns":"_","name":"ann-1","group":"connections","criterion":"announcements","path":"/",
		"value":{"openedAt":"2026-12-06T14:00:05Z"}}`), &want)
	if !jsonEqual(got, want) {
		t.Errorf("payload %s", js.Payload)
	}

	for _, tc := range []struct {
		addr string
		typ  monitor.MetricType
		n    int
	}{
		{"ann/{{ connection:id }}/{{ topic:action-subject }}", monitor.Published, 1},
		{"ann/{{ connection:id }}/{{ topic:action-subject }}", monitor.Mapped, 1},
		{"normalized", monitor.Dispatched, 1},
		{"normalized", monitor.Dropped, 1},
		{"normalized", monitor.Published, 0},
		{"js/{{ connection:id }}", monitor.Published, 1},
		{"events", monitor.Dispatched, 0},
	} {
		if n := count(p, monitor.Outbound, tc.typ, tc.addr, true); n != tc.n {
			t.Errorf("%s %s: %d, want %d", tc.addr, tc.typ, n, tc.n)
		}
	}

	// closed takes the same way
	p.Announce(context.Background(), rec, client.AnnouncementClosed, at)
	if len(rec.msgs) != 4 || rec.msgs[2].Address != "ann/ann-1/closed" || rec.msgs[3].Headers["x-action"] != "closed" {
		t.Errorf("closed announcements %+v", rec.msgs[2:])
	}
}

// A connection without an announcement target announces nothing.
func TestNoAnnouncementsWithoutASubscribedTarget(t *testing.T) {
	p, rec := start(t, bus.NewLocal(), targetConn)
	if p.Announces() {
		t.Error("Announces() is true")
	}
	p.Announce(context.Background(), rec, client.AnnouncementOpened, time.Now())
	rec.none(t)
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// The announcements are Ditto's generated protocol examples
// (protocol/examples/connections/generated/announcements).
func TestAnnouncementMessagesAreDittosExamples(t *testing.T) {
	at := time.Date(2021, 3, 3, 16, 5, 55, 0, time.UTC)
	for kind, want := range map[string]string{
		client.AnnouncementOpened: `{"topic":"_/the_connection_id/connections/announcements/opened","headers":{"content-type":"application/json"},"path":"/","value":{"openedAt":"2021-03-03T16:05:55Z"}}`,
		client.AnnouncementClosed: `{"topic":"_/the_connection_id/connections/announcements/closed","headers":{"content-type":"application/json"},"path":"/","value":{"closedAt":"2021-03-03T16:05:55Z"}}`,
	} {
		got, err := json.Marshal(announcementMessage("the_connection_id", kind, at))
		if err != nil || string(got) != want {
			t.Errorf("%s: %s (%v)\nwant %s", kind, got, err, want)
		}
	}
}
