package live

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/dittoemu"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestIntegrationBridgePolicyAnnouncement: Ditto announces the deletion of
// a policy's subjects to the sessions holding them; the MQTT target whose
// authorizationContext is such a subject gets the announcement as Ditto
// sent it, the target of another subject does not (its own announcement,
// made afterwards, is the first thing it gets).
func TestIntegrationBridgePolicyAnnouncement(t *testing.T) {
	blackbox.NeedBroker(t, "Mosquitto", "127.0.0.1:1883")
	emu := dittoemu.Start(t, dittoemu.Options{})
	n := bridgeNode(t, emu)
	id, run := dpID("bridge-announce"), fmt.Sprint(runID)
	prefix := "bridge/" + run + "/announce"
	dpOpen(t, n, map[string]any{
		"id": id, "connectionType": "mqtt", "uri": "tcp://127.0.0.1:1883",
		"specificConfig": map[string]any{"clientId": id},
		"targets": []any{
			map[string]any{"address": prefix + "/owner", "qos": 1, "authorizationContext": []string{"integration:owner"},
				"topics": []string{"_/_/policies/announcements"}},
			map[string]any{"address": prefix + "/stranger", "qos": 1, "authorizationContext": []string{"integration:stranger"},
				"topics": []string{"_/_/policies/announcements"}},
		},
	})
	owner := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", prefix+"/owner")
	stranger := blackbox.Subscribe(t, "tcp://127.0.0.1:1883", prefix+"/stranger")
	// both sessions subscribed (their START-SEND-POLICY-ANNOUNCEMENTS acknowledged by Ditto)
	poll.Check(t, 15*time.Second, func() error {
		var subscribed []string
		for _, s := range emu.Sessions() {
			for _, sub := range s.Subscriptions {
				if s.Origin == id && sub.Type == "POLICY_ANNOUNCEMENTS" {
					subscribed = append(subscribed, strings.Join(s.Subjects, ","))
				}
			}
		}
		slices.Sort(subscribed)
		if want := []string{"integration:owner", "integration:stranger"}; !slices.Equal(subscribed, want) {
			return fmt.Errorf("sessions subscribed to policy announcements: %v, want %v", subscribed, want)
		}
		return nil
	})
	policy := fmt.Sprintf("org.acme:policy-%d", runID)
	at := time.Date(2031, 3, 3, 16, 5, 55, 0, time.UTC)
	if got := emu.AnnounceSubjectDeletion(policy, []string{"integration:owner", "integration:other"}, at); got != 1 {
		t.Fatalf("the announcement reached %d sessions at Ditto, want 1", got)
	}
	a := blackbox.Decode(t, owner.Next(t, 15*time.Second, "the announcement for integration:owner").Payload())
	ns, name, _ := strings.Cut(policy, ":")
	blackbox.WantField(t, a, ns+"/"+name+"/policies/announcements/subjectDeletion", "topic")
	blackbox.WantField(t, a, "/", "path")
	blackbox.WantField(t, a, "2031-03-03T16:05:55Z", "value", "deleteAt")
	blackbox.WantField(t, a, []any{"integration:owner", "integration:other"}, "value", "subjectIds")
	if cid, _ := blackbox.Field(a, "headers", "correlation-id").(string); !strings.HasPrefix(cid, "dittoemu-") {
		t.Errorf("correlation-id %q, want Ditto's (dittoemu-…)", cid)
	}
	if v, ok := a["value"].(map[string]any); !ok || len(v) != 2 {
		t.Errorf("value %v: want exactly deleteAt and subjectIds", a["value"])
	}

	if got := emu.AnnounceSubjectDeletion(policy, []string{"integration:stranger"}, at); got != 1 {
		t.Fatalf("the stranger's announcement reached %d sessions, want 1", got)
	}
	s := blackbox.Decode(t, stranger.Next(t, 15*time.Second, "the stranger's own announcement").Payload())
	blackbox.WantField(t, s, []any{"integration:stranger"}, "value", "subjectIds")
	select {
	case m := <-owner.Msgs:
		t.Errorf("the owner's target got the stranger's announcement: %s", m.Payload())
	default:
	}
	if v := emu.Violations(); len(v) > 0 {
		t.Fatalf("frames that break Ditto's schemas: %v", v)
	}
}
