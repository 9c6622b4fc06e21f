package live

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// runID tells this test process's MQTT sessions from other runs'.
var runID = os.Getpid()

// mqttLive is an MQTT connection (type "mqtt" or "mqtt-5") on uri with one
// source and one target that also receives connection announcements.
func mqttLive(typ, id, status, uri string) map[string]any {
	return map[string]any{
		"id":               id,
		"connectionType":   typ,
		"connectionStatus": status,
		"uri":              uri,
		// a client id of this test run: other runs on the shared broker must
		// not take over this session
		"specificConfig": map[string]any{"clientId": fmt.Sprintf("%s-%d", id, runID)},
		"sources": []any{map[string]any{
			"addresses":            []string{"in/" + id + "/#"},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  1,
		}},
		"targets": []any{map[string]any{
			"address":              "announce/{{ connection:id }}",
			"topics":               []string{"_/_/connections/announcements", "_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  1,
		}},
	}
}

// status retrieves the connection status as a decoded map.
func status(t *testing.T, n *kit.Node, id string) map[string]any {
	t.Helper()
	r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", id))
	if r == nil || r.Status != http.StatusOK {
		t.Fatalf("status of %s: %v", id, r)
	}
	return blackbox.Decode(t, r.Payload)
}

// waitLive polls the status until liveStatus (and recoveryStatus, when not
// empty) match.
func waitLive(t *testing.T, n *kit.Node, id, live, recovery string, within time.Duration) map[string]any {
	t.Helper()
	var last map[string]any
	poll.Until(t, within, "liveStatus "+live+"/"+recovery+" of "+id, func() bool {
		last = status(t, n, id)
		return last["liveStatus"] == live && (recovery == "" || last["recoveryStatus"] == recovery)
	})
	return last
}

// announcement checks an announcement message of the Ditto Protocol.
func announcement(t *testing.T, payload []byte, id, kind string) {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatalf("announcement is not JSON: %s", payload)
	}
	blackbox.WantField(t, m, "_/"+id+"/connections/announcements/"+kind, "topic")
	blackbox.WantField(t, m, "/", "path")
	blackbox.WantField(t, m, "application/json", "headers", "content-type")
	if v, _ := blackbox.Field(m, "value", kind+"At").(string); !strings.HasSuffix(v, "Z") {
		t.Errorf("value.%sAt = %v", kind, blackbox.Field(m, "value", kind+"At"))
	}
}

