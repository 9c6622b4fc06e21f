package cluster

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/poll"
)

// The Ditto bridge in a cluster (#14): a connection's sessions with Ditto
// live where its clients run, satellites included, the status lists them
// all, and nothing Ditto delivers is published twice. Every member talks to one Ditto gateway
// emulator in the test process; each member's URI carries its instance
// in the query, so the emulator's sessions tell which member opened them.

// memberQuery is the query of instance's DITTOCONN_DITTO_WS_URI.
func memberQuery(instance string) string { return "member=" + instance }

// bridgeSessions are the emulator's sessions of connection id (its
// x-correlation-id on every upgrade): the subscribing ones and the
// command-only ones.
func bridgeSessions(emu *dittoemu.Emulator, id string) (subscribing, commandOnly []dittoemu.SessionInfo) {
	for _, s := range emu.Sessions() {
		if s.Origin != id {
			continue
		}
		if len(s.Subscriptions) > 0 {
			subscribing = append(subscribing, s)
		} else {
			commandOnly = append(commandOnly, s)
		}
	}
	return subscribing, commandOnly
}

// describeSessions is the sessions as "query subjects [streams]", for
// failure messages.
func describeSessions(l []dittoemu.SessionInfo) []string {
	var out []string
	for _, s := range l {
		var streams []string
		for _, sub := range s.Subscriptions {
			streams = append(streams, sub.Type)
		}
		out = append(out, fmt.Sprintf("%s %v %v", s.Query, s.Subjects, streams))
	}
	slices.Sort(out)
	return out
}

// brokerAndDittoClients splits a status's client entries into the broker
// clients ("instance=status") and the sessions with Ditto, which the
// status lists as clients too ("instance=status details").
func brokerAndDittoClients(m map[string]any) (broker, ditto []string) {
	list, _ := m["clientStatus"].([]any)
	for _, e := range list {
		c, _ := e.(map[string]any)
		d, _ := c["statusDetails"].(string)
		if strings.HasPrefix(d, "ditto session ") {
			ditto = append(ditto, fmt.Sprintf("%v=%v %s", c["client"], c["status"], d))
		} else {
			broker = append(broker, fmt.Sprintf("%v=%v", c["client"], c["status"]))
		}
	}
	slices.Sort(broker)
	slices.Sort(ditto)
	return broker, ditto
}

