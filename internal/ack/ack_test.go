package ack

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/protocol"
)

var thing = protocol.Topic{Namespace: "org.eclipse.ditto", EntityName: "thing_name_3141", Group: "things",
	Channel: "live", Criterion: "messages", Subject: "ask"}

// The answers Ditto gives for the cases of basic-acknowledgements.md and
// protocol-specification-acks.md, as aggregated Ditto Protocol messages.
func TestAggregatedAnswers(t *testing.T) {
	const cid = "a780b7b5-fdd2-4864-91fc-80df6bb0a636"
	h := func() map[string]string { return map[string]string{"correlation-id": cid} }
	cases := []struct {
		name    string
		labels  []string
		acks    []Ack
		status  int
		value   string
		outcome client.Outcome
	}{
		{"one custom label keeps its status", []string{"c:ack"},
			[]Ack{{Label: "c:ack", Status: 202, Headers: h()}},
			202, `{"c:ack":{"status":202,"headers":{"correlation-id":"` + cid + `"}}}`, client.Accept},
		{"two labels, all successful", []string{"c:one", "c:two"},
			[]Ack{{Label: "c:two", Status: 200, Headers: h(), Payload: json.RawMessage(`{"outcome":"green"}`)},
				{Label: "c:one", Status: 201}},
			200, `{"c:one":{"status":201},"c:two":{"status":200,"payload":{"outcome":"green"},"headers":{"correlation-id":"` + cid + `"}}}`,
			client.Accept},
		{"one 503", []string{"c:ack"},
			[]Ack{NewSendingFailed("c:ack", cid, errors.New("broker down"))},
			503, `{"c:ack":{"status":503,"payload":{"error":"connectivity:message.sending.failed","message":"Failed to send message: broker down","description":"Sending the message to an external system failed, please check if your connection is configured properly and the target system is available and consuming messages."},"headers":{"correlation-id":"` + cid + `"}}}`,
			client.Redeliver},
		{"a 503 among two", []string{"c:one", "c:two"},
			[]Ack{{Label: "c:one", Status: 200}, {Label: "c:two", Status: 503}},
			424, `{"c:one":{"status":200},"c:two":{"status":503}}`, client.Redeliver},
		{"a 400 among two is not redelivered", []string{"c:one", "c:two"},
			[]Ack{{Label: "c:one", Status: 200}, {Label: "c:two", Status: 400, Payload: json.RawMessage(`"You better try harder"`)}},
			424, `{"c:one":{"status":200},"c:two":{"status":400,"payload":"You better try harder"}}`, client.Reject},
		{"an undeclared label times out", []string{"c:one", "nobody:declared"},
			[]Ack{{Label: "c:one", Status: 200}},
			424, `{"c:one":{"status":200},"nobody:declared":{"status":408,"payload":{"status":408,"error":"acknowledgement:request.timeout","message":"The acknowledgement request reached the specified timeout of 1,337ms.","description":"Try increasing the timeout and make sure that the requested acknowledgement is sent back in time."},"headers":{"correlation-id":"` + cid + `"}}}`,
			client.Redeliver},
		{"a weak ack is a success", []string{"c:one"},
			[]Ack{NewWeak("c:one", cid)},
			200, `{"c:one":{"status":200,"headers":{"correlation-id":"` + cid + `","ditto-weak-ack":true}}}`, client.Accept},
		{"unrequested and repeated labels are ignored", []string{"c:one"},
			[]Ack{{Label: "c:other", Status: 500}, {Label: "c:one", Status: 204}, {Label: "c:one", Status: 500}},
			204, `{"c:one":{"status":204}}`, client.Accept},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			agg := NewAggregation(tc.labels)
			for _, a := range tc.acks {
				agg.Add(a)
			}
			m, outcome := agg.Answer(thing, h(), 1337*time.Millisecond)
			if m.Topic != "org.eclipse.ditto/thing_name_3141/things/live/acks" || m.Path != "/" || m.Status != tc.status {
				t.Fatalf("answer %s %s status %d, want status %d", m.Topic, m.Path, m.Status, tc.status)
			}
			if string(m.Value) != tc.value {
				t.Fatalf("value\n got %s\nwant %s", m.Value, tc.value)
			}
			if agg.Outcome() != outcome {
				t.Fatalf("Outcome() %v, Answer's %v", agg.Outcome(), outcome)
			}
			if outcome != tc.outcome {
				t.Fatalf("settled %v, want %v", outcome, tc.outcome)
			}
			if m.Headers["correlation-id"] != cid {
				t.Fatalf("headers %v", m.Headers)
			}
		})
	}
}