// testLiveMQTT runs the issue-4 checklist for an MQTT connection type.
func testLiveMQTT(t *testing.T, typ string) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
	prefix := strings.ReplaceAll(typ, "-", "")

	t.Run("test success", func(t *testing.T) {
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", mqttLive(typ, prefix+"-test-ok", "closed", "tcp://127.0.0.1:1883")))
		if r.Status != http.StatusOK {
			t.Fatalf("test: %d %s", r.Status, r.Payload)
		}
		m := blackbox.Decode(t, r.Payload)
		blackbox.WantField(t, m, "Success(successfully connected + initialized mapper)", "testResult")
	})

	t.Run("test wrong credentials", func(t *testing.T) {
		b := blackbox.StartMosquitto(t, map[string]string{"ditto": "right"}, "")
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection",
			mqttLive(typ, prefix+"-test-cred", "closed", "tcp://ditto:wrong@"+b.Addr())))
		if r.Status != http.StatusUnauthorized {
			t.Fatalf("test with wrong password: %d %s", r.Status, r.Payload)
		}
		m := blackbox.Decode(t, r.Payload)
		blackbox.WantField(t, m, ditto.CodeConnectionUnauthorized, "error")
		if strings.Contains(string(r.Payload), "wrong") {
			t.Errorf("the answer shows the password: %s", r.Payload)
		}
		// and the right one passes
		r = n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection",
			mqttLive(typ, prefix+"-test-cred", "closed", "tcp://ditto:right@"+b.Addr())))
		if r.Status != http.StatusOK {
			t.Fatalf("test with right password: %d %s", r.Status, r.Payload)
		}
	})

	t.Run("test unreachable", func(t *testing.T) {
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection",
			mqttLive(typ, prefix+"-test-unreach", "closed", "tcp://127.0.0.1:"+strconv.Itoa(blackbox.FreePort(t)))))
		if r.Status != http.StatusGatewayTimeout {
			t.Fatalf("test unreachable: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, blackbox.Decode(t, r.Payload), ditto.CodeConnectionFailed, "error")
	})

	t.Run("open, broker down and back, close", func(t *testing.T) {
		b := blackbox.StartMosquitto(t, nil, "")
		id := prefix + "-live-1"
		sub := blackbox.Subscribe(t, b.URI(), "announce/"+id)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", mqttLive(typ, id, "closed", b.URI()))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id))
		if r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		announcement(t, sub.Next(t, 10*time.Second, "opened announcement").Payload(), id, "opened")

		m := status(t, n, id)
		blackbox.WantField(t, m, "open", "connectionStatus")
		blackbox.WantField(t, m, "open", "liveStatus")
		blackbox.WantField(t, m, "succeeded", "recoveryStatus")
		if m["connectedSince"] == nil {
			t.Errorf("no connectedSince: %v", m)
		}
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"open","recoveryStatus":"succeeded","statusDetails":"CONNECTED"}]`)
		wantEntries(t, m, "sourceStatus", `[{"type":"source","client":"kit-1","address":"in/`+id+`/#","status":"open","statusDetails":"Consumer started."}]`)
		wantEntries(t, m, "targetStatus", `[{"type":"target","client":"kit-1","address":"announce/{{ connection:id }}","status":"unknown","statusDetails":"Producers for targets with placeholders are started on-demand."}]`)

		b.Stop()
		m = waitLive(t, n, id, "failed", "ongoing", 15*time.Second)
		blackbox.WantField(t, m, "open", "connectionStatus")
		if m["connectedSince"] != nil {
			t.Errorf("connectedSince while failed: %v", m["connectedSince"])
		}

		b.Start()
		sub.Resubscribed(t)
		waitLive(t, n, id, "open", "succeeded", 15*time.Second)
		// the reconnect announces opened again (the subscriber reconnects too,
		// so it may or may not have seen it; drain what came)
		for len(sub.Msgs) > 0 {
			<-sub.Msgs
		}

		logs := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id))
		for _, want := range []string{"Connection successful", "Connection failed due to: ", "Trying to reconnect"} {
			if !strings.Contains(string(logs.Payload), want) {
				t.Errorf("connection logs lack %q: %s", want, logs.Payload)
			}
		}

		r = n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id))
		if r.Status != http.StatusOK {
			t.Fatalf("close: %d %s", r.Status, r.Payload)
		}
		announcement(t, sub.Next(t, 10*time.Second, "closed announcement").Payload(), id, "closed")
		m = status(t, n, id)
		blackbox.WantField(t, m, "closed", "connectionStatus")
		blackbox.WantField(t, m, "closed", "liveStatus")
		wantEntries(t, m, "clientStatus", `[{"type":"client","client":"kit-1","status":"closed","recoveryStatus":"unknown","statusDetails":"[DISCONNECTED] connection is closed"}]`)
		logs = n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionLogs, "connectionId", id))
		if !strings.Contains(string(logs.Payload), "Disconnected successfully") {
			t.Errorf("connection logs lack the disconnect: %s", logs.Payload)
		}
	})

	t.Run("open fails with the error and keeps retrying", func(t *testing.T) {
		port := blackbox.FreePort(t)
		id := prefix + "-retry-1"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", mqttLive(typ, id, "closed", "tcp://127.0.0.1:"+strconv.Itoa(port)))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id))
		if r.Status != http.StatusGatewayTimeout {
			t.Fatalf("open of an unreachable broker: %d %s", r.Status, r.Payload)
		}
		m := waitLive(t, n, id, "failed", "ongoing", 5*time.Second)
		blackbox.WantField(t, m, "open", "connectionStatus")
		// a broker appears on that port: the connection opens without a command
		b := blackbox.MosquittoOn(t, port)
		b.Start()
		t.Cleanup(b.Stop)
		waitLive(t, n, id, "open", "succeeded", 15*time.Second)
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Payload)
		}
	})

	t.Run("separate publisher client and last will", func(t *testing.T) {
		id := prefix + "-sep-pub"
		sub := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", "announce/"+id)
		c := mqttLive(typ, id, "closed", "tcp://127.0.0.1:1883")
		sc := c["specificConfig"].(map[string]any)
		sc["separatePublisherClient"] = "true"
		sc["keepAlive"] = "20s"
		sc["lastWillTopic"] = "will/" + id
		sc["lastWillMessage"] = "gone"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", c)); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.OpenConnection, "connectionId", id)); r.Status != http.StatusOK {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		announcement(t, sub.Next(t, 10*time.Second, "opened announcement").Payload(), id, "opened")
		blackbox.WantField(t, status(t, n, id), "open", "liveStatus")
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Payload)
		}
		announcement(t, sub.Next(t, 10*time.Second, "closed announcement").Payload(), id, "closed")
	})

	t.Run("create open replies 201 and connects", func(t *testing.T) {
		id := prefix + "-create-open"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", mqttLive(typ, id, "open", "tcp://127.0.0.1:1883"))); r.Status != 201 {
			t.Fatalf("create: %d %s", r.Status, r.Payload)
		}
		waitLive(t, n, id, "open", "succeeded", 10*time.Second)
		// modify of an open connection reconnects before replying
		c := mqttLive(typ, id, "open", "tcp://127.0.0.1:1883")
		c["name"] = "modified"
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.ModifyConnection, "connection", c)); r.Status != http.StatusNoContent {
			t.Fatalf("modify: %d %s", r.Status, r.Payload)
		}
		blackbox.WantField(t, status(t, n, id), "open", "liveStatus")
		if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.Status, r.Payload)
		}
	})
}

// wantEntries compares status entries without their inStateSince (which
// must be present).
func wantEntries(t *testing.T, m map[string]any, key, want string) {
	t.Helper()
	list, _ := m[key].([]any)
	for _, e := range list {
		em := e.(map[string]any)
		if _, ok := em["inStateSince"].(string); !ok && em["client"] != "<unknown>" {
			t.Errorf("%s entry without inStateSince: %v", key, em)
		}
		delete(em, "inStateSince")
	}
	got, _ := json.Marshal(list)
	var w any
	_ = json.Unmarshal([]byte(want), &w)
	wb, _ := json.Marshal(w)
	if string(got) != string(wb) {
		t.Errorf("%s = %s\nwant %s", key, got, wb)
	}
}

func TestIntegrationMQTT(t *testing.T)  { testLiveMQTT(t, "mqtt") }
func TestIntegrationMQTT5(t *testing.T) { testLiveMQTT(t, "mqtt-5") }
