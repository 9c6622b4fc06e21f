package live

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationBridgeRefusedUpgrade: Ditto refusing the session's upgrade
// with 401 or 403 (the pre-authentication not trusted, the subject not
// allowed) shows as the Ditto session's client entry "misconfigured" and
// the connection misconfigured, for a connection that was open and for one
// created while Ditto refuses; once Ditto accepts again, both are open and
// their targets subscribed.
func TestIntegrationBridgeRefusedUpgrade(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := bridgeNode(t, emu)
	run := fmt.Sprint(runID)
	conn := func(id string) map[string]any {
		return map[string]any{"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
			"specificConfig": map[string]any{"clientId": id},
			"targets": []any{map[string]any{"address": "bridge/" + run + "/refused/" + id, "qos": 1,
				"authorizationContext": []string{"integration:reader"}, "topics": []string{"_/_/things/twin/events"}}}}
	}
	// session is the connection's one Ditto session entry once it has status
	// st with details ending in suffix, and the connection liveStatus live.
	session := func(id, st, suffix, live string) map[string]any {
		t.Helper()
		var got map[string]any
		poll.Check(t, 15*time.Second, func() error {
			s := status(t, n, id)
			entries := dittoSessionEntries(s)
			if len(entries) != 1 {
				return fmt.Errorf("Ditto session entries of %s: %v", id, entries)
			}
			got = entries[0]
			d, _ := got["statusDetails"].(string)
			if got["status"] != st || !strings.HasSuffix(d, suffix) || s["liveStatus"] != live {
				return fmt.Errorf("%s: liveStatus %v, Ditto session %v; want %s %q, liveStatus %s",
					id, s["liveStatus"], got, st, suffix, live)
			}
			return nil
		})
		return got
	}

	first, second := dpID("bridge-refused-1"), dpID("bridge-refused-2")
	dpOpen(t, n, conn(first))
	session(first, "open", ": open", "open")

	emu.RefuseUpgrades(http.StatusUnauthorized)
	emu.KillSessions()
	e := session(first, "misconfigured", ": misconfigured (401 on the upgrade); retrying", "misconfigured")
	if !strings.HasPrefix(e["statusDetails"].(string), "ditto session [integration:reader] "+emu.URL()+": ") {
		t.Errorf("Ditto session entry %v", e)
	}
	if e["recoveryStatus"] != "ongoing" {
		t.Errorf("recoveryStatus of the refused session %v, want ongoing", e["recoveryStatus"])
	}

	// a connection created while Ditto refuses is misconfigured from the start
	emu.RefuseUpgrades(http.StatusForbidden)
	c := conn(second)
	c["connectionStatus"] = "open"
	if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", c)); r == nil || r.Status != http.StatusCreated {
		t.Fatalf("create %s: %v", second, r)
	}
	session(second, "misconfigured", ": misconfigured (403 on the upgrade); retrying", "misconfigured")
	session(first, "misconfigured", ": misconfigured (403 on the upgrade); retrying", "misconfigured")
	for _, s := range emu.Sessions() {
		t.Errorf("a session opened while Ditto refuses: %+v", s)
	}

	emu.RefuseUpgrades(0)
	for _, id := range []string{first, second} {
		waitLive(t, n, id, "open", "succeeded", 15*time.Second)
		e := session(id, "open", ": open", "open")
		if e["recoveryStatus"] != "succeeded" {
			t.Errorf("recoveryStatus of %s's session %v after Ditto accepts again", id, e["recoveryStatus"])
		}
	}
	poll.Check(t, 5*time.Second, func() error {
		subscribed := map[string]bool{}
		for _, s := range emu.Sessions() {
			for _, sb := range s.Subscriptions {
				if sb.Type == "EVENTS" {
					subscribed[s.Origin] = true
				}
			}
		}
		if !subscribed[first] || !subscribed[second] {
			return fmt.Errorf("targets subscribed at Ditto: %v, want %s and %s", subscribed, first, second)
		}
		return nil
	})
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
