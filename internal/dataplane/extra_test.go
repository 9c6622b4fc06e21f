package dataplane

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestExtraFieldsEnrichFromTheSignal: a target topic's extraFields put the
// selected fields the signal knows into "extra" (no twin to read them
// from), the filter sees the thing with them, and other targets get the
// signal as it was.
func TestExtraFieldsEnrichFromTheSignal(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, strings.Replace(sourceConn, `"enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}`, `"qos":0`, 1))
	enriched, recE := start(t, b, `{"id":"x1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"e","authorizationContext":["a:b"],
   "topics":["_/_/things/twin/events?extraFields=attributes/location,thingId&filter=eq(attributes/location,\"hall\")"]}]}`)
	_, recP := start(t, b, `{"id":"x2","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"p","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`)
	_, recH := start(t, b, `{"id":"x3","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"h","authorizationContext":["a:b"],"topics":["_/_/things/twin/events?extraFields={{ header:want }}"]}]}`)
	in := src.Inbound(0)
	// the location itself changes: selected, and the filter sees it
	in(client.Message{Address: "q", Payload: []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{"want":"_revision"},` +
		`"path":"/attributes/location","value":"hall","revision":3}`)})
	// a feature changes, the location comes with the extra the signal carries
	in(client.Message{Address: "q", Payload: []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{},` +
		`"path":"/features/f/properties/v","value":1,"extra":{"attributes":{"location":"hall"},"other":true}}`)})
	// nothing known about the location: filtered out
	in(client.Message{Address: "q", Payload: []byte(`{"topic":"org.acme/dev/things/twin/events/modified","headers":{},` +
		`"path":"/features/f/properties/v","value":2}`)})

	extraOf := func(m client.Message) string {
		var v struct {
			Extra json.RawMessage `json:"extra"`
		}
		if err := json.Unmarshal(m.Payload, &v); err != nil {
			t.Fatalf("payload %s: %v", m.Payload, err)
		}
		return string(v.Extra)
	}
	if got := extraOf(recE.next(t)); got != `{"attributes":{"location":"hall"},"thingId":"org.acme:dev"}` {
		t.Errorf("first extra %s", got)
	}
	if got := extraOf(recE.next(t)); got != `{"attributes":{"location":"hall"},"thingId":"org.acme:dev"}` {
		t.Errorf("second extra %s", got)
	}
	recE.none(t)
	poll.Until(t, 5*time.Second, "3 dispatched", func() bool { return count(enriched, monitor.Outbound, monitor.Dispatched, "e", true) == 3 })
	if got := count(enriched, monitor.Outbound, monitor.Filtered, "e", true); got != 2 {
		t.Errorf("filtered %d", got)
	}
	// without extraFields: the signals as consumed
	if got := extraOf(recP.next(t)); got != "" {
		t.Errorf("extra without extraFields: %s", got)
	}
	if got := extraOf(recP.next(t)); got != `{"attributes":{"location":"hall"},"other":true}` {
		t.Errorf("carried extra changed: %s", got)
	}
	// a placeholder selects per signal
	if got := extraOf(recH.next(t)); got != `{"_revision":3}` {
		t.Errorf("extra from a placeholder: %s", got)
	}
	if got := extraOf(recH.next(t)); got != `{"attributes":{"location":"hall"},"other":true}` {
		t.Errorf("unresolved placeholder: the carried extra stays, got %s", got)
	}
}
