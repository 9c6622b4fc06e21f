package live

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dittoconn/dittoconn/internal/client/hono"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// honoConnection is a Hono connection for tenant after Ditto's example:
// device telemetry in (with Ditto's enforcement of the device id) when
// telemetry is set, twin events out as Hono commands when command is.
func honoConnection(id, tenant string, telemetry, command bool) map[string]any {
	c := map[string]any{
		"id":               id,
		"connectionType":   "hono",
		"connectionStatus": "open",
		// Kafka's option passes through: the device's record may precede the
		// consumer group's first assignment.
		"specificConfig": map[string]any{"honoTenantId": tenant, "consumerOffsetReset": "earliest"},
	}
	if telemetry {
		c["sources"] = []any{map[string]any{
			"addresses":            []string{"telemetry"},
			"authorizationContext": []string{"nginx:ditto"},
			"qos":                  1,
			"enforcement":          map[string]any{"input": "{{ header:device_id }}", "filters": []string{"{{ entity:id }}"}},
		}}
	}
	if command {
		c["targets"] = []any{map[string]any{
			"address":              "command",
			"topics":               []string{"_/_/things/twin/events"},
			"authorizationContext": []string{"nginx:ditto"},
		}}
	}
	return c
}

// TestIntegrationHono: a Hono connection runs on the Hono Kafka cluster of
// the service's settings. A device's telemetry on hono.telemetry.<tenant>
// is consumed, and the twin event it carries goes out of the command target
// as a Hono command on hono.command.<tenant> (of a second connection), keyed and headed as Ditto's
// Hono factory makes it. testConnection dials that cluster with the login
// of the settings (SCRAM); without Hono
// settings hono connections are refused.
func TestIntegrationHono(t *testing.T) {
	const tenant = "tenant-e2e"
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "hono.telemetry."+tenant, "hono.command."+tenant))
	if err != nil {
		t.Fatalf("kfake: %v", err)
	}
	t.Cleanup(kc.Close)
	addr := kc.ListenAddrs()[0]
	cfg := hono.Config{BaseURI: "tcp://" + addr, SASLMechanism: "PLAIN", BootstrapServers: addr}
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Hono: &cfg})

	t.Run("testConnection dials the Hono Kafka", func(t *testing.T) {
		r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", honoConnection("hono-test-ok", tenant, true, true)))
		if r == nil || r.Status != http.StatusOK {
			t.Fatalf("test: %v", r)
		}
		// the same connection with the cluster's settings pointing nowhere fails
		down := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), TestTimeout: 5 * time.Second,
			Hono: &hono.Config{BaseURI: "tcp://127.0.0.1:1", SASLMechanism: "PLAIN", BootstrapServers: "127.0.0.1:1"}})
		r = down.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", honoConnection("hono-test-down", tenant, true, true)))
		if r == nil || r.Status == http.StatusOK {
			t.Fatalf("test against an unreachable Hono Kafka: %v", r)
		}
		if m := blackbox.Decode(t, r.Payload); m["error"] != "connectivity:connection.failed" {
			t.Errorf("unreachable: %s", r.Payload)
		}
	})

	t.Run("the login of the settings, SCRAM", func(t *testing.T) {
		sc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.Superuser("SCRAM-SHA-512", "hono-user", "right-pw"))
		if err != nil {
			t.Fatalf("kfake: %v", err)
		}
		t.Cleanup(sc.Close)
		sa := sc.ListenAddrs()[0]
		for _, tc := range []struct {
			password string
			status   int
		}{{"wrong-pw", http.StatusUnauthorized}, {"right-pw", http.StatusOK}} {
			node := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose(), Hono: &hono.Config{
				BaseURI: "tcp://" + sa, SASLMechanism: "SCRAM_SHA_512", BootstrapServers: sa, Username: "hono-user", Password: tc.password}})
			r := node.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.TestConnection, "connection", honoConnection("hono-login", tenant, true, true)))
			if r == nil || int(r.Status) != tc.status {
				t.Fatalf("password %s: %v, want %d", tc.password, r, tc.status)
			}
			if strings.Contains(string(r.Payload), tc.password) && tc.status != http.StatusOK {
				t.Errorf("the answer shows the password: %s", r.Payload)
			}
		}
	})

	t.Run("telemetry in, command out", func(t *testing.T) {
		const thing = "org.acme:dev-1"
		// two connections of the tenant: Ditto never sends a connection the
		// signals it consumed itself
		dpOpen(t, n, honoConnection("hono-app", tenant, false, true))
		dpOpen(t, n, honoConnection("hono-live", tenant, true, false))
		dev, err := kgo.NewClient(kgo.SeedBrokers(addr))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(dev.Close)
		event := `{"topic":"org.acme/dev-1/things/twin/events/modified","headers":{"correlation-id":"c-hono-1"},` +
			`"path":"/features/temp/properties/value","value":21.5}`
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := dev.ProduceSync(ctx, &kgo.Record{Topic: "hono.telemetry." + tenant, Key: []byte(thing), Value: []byte(event),
			Headers: []kgo.RecordHeader{{Key: "device_id", Value: []byte(thing)},
				{Key: "content-type", Value: []byte("application/vnd.eclipse.ditto+json")}}}).FirstErr(); err != nil {
			t.Fatalf("device telemetry: %v", err)
		}

		app, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("hono.command."+tenant),
			kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(app.Close)
		var got *kgo.Record
		poll.Until(t, 20*time.Second, "a command on hono.command."+tenant, func() bool {
			pctx, pcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer pcancel()
			app.PollFetches(pctx).EachRecord(func(r *kgo.Record) { got = r })
			return got != nil
		})
		if string(got.Key) != thing {
			t.Errorf("command key %q, want the thing id %q", got.Key, thing)
		}
		headers := map[string]string{}
		for _, h := range got.Headers {
			headers[h.Key] = string(h.Value)
		}
		for k, want := range map[string]string{"device_id": thing, "correlation-id": "c-hono-1", "subject": "modified"} {
			if headers[k] != want {
				t.Errorf("command header %s = %q, want %q (all: %v)", k, headers[k], want, headers)
			}
		}
		m := blackbox.Decode(t, got.Value)
		blackbox.WantField(t, m, "org.acme/dev-1/things/twin/events/modified", "topic")
		blackbox.WantField(t, m, 21.5, "value")

		// the status names the resolved topic, as Ditto's Kafka client of the
		// Hono connection does
		st := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnectionStatus, "connectionId", "hono-live"))
		if st == nil || !strings.Contains(string(st.Payload), `"hono.telemetry.`+tenant+`"`) {
			t.Errorf("status: %v", st)
		}
	})

	t.Run("not configured: refused", func(t *testing.T) {
		bare := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Verbose: testing.Verbose()})
		for _, typ := range []string{ditto.CreateConnection, ditto.TestConnection} {
			r := bare.Send(t, blackbox.Shard, nil, blackbox.Cmd(typ, "connection", honoConnection("hono-bare", tenant, true, true)))
			if r == nil || r.Status != http.StatusBadRequest {
				t.Fatalf("%s without Hono settings: %v", typ, r)
			}
			m := blackbox.Decode(t, r.Payload)
			blackbox.WantField(t, m, "connectivity:connection.configuration.invalid", "error")
			if msg, _ := m["message"].(string); !strings.Contains(msg, "Connections of type <hono> are not available") {
				t.Errorf("%s: %s", typ, r.Payload)
			}
		}
	})

	t.Run("stored, then Hono unconfigured: misconfigured", func(t *testing.T) {
		open := kit.Bolt().Open(t)
		before := kit.Start(t, open(), kit.Options{Verbose: testing.Verbose(), Hono: &cfg})
		dpOpen(t, before, honoConnection("hono-stored", tenant, true, false))
		before.Stop()
		after := kit.Start(t, open(), kit.Options{Verbose: testing.Verbose()})
		// the client stays misconfigured with the reason; it is not retried into success
		poll.Check(t, 20*time.Second, func() error {
			st := status(t, after, "hono-stored")
			cs, _ := st["clientStatus"].([]any)
			for _, c := range cs {
				m, _ := c.(map[string]any)
				details, _ := m["statusDetails"].(string)
				if m["status"] == "misconfigured" && strings.Contains(details, "HONO_CONNECTION_BOOTSTRAP_SERVERS is not set") {
					return nil
				}
			}
			return fmt.Errorf("client status %v", cs)
		})
	})
}