// eventValues reads n twin events' values (plus a last one, sentinel,
// which the emulator produced after them) from sub and fails on a
// duplicate, an unexpected value or a missing one. Ditto delivers a
// session's events in order, so the sentinel arriving means every earlier
// event did; a second subscribing session would deliver the same events
// alongside.
func eventValues(t *testing.T, sub *blackbox.Subscriber, want []int, sentinel int) {
	t.Helper()
	seen := map[int]int{}
	deadline := time.After(20 * time.Second)
	for seen[sentinel] == 0 {
		select {
		case m := <-sub.Msgs:
			var e struct {
				Topic string `json:"topic"`
				Path  string `json:"path"`
				Value int    `json:"value"`
			}
			if err := json.Unmarshal(m.Payload(), &e); err != nil || !strings.Contains(e.Topic, "/things/twin/events/") ||
				e.Path != "/attributes/temperature" {
				t.Fatalf("target published %s", m.Payload())
			}
			seen[e.Value]++
		case <-deadline:
			t.Fatalf("the sentinel event %d did not arrive within 20s; seen %v", sentinel, seen)
		}
	}
	for v, n := range seen {
		if n != 1 {
			t.Errorf("event %d published %d times", v, n)
		}
		if v != sentinel && !slices.Contains(want, v) {
			t.Errorf("unexpected event %d", v)
		}
	}
	for _, v := range want {
		if seen[v] == 0 {
			t.Errorf("event %d never published", v)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestIntegrationClusterDittoBridge: an MQTT connection with clientCount 2
// on two members, each member's client consuming from one shared
// subscription. The grain's member (client 0) alone subscribes the target
// at Ditto; each member sends what its client consumed on a command session
// of its own, and those commands reach the twin; every twin event Ditto
// produces for another client is published to the target exactly once;
// the status lists every member's sessions. After the grain's member is
// killed, the survivor's client 0 subscribes the target again, once, the
// survivor's leftover satellite is gone with its session, and events
// still arrive exactly once.
func TestIntegrationClusterDittoBridge(t *testing.T) {
	blackbox.NeedBroker(t, "mosquitto", "127.0.0.1:1883")
	began := time.Now()
	emu := dittoemu.Start(t, dittoemu.Options{})
	// A stopped client's persistent MQTT 5 session would stay in the share
	// group until it expires (Ditto's 60 s) and the broker would queue its
	// turn of the shared subscription for it: without one, the client that
	// runs after the failover gets every command.
	c := startCluster(t, 0, "DITTOCONN_DITTO_RECONNECT_MIN=50ms", "DITTOCONN_DITTO_RECONNECT_MAX=500ms",
		"CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL=0s")
	for _, inst := range []string{"node-1", "node-2"} {
		c.nodes = append(c.nodes, c.startNode(inst, "DITTOCONN_DITTO_WS_URI="+emu.URL()+"?"+memberQuery(inst)))
	}
	c.waitMembers(2, 30*time.Second)

	run := fmt.Sprint(time.Now().UnixNano())
	id := "bcl-" + run
	thing := "org.acme:bcl-" + run
	ns, name, _ := strings.Cut(thing, ":")
	emu.Grant(thing, "integration:device", true, true)
	emu.Grant(thing, "integration:reader", true, false)
	apply := func(action, path string, value any, cid string) *protocol.Message {
		raw, _ := json.Marshal(value)
		return emu.Apply("test:admin", &protocol.Message{Topic: ns + "/" + name + "/things/twin/commands/" + action,
			Path: path, Value: raw, Headers: map[string]string{"correlation-id": cid, "response-required": "true"}})
	}
	if ans := apply("create", "/", map[string]any{"thingId": thing}, "create"); ans == nil || ans.Status != http.StatusCreated {
		t.Fatalf("create %s in the emulator: %+v", thing, ans)
	}

	// Created closed first: a closed connection's status names the member
	// hosting its grain, which runs client 0.
	closed := blackbox.MQTTConnection(id, "closed")
	closed["connectionType"] = "mqtt-5"
	status, m := c.nodes[0].command(t, blackbox.Cmd("connectivity.commands:createConnection", "connection", closed))
	if status != http.StatusOK || m["status"] != float64(http.StatusCreated) {
		t.Fatalf("create: %d %v", status, m)
	}
	grainHost := hostOf(t, c.nodes[0], id)
	grain := slices.IndexFunc(c.nodes, func(n *clusterNode) bool { return n.instance == grainHost })
	if grain < 0 {
		t.Fatalf("grain on %q, not a member", grainHost)
	}
	other := 1 - grain
	// session is an open session's client entry in the status
	session := func(inst, subject string) string {
		return inst + "=open ditto session [" + subject + "] " + emu.URL() + "?" + memberQuery(inst) + ": open"
	}
	in, reply, out := "bcl/"+run+"/in", "bcl/"+run+"/reply", "bcl/"+run+"/events"
	conn := map[string]any{
		"id": id, "connectionType": "mqtt-5", "connectionStatus": "open", "uri": "tcp://127.0.0.1:1883",
		"clientCount": 2, "specificConfig": map[string]any{"clientId": id},
		"sources": []any{map[string]any{
			// one shared subscription: the broker hands each message to one
			// of the two clients
			"addresses": []string{"$share/" + id + "/" + in}, "qos": 1,
			"authorizationContext":    []string{"integration:device"},
			"acknowledgementRequests": map[string]any{"includes": []string{"twin-persisted"}},
			"replyTarget": map[string]any{"enabled": true, "address": reply,
				"expectedResponseTypes": []string{"response", "error", "nack"}},
		}},
		"targets": []any{map[string]any{"address": out, "qos": 1,
			"authorizationContext": []string{"integration:reader"},
			"topics":               []string{"_/_/things/twin/events"}}},
	}
	status, m = c.nodes[other].command(t, blackbox.Cmd("connectivity.commands:modifyConnection", "connection", conn))
	if status != http.StatusOK || m["status"] != float64(http.StatusNoContent) {
		t.Fatalf("open: %d %v", status, m)
	}
	poll.Check(t, 30*time.Second, func() error {
		_, m := c.nodes[0].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
		broker, ditto := brokerAndDittoClients(m)
		wantDitto := []string{session(grainHost, "integration:reader")}
		if !slices.Equal(broker, []string{"node-1=open", "node-2=open"}) || !slices.Equal(ditto, wantDitto) || m["liveStatus"] != "open" {
			return fmt.Errorf("clients %v, Ditto sessions %v (want %v), live %v: %v", broker, ditto, wantDitto, m["liveStatus"], m)
		}
		return nil
	})
	replies := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", reply)
	events := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", out)

	// (a) the target subscribes once, from client 0's member, under its
	// own subject.
	poll.Check(t, 15*time.Second, func() error {
		subscribing, _ := bridgeSessions(emu, id)
		if len(subscribing) != 1 || subscribing[0].Query != memberQuery(grainHost) ||
			!slices.Equal(subscribing[0].Subjects, []string{"integration:reader"}) ||
			len(subscribing[0].Subscriptions) != 1 || subscribing[0].Subscriptions[0].Type != "EVENTS" {
			return fmt.Errorf("subscribing sessions %v, want one from %s: integration:reader [EVENTS]",
				describeSessions(subscribing), grainHost)
		}
		return nil
	})

	// (b) commands consumed on either member reach the twin, each
	// answered once on the reply topic.
	const commands = 10
	dev := blackbox.MQTTPublisher(t, "tcp://127.0.0.1:1883")
	for i := range commands {
		b, _ := json.Marshal(map[string]any{"topic": ns + "/" + name + "/things/twin/commands/modify",
			"headers": map[string]string{"correlation-id": fmt.Sprintf("bcl-c%d", i), "timeout": "10s"},
			"path":    fmt.Sprintf("/attributes/a%d", i), "value": i})
		blackbox.PublishMQTT(t, dev, in, string(b))
	}
	answered := map[string]int{}
	for range commands {
		r := blackbox.Decode(t, replies.Next(t, 20*time.Second, "Ditto's response to a device's command").Payload())
		cid, _ := blackbox.Field(r, "headers", "correlation-id").(string)
		answered[cid]++
		blackbox.WantField(t, r, float64(http.StatusCreated), "status")
	}
	for i := range commands {
		if n := answered[fmt.Sprintf("bcl-c%d", i)]; n != 1 {
			t.Errorf("command bcl-c%d answered %d times: %v", i, n, answered)
		}
	}
	doc, _ := emu.Thing(thing)
	var th struct {
		Attributes map[string]any `json:"attributes"`
	}
	_ = json.Unmarshal(doc, &th)
	for i := range commands {
		if v := th.Attributes[fmt.Sprintf("a%d", i)]; v != float64(i) {
			t.Errorf("attribute a%d = %v at the twin, want %d: %s", i, v, i, doc)
		}
	}
	// each member's client consumed some (the broker shares the
	// subscription round robin) and sent them on a command session of its
	// own member: the satellite sends up too, the target's session is not
	// used for another context.
	subscribing, commandOnly := bridgeSessions(emu, id)
	if got, want := describeSessions(commandOnly), []string{
		memberQuery("node-1") + " [integration:device] []", memberQuery("node-2") + " [integration:device] []",
	}; !slices.Equal(got, want) {
		t.Errorf("command sessions %v, want %v", got, want)
	}
	if len(subscribing) != 1 {
		t.Errorf("subscribing sessions %v after the commands", describeSessions(subscribing))
	}
	if t.Failed() {
		t.FailNow()
	}
	// the status lists every member's sessions with Ditto as client
	// entries of that member (a satellite's within its next renewal)
	wantSessions := []string{session(grainHost, "integration:reader"), session("node-1", "integration:device"),
		session("node-2", "integration:device")}
	slices.Sort(wantSessions)
	poll.Check(t, 15*time.Second, func() error {
		_, m := c.nodes[grain].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
		if _, ditto := brokerAndDittoClients(m); !slices.Equal(ditto, wantSessions) || m["liveStatus"] != "open" {
			return fmt.Errorf("Ditto sessions in the status %v, want %v; live %v", ditto, wantSessions, m["liveStatus"])
		}
		return nil
	})

	// (c) events of another client's changes reach the target exactly
	// once: on the MQTT topic, and in the merged metrics of both members.
	modify := func(v int) {
		if ans := apply("modify", "/attributes/temperature", v, fmt.Sprintf("t-%d", v)); ans == nil || ans.Status/100 != 2 {
			t.Fatalf("modify in the emulator: %+v", ans)
		}
	}
	const events1 = 20
	var want []int
	for v := 1; v <= events1; v++ {
		modify(v)
		want = append(want, v)
	}
	modify(1000)
	eventValues(t, events, want, 1000)
	poll.Check(t, 15*time.Second, func() error {
		_, m := c.nodes[other].command(t, blackbox.Cmd("connectivity.commands:retrieveConnectionMetrics", "connectionId", id))
		v, _ := blackbox.Field(m, "targetMetrics", "addressMetrics", out, "published", "success", "PT1M").(float64)
		if v > events1+1 {
			t.Fatalf("published %v, want %d: %v", v, events1+1, m["targetMetrics"])
		}
		if v != events1+1 {
			return fmt.Errorf("published %v, want %d: %v", v, events1+1, m["targetMetrics"])
		}
		return nil
	})
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
	t.Logf("before failover: %s", time.Since(began).Round(time.Millisecond))

	// (d) the grain's member dies: its sessions end with it, the survivor
	// runs client 0 and subscribes the target again, once.
	c.kill(grain)
	survivor := c.nodes[other].instance
	poll.Check(t, 30*time.Second, func() error {
		subscribing, _ := bridgeSessions(emu, id)
		if len(subscribing) != 1 || subscribing[0].Query != memberQuery(survivor) ||
			!slices.Equal(subscribing[0].Subjects, []string{"integration:reader"}) {
			return fmt.Errorf("subscribing sessions %v, want one from %s", describeSessions(subscribing), survivor)
		}
		return nil
	})
	// The killed member's sessions ended with it. The survivor's satellite
	// of the dead grain was stopped when the new grain started its
	// clients, before client 0 subscribed, its session with it: well
	// before the satellite would expire unrenewed (20 s).
	poll.Check(t, 5*time.Second, func() error {
		if _, commandOnly := bridgeSessions(emu, id); len(commandOnly) > 0 {
			return fmt.Errorf("command sessions %v still open, want none", describeSessions(commandOnly))
		}
		return nil
	})
	poll.Check(t, 15*time.Second, func() error {
		_, m := c.nodes[other].commandWithin(t, "3s", blackbox.Cmd("connectivity.commands:retrieveConnectionStatus", "connectionId", id))
		broker, ditto := brokerAndDittoClients(m)
		if want := []string{"<unknown>=misconfigured", survivor + "=open"}; !slices.Equal(broker, want) ||
			!slices.Equal(ditto, []string{session(survivor, "integration:reader")}) {
			return fmt.Errorf("clients %v (want %v), Ditto sessions %v", broker, want, ditto)
		}
		return nil
	})
	// the survivor's client 0 consumes every command now
	b, _ := json.Marshal(map[string]any{"topic": ns + "/" + name + "/things/twin/commands/modify",
		"headers": map[string]string{"correlation-id": "bcl-after", "timeout": "10s"},
		"path":    "/attributes/after", "value": true})
	blackbox.PublishMQTT(t, dev, in, string(b))
	r := blackbox.Decode(t, replies.Next(t, 20*time.Second, "Ditto's response after the failover").Payload())
	blackbox.WantField(t, r, "bcl-after", "headers", "correlation-id")
	blackbox.WantField(t, r, float64(http.StatusCreated), "status")
	if _, commandOnly := bridgeSessions(emu, id); !slices.Equal(describeSessions(commandOnly),
		[]string{memberQuery(survivor) + " [integration:device] []"}) {
		t.Errorf("command sessions after the failover %v, want one from %s", describeSessions(commandOnly), survivor)
	}
	want = want[:0]
	for v := 2001; v <= 2000+events1; v++ {
		modify(v)
		want = append(want, v)
	}
	modify(3000)
	eventValues(t, events, want, 3000)
	if subscribing, _ := bridgeSessions(emu, id); len(subscribing) != 1 {
		t.Errorf("subscribing sessions %v after the failover's events", describeSessions(subscribing))
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
	t.Logf("runtime: %s", time.Since(began).Round(time.Millisecond))
}
