package hono

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// testConfig is a configured Hono: two bootstrap servers (with a blank and
// a repeat Ditto's set drops), a SCRAM login.
var testConfig = Config{
	BaseURI:          "tcp://hono-kafka:9092",
	SASLMechanism:    "SCRAM_SHA_512",
	BootstrapServers: "k1:9092, k2:9092,,k1:9092",
	Username:         "ditto-c@t",
	Password:         "p@ss:w/rd",
}

const oneSource = `"sources":[{"addresses":["telemetry"],"authorizationContext":["a:b"]}]`

func parse(t *testing.T, js string) *model.Connection {
	t.Helper()
	c, err := model.ParseCommand([]byte(js))
	if err != nil {
		t.Fatalf("parse %s: %v", js, err)
	}
	return c
}

// TestResolve holds Resolve to what Ditto's DefaultHonoConnectionFactory
// makes of a Hono connection (HonoConnectionFactory.getHonoConnection).
func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		in   string // the connection JSON
		// check inspects the resolved connection
		check func(t *testing.T, r *model.Connection)
	}{
		{
			name: "uri, certificates and specificConfig from the settings",
			cfg:  Config{BaseURI: "ssl://hono:9094", SASLMechanism: "PLAIN", BootstrapServers: "b:9094", Username: "u", Password: "p", ValidateCertificates: true, CA: "PEM"},
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","uri":"tcp://ignored:1","validateCertificates":false,
			 "specificConfig":{"debugEnabled":"true","bootstrapServers":"mine:1","saslMechanism":"SCRAM-SHA-256"},` + oneSource + `}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "uri", r.URI, "ssl://u:p@hono:9094")
				eq(t, "validateCertificates", r.ValidateCertificates, true)
				eq(t, "ca", r.CA, "PEM")
				eq(t, "type", r.ConnectionType, model.TypeHono)
				// Ditto puts its three keys over the connection's and keeps the others
				eq(t, "specificConfig", r.SpecificConfig, map[string]string{"debugEnabled": "true",
					"bootstrapServers": "b:9094", "saslMechanism": "plain", "groupId": "conn-1"})
			},
		},
		{
			name: "login escaped into the URI, servers as a set, SCRAM in Ditto's spelling",
			cfg:  testConfig,
			in:   `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","specificConfig":{"groupId":"g"},` + oneSource + `}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "uri", r.URI, "tcp://ditto-c%40t:p%40ss%3Aw%2Frd@hono-kafka:9092")
				u, p, ok := userInfo(r)
				eq(t, "login", []any{u, p, ok}, []any{"ditto-c@t", "p@ss:w/rd", true})
				eq(t, "bootstrapServers", r.SpecificConfig["bootstrapServers"], "k1:9092,k2:9092")
				eq(t, "saslMechanism", r.SpecificConfig["saslMechanism"], "scram-sha-512")
				eq(t, "groupId", r.SpecificConfig["groupId"], "g")
			},
		},
		{
			name: "no username: no login in the URI",
			cfg:  Config{BaseURI: "tcp://h:1", SASLMechanism: "PLAIN", BootstrapServers: "h:1"},
			in:   `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",` + oneSource + `}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "uri", r.URI, "tcp://h:1")
			},
		},
		{
			name: "source aliases: the tenant of honoTenantId",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","specificConfig":{"honoTenantId":"tenant-a"},
			 "sources":[{"addresses":["telemetry","event","command_response","other"],"authorizationContext":["a:b"]}]}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "addresses", r.Sources[0].Addresses, []string{"hono.telemetry.tenant-a", "hono.event.tenant-a", "hono.command_response.tenant-a", "other"})
				eq(t, "tenant kept", r.SpecificConfig["honoTenantId"], "tenant-a")
			},
		},
		{
			name: "no honoTenantId: the connection id is the tenant; repeats collapse",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",
			 "sources":[{"addresses":["event","hono.event.conn-1"],"authorizationContext":["a:b"]}]}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "addresses", r.Sources[0].Addresses, []string{"hono.event.conn-1"})
			},
		},
		{
			name: "telemetry source: reply target command resolved with Hono's response headers",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","specificConfig":{"honoTenantId":"t"},
			 "sources":[{"addresses":["telemetry"],"authorizationContext":["a:b"],"headerMapping":{"x":"y"},
			   "replyTarget":{"enabled":true,"address":"command","headerMapping":{"subject":"mine"},"expectedResponseTypes":["response"]}}]}`,
			check: func(t *testing.T, r *model.Connection) {
				s := r.Sources[0]
				eq(t, "reply address", s.ReplyTarget.Address, "hono.command.t/{{thing:id}}")
				eq(t, "reply headers", s.ReplyTarget.HeaderMapping, map[string]string{"subject": "mine",
					"correlation-id": "{{ header:correlation-id }}", "device_id": "{{ thing:id }}"})
				eq(t, "source headers untouched", s.HeaderMapping, map[string]string{"x": "y"})
				eq(t, "enabled", s.ReplyTargetEnabled, true)
			},
		},
		{
			name: "event source: reply target to another address gets the correlation id only",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",
			 "sources":[{"addresses":["event"],"authorizationContext":["a:b"],
			   "replyTarget":{"enabled":true,"address":"replies/{{ thing:id }}"}}]}`,
			check: func(t *testing.T, r *model.Connection) {
				rt := r.Sources[0].ReplyTarget
				eq(t, "reply address", rt.Address, "replies/{{ thing:id }}")
				eq(t, "reply headers", rt.HeaderMapping, map[string]string{"correlation-id": "{{ header:correlation-id }}"})
			},
		},
		{
			name: "reply target subject when the connection defines none",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",
			 "sources":[{"addresses":["event"],"authorizationContext":["a:b"],"replyTarget":{"enabled":true,"address":"command"}}]}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "subject", r.Sources[0].ReplyTarget.HeaderMapping["subject"],
					"{{ header:subject | fn:default(topic:action-subject) | fn:default(topic:criterion) }}-response")
			},
		},
		{
			name: "command_response source: no reply target, correlation-id and status mapped",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",
			 "sources":[{"addresses":["command_response"],"authorizationContext":["a:b"],"headerMapping":{"status":"{{ header:code }}"},
			   "replyTarget":{"enabled":true,"address":"command"}}]}`,
			check: func(t *testing.T, r *model.Connection) {
				s := r.Sources[0]
				if s.ReplyTarget != nil {
					t.Errorf("reply target %+v kept", *s.ReplyTarget)
				}
				eq(t, "headers", s.HeaderMapping, map[string]string{"status": "{{ header:code }}",
					"correlation-id": "{{ header:correlation-id }}"})
			},
		},
		{
			name: "command target: keyed by thing id, Hono's command headers",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","specificConfig":{"honoTenantId":"t"},
			 "targets":[{"address":"command","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"],"headerMapping":{"device_id":"mine"}}]}`,
			check: func(t *testing.T, r *model.Connection) {
				tg := r.Targets[0]
				eq(t, "address", tg.Address, "hono.command.t/{{thing:id}}")
				eq(t, "headers", tg.HeaderMapping, map[string]string{"device_id": "mine",
					"correlation-id": "{{ header:correlation-id }}", "subject": "{{ header:subject | fn:default(topic:action-subject) }}"})
			},
		},
		{
			name: "target of live messages or commands: response-required mapped too",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open",
			 "targets":[{"address":"command","topics":["_/_/things/live/messages"],"authorizationContext":["a:b"]},
			            {"address":"command","topics":["_/_/things/live/commands?namespaces=a"],"authorizationContext":["a:b"]},
			            {"address":"command","topics":["_/_/things/live/events"],"authorizationContext":["a:b"]}]}`,
			check: func(t *testing.T, r *model.Connection) {
				for i, want := range []bool{true, true, false} {
					_, got := r.Targets[i].HeaderMapping["response-required"]
					eq(t, "response-required of target "+string(rune('0'+i)), got, want)
					if got {
						eq(t, "its value", r.Targets[i].HeaderMapping["response-required"], "{{ header:response-required }}")
					}
				}
			},
		},
		{
			name: "an empty honoTenantId is used as given, as Ditto's getOrDefault does",
			cfg:  testConfig,
			in: `{"id":"conn-1","connectionType":"hono","connectionStatus":"open","specificConfig":{"honoTenantId":""},
			 "sources":[{"addresses":["telemetry"],"authorizationContext":["a:b"]}]}`,
			check: func(t *testing.T, r *model.Connection) {
				eq(t, "addresses", r.Sources[0].Addresses, []string{"hono.telemetry."})
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := parse(t, tc.in)
			before := string(in.JSON(true))
			r, err := Resolve(tc.cfg, in)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
			if after := string(in.JSON(true)); after != before {
				t.Errorf("Resolve modified its input:\n%s\n%s", before, after)
			}
			// resolving again changes nothing (the data plane and the
			// factory may both resolve)
			again, err := Resolve(tc.cfg, r)
			if err != nil {
				t.Fatal(err)
			}
			if a, b := string(r.JSON(true)), string(again.JSON(true)); a != b {
				t.Errorf("resolving twice differs:\n%s\n%s", a, b)
			}
		})
	}
}

func TestResolveRefuses(t *testing.T) {
	hono := &model.Connection{ID: "c", ConnectionType: model.TypeHono}
	for _, tc := range []struct {
		name string
		cfg  Config
		c    *model.Connection
		want string
	}{
		{"not configured", DefaultConfig(), hono, "HONO_CONNECTION_BOOTSTRAP_SERVERS is not set"},
		{"another type", testConfig, &model.Connection{ID: "c", ConnectionType: model.TypeKafka}, "expected a connection of type <hono> but it was <kafka>"},
		{"unknown mechanism", Config{BaseURI: "tcp://h:1", BootstrapServers: "h:1", SASLMechanism: "GSSAPI"}, hono, `"GSSAPI" is not PLAIN`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Resolve(tc.cfg, tc.c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want []string // "" parts of the error; none: valid
	}{
		{"unconfigured is valid", DefaultConfig(), nil},
		{"configured", testConfig, nil},
		{"Ditto's enum names and Kafka's spelling", Config{BaseURI: "ssl://h:1", BootstrapServers: "h:1", SASLMechanism: "scram-sha-256"}, nil},
		{"bad base URI", Config{BaseURI: "amqp://h:1", BootstrapServers: "h:1", SASLMechanism: "PLAIN"}, []string{"HONO_CONNECTION_URI"}},
		{"bad mechanism and server", Config{BaseURI: "tcp://h:1", BootstrapServers: "h:1,nohost", SASLMechanism: "X", Password: "secret"},
			[]string{"HONO_CONNECTION_SASL_MECHANISM", `HONO_CONNECTION_BOOTSTRAP_SERVERS: "nohost"`}},
		{"bad CA", Config{BaseURI: "tcp://h:1", BootstrapServers: "h:1", SASLMechanism: "PLAIN", CA: "x"}, []string{"HONO_CONNECTION_CA"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatalf("valid, want %q", tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "secret") {
				t.Errorf("error %q shows the password", err)
			}
		})
	}
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if gm, ok := got.(map[string]string); ok {
		if wm, ok := want.(map[string]string); ok && maps.Equal(gm, wm) {
			return
		}
	} else if reflect.DeepEqual(got, want) {
		return
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	t.Errorf("%s: %s, want %s", what, g, w)
}

// userInfo is the login of r's URI as the Kafka client reads it.
func userInfo(r *model.Connection) (string, string, bool) { return client.UserInfo(r) }

// FuzzResolve: for any connection the model accepts, Resolve neither
// panics nor modifies its input, and resolving its result changes nothing.
func FuzzResolve(f *testing.F) {
	f.Add([]byte(`{"id":"c","connectionType":"hono","connectionStatus":"open","specificConfig":{"honoTenantId":"t"},` +
		`"sources":[{"addresses":["telemetry","event"],"authorizationContext":["a:b"],"replyTarget":{"enabled":true,"address":"command"}}],` +
		`"targets":[{"address":"command","topics":["_/_/things/live/messages"],"authorizationContext":["a:b"]}]}`))
	f.Add([]byte(`{"id":"c","connectionType":"hono","connectionStatus":"open","sources":[{"addresses":["command_response","x"],"authorizationContext":["a:b"],"headerMapping":{"status":"s"}}]}`))
	f.Fuzz(func(t *testing.T, js []byte) {
		c, err := model.ParseCommand(js)
		if err != nil || c.ConnectionType != model.TypeHono {
			return
		}
		before := string(c.JSON(true))
		r, err := Resolve(testConfig, c)
		if err != nil {
			t.Fatalf("a hono connection does not resolve: %v", err)
		}
		if after := string(c.JSON(true)); after != before {
			t.Fatalf("input modified:\n%s\n%s", before, after)
		}
		again, err := Resolve(testConfig, r)
		if err != nil {
			t.Fatal(err)
		}
		if a, b := string(r.JSON(true)), string(again.JSON(true)); a != b {
			t.Fatalf("resolving twice differs:\n%s\n%s", a, b)
		}
	})
}