// With live-response as the only label, the answer is the live response.
func TestLiveResponseAloneIsThePlainResponse(t *testing.T) {
	agg := NewAggregation([]string{LiveResponse})
	resp := &protocol.Message{Topic: "org.eclipse.ditto/thing_name_3141/things/live/messages/ask",
		Headers: map[string]string{"correlation-id": "c"}, Path: "/outbox/messages/ask", Value: json.RawMessage(`"yes"`), Status: 404}
	if agg.Done() || !agg.AddResponse(resp) || !agg.Done() {
		t.Fatal("live response did not complete the aggregation")
	}
	m, o := agg.Answer(thing, map[string]string{"correlation-id": "c"}, time.Second)
	if m != resp || o != client.Reject {
		t.Fatalf("answer %+v settled %v", m, o)
	}
	// Nobody answered: the 408 entry, settled for redelivery.
	m, o = NewAggregation([]string{LiveResponse}).Answer(thing, map[string]string{"correlation-id": "c"}, time.Second)
	if m.Status != 408 || o != client.Redeliver || m.Topic != "org.eclipse.ditto/thing_name_3141/things/live/acks" {
		t.Fatalf("timeout answer %s %d settled %v", m.Topic, m.Status, o)
	}
}

func TestOutcome(t *testing.T) {
	for status, want := range map[int]client.Outcome{200: client.Accept, 204: client.Accept, 412: client.Accept,
		408: client.Redeliver, 424: client.Redeliver, 500: client.Redeliver, 503: client.Redeliver,
		400: client.Reject, 403: client.Reject, 404: client.Reject} {
		if got := Outcome(status); got != want {
			t.Errorf("Outcome(%d) = %v, want %v", status, got, want)
		}
	}
	if Settle(nil) != client.Redeliver {
		t.Error("no answer must redeliver")
	}
}

func TestRequestedHeader(t *testing.T) {
	for in, want := range map[string][]string{
		`["a:b","twin-persisted"]`:     {"a:b", "twin-persisted"},
		`a:b, live-response ,a:b`:      {"a:b", "live-response"},
		`["x","ok-label"]`:             {"ok-label"},
		`[`:                            nil,
		``:                             {},
		`["{{connection:id}}:ack"]`:    {"{{connection:id}}:ack"},
		`["{{ connection:id }}:ack2"]`: {"{{ connection:id }}:ack2"},
	} {
		got := ParseRequested(in)
		if len(got) == 0 && len(want) == 0 {
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("ParseRequested(%q) = %q, want %q", in, got, want)
		}
	}
	if got := FormatRequested([]string{"a:b", "live-response"}); got != `["a:b","live-response"]` {
		t.Errorf("FormatRequested = %s", got)
	}
	for in, want := range map[string]time.Duration{"": DefaultTimeout, "42s": 42 * time.Second, "250ms": 250 * time.Millisecond,
		"1m": time.Minute, "5": 5 * time.Second, "2m": MaxTimeout, "junk": DefaultTimeout, "0s": 0} {
		if got := ParseTimeout(in); got != want {
			t.Errorf("ParseTimeout(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSingleAckMessage(t *testing.T) {
	a := Ack{Label: "custom-ack", Status: 400, Headers: map[string]string{"correlation-id": "c"}, Payload: json.RawMessage(`"You better try harder"`)}
	tw := thing
	tw.Channel = "twin"
	got := string(protocol.Encode(a.Message(tw)))
	want := `{"topic":"org.eclipse.ditto/thing_name_3141/things/twin/acks/custom-ack","headers":{"correlation-id":"c"},"path":"/","value":"You better try harder","status":400}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	m, _ := protocol.Decode([]byte(want))
	pt, _ := protocol.ParseTopic(m.Topic)
	back, ok := FromMessage(m, &pt)
	if !ok || back.Label != "custom-ack" || back.Status != 400 || string(back.Payload) != `"You better try harder"` {
		t.Fatalf("FromMessage = %+v %v", back, ok)
	}
}

func FuzzParseRequested(f *testing.F) {
	f.Add(`["a:b","live-response"]`)
	f.Add(`a, b ,c`)
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range ParseRequested(s) {
			if !ValidLabel(l) {
				t.Fatalf("invalid label %q accepted", l)
			}
		}
		_ = ParseTimeout(s)
	})
}
