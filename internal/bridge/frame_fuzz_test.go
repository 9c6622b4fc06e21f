package bridge

import (
	"bytes"
	"net/url"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

// FuzzParseFrame: any frame is classified without panicking; an :ACK names a
// stream the bridge subscribes; JSON objects are always read as Ditto
// Protocol, and a message read re-encodes to itself.
func FuzzParseFrame(f *testing.F) {
	for _, s := range []string{
		"START-SEND-EVENTS:ACK", "START-SEND-LIVE-EVENTS:ACK", "START-SEND-MESSAGES:ACK", "START-SEND-LIVE-COMMANDS:ACK",
		"START-SEND-POLICY-ANNOUNCEMENTS:ACK", "STOP-SEND-EVENTS:ACK", " START-SEND-EVENTS:ACK\n", "START-SEND-EVENTS",
		"START-SEND-EVENTS:ACK:ACK", `{"topic":"a/b/things/twin/events/modified","headers":{"correlation-id":"x#1"},"path":"/","value":1}`,
		`{"topic":"_/_/things/twin/errors","path":"/","status":400,"value":{"status":400,"error":"x"}}`,
		`{"topic":1}`, `{`, `[]`, ``, `null`, "{\"topic\":\"t\",\"path\":\"/\",\"headers\":{\"A\":[1]}}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		kind, stream, m, err := parseFrame(data)
		trimmed := bytes.TrimSpace(data)
		if len(trimmed) > 0 && trimmed[0] == '{' && kind != frameMessage {
			t.Fatalf("JSON object %q read as %v", data, kind)
		}
		switch kind {
		case frameAck:
			c, ok := controls[stream]
			if !ok || err != nil || string(trimmed) != c.start+":ACK" {
				t.Fatalf("%q: ack of %q (%v)", data, stream, err)
			}
		case frameMessage:
			if (err == nil) == (m == nil) {
				t.Fatalf("%q: message %v error %v", data, m, err)
			}
			if m != nil {
				enc := protocol.Encode(m)
				again, err := protocol.Decode(enc)
				if err != nil || !bytes.Equal(protocol.Encode(again), enc) {
					t.Fatalf("%q: %s does not read back (%v)", data, enc, err)
				}
			}
		case frameOther:
			if m != nil || stream != "" {
				t.Fatalf("%q: other with %v %q", data, m, stream)
			}
		}
	})
}

// FuzzStartMessage: what the bridge writes reads back, the way Ditto's
// ProtocolMessageExtractor reads it (split at '?', at '&', at the first '=',
// URL-decode, namespaces split at ','), as exactly the subscription's values.
func FuzzStartMessage(f *testing.F) {
	f.Add("org.acme,org.b", `and(eq(attributes/a,"x&y=z"),gt(n,1))`, "attributes/a,features/f/properties")
	f.Add("", "", "")
	f.Add("a+b", "eq(a,\"%20?\")", "thing?x")
	f.Fuzz(func(t *testing.T, namespaces, filter, extra string) {
		var ns []string
		for _, n := range strings.Split(namespaces, ",") {
			if n != "" {
				ns = append(ns, n)
			}
		}
		sub := Subscription{Stream: model.TopicTwinEvents, Namespaces: ns, Filter: filter, ExtraFields: extra}
		msg, err := startMessage(sub)
		if err != nil {
			t.Fatal(err)
		}
		name, params, _ := strings.Cut(msg, "?")
		if name != "START-SEND-EVENTS" {
			t.Fatalf("%q", msg)
		}
		got := map[string]string{}
		if params != "" {
			for _, p := range strings.Split(params, "&") {
				k, v, ok := strings.Cut(p, "=")
				if !ok {
					t.Fatalf("%q: parameter %q without '='", msg, p)
				}
				dk, err1 := url.QueryUnescape(k)
				dv, err2 := url.QueryUnescape(v)
				if err1 != nil || err2 != nil {
					t.Fatalf("%q: %v %v", msg, err1, err2)
				}
				got[dk] = dv
			}
		}
		if got["filter"] != filter || got["extraFields"] != extra || got["namespaces"] != strings.Join(ns, ",") {
			t.Fatalf("%q read back as %v", msg, got)
		}
	})
}
