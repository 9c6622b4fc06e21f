package model

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

var examples = []string{"mqtt", "amqp091", "kafka", "httppush"}

func mustParse(t *testing.T, s string) *Connection {
	t.Helper()
	c, err := ParseCommand([]byte(s))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return c
}

func wantErr(t *testing.T, err error, status int, code string, msgParts ...string) {
	t.Helper()
	de, ok := ditto.As(err)
	if !ok {
		t.Fatalf("want *ditto.Error %s, got %v", code, err)
	}
	if de.Status != status || de.Code != code {
		t.Fatalf("want %d %s, got %d %s (%s)", status, code, de.Status, de.Code, de.Message)
	}
	for _, p := range msgParts {
		if !strings.Contains(de.Message+" | "+de.Description, p) {
			t.Fatalf("message %q / description %q lacks %q", de.Message, de.Description, p)
		}
	}
}

func TestExamplesRoundTrip(t *testing.T) {
	for _, n := range examples {
		t.Run(n, func(t *testing.T) {
			in, _ := os.ReadFile("testdata/" + n + ".input.json")
			golden, err := os.ReadFile("testdata/" + n + ".golden.json")
			if err != nil {
				t.Fatal(err)
			}
			golden = bytes.TrimSpace(golden)
			c := mustParse(t, string(in))
			if got := c.JSON(false); !bytes.Equal(got, golden) {
				t.Fatalf("JSON mismatch\n got: %s\nwant: %s", got, golden)
			}
			// Ditto's own output reads back to itself, also through the journal path.
			for name, parse := range map[string]func([]byte) (*Connection, error){"command": ParseCommand, "stored": Parse} {
				c2, err := parse(golden)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := c2.JSON(false); !bytes.Equal(got, golden) {
					t.Fatalf("%s re-read mismatch\n got: %s\nwant: %s", name, got, golden)
				}
			}
			if !json.Valid(c.JSON(true)) {
				t.Fatal("invalid JSON")
			}
		})
	}
}

const minimalAMQP = `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
 "targets":[{"address":"x","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"]}]}`

func TestDefaultsAndHidden(t *testing.T) {
	c := mustParse(t, `{"__lifecycle":"ACTIVE","_revision":7,"_modified":"2024-05-01T10:00:00.500+02:00",
	 "_created":"2024-05-01T08:00:00Z","unknownField":1,
	 "id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
	 "targets":[{"address":"x","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"]}]}`)
	want := `{"id":"c1","name":null,"connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672","sources":[],"targets":[{"address":"x","topics":["_/_/things/twin/events"],"authorizationContext":["a:b"],"headerMapping":{}}],"clientCount":1,"failoverEnabled":true,"validateCertificates":true,"processorPoolSize":1,"tags":[]}`
	if got := string(c.JSON(false)); got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	wantHidden := `{"__lifecycle":"ACTIVE","id":"c1","name":null,"_revision":7,"_modified":"2024-05-01T08:00:00.500Z","_created":"2024-05-01T08:00:00Z","connectionType"`
	if got := string(c.JSON(true)); !strings.HasPrefix(got, wantHidden) {
		t.Fatalf("got %s", got)
	}
	if cl := c.Clone(); string(cl.JSON(true)) != string(c.JSON(true)) {
		t.Fatal("clone differs")
	}
}

func TestLenientAndMigrations(t *testing.T) {
	t.Run("specificConfig non-string values become JSON text", func(t *testing.T) {
		c := mustParse(t, `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
		 "specificConfig":{"a":1,"b":true,"c":{"x":[1,"y"]},"d":"s"},
		 "targets":[{"address":"x","authorizationContext":["a:b"]}]}`)
		if c.SpecificConfig["a"] != "1" || c.SpecificConfig["b"] != "true" || c.SpecificConfig["c"] != `{"x":[1,"y"]}` {
			t.Fatalf("%v", c.SpecificConfig)
		}
	})
	t.Run("reply target migration with headers", func(t *testing.T) {
		c := mustParse(t, `{"id":"c1","connectionType":"amqp-10","connectionStatus":"open","uri":"amqp://h:5672",
		 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],"headerMapping":{"reply-to":"custom"}}]}`)
		got := string(c.JSON(false))
		want := `"headerMapping":{"content-type":"{{header:content-type}}","reply-to":"custom","correlation-id":"{{header:correlation-id}}"},"replyTarget":{"address":"{{header:reply-to}}","headerMapping":{"content-type":"{{header:content-type}}","correlation-id":"{{header:correlation-id}}"},"expectedResponseTypes":["response","error"],"enabled":true}`
		if !strings.Contains(got, want) {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("reply target disabled", func(t *testing.T) {
		c := mustParse(t, `{"id":"c1","connectionType":"amqp-10","connectionStatus":"open","uri":"amqp://h:5672",
		 "sources":[{"addresses":["q"],"authorizationContext":["a:b"],"replyTarget":{"enabled":false}}]}`)
		if got := string(c.JSON(false)); !strings.Contains(got, `"headerMapping":{},"replyTarget":{"enabled":false}}`) {
			t.Fatalf("got %s", got)
		}
	})
	t.Run("legacy journal migrations", func(t *testing.T) {
		legacy := `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
		 "authorizationContext":["legacy:subject"],
		 "sources":[{"addresses":["q"],"filters":["{{thing:id}}"],"replyTarget":{"enabled":false}}],
		 "targets":[{"address":"t/{{ topic:action|subject }}","topics":[]}],
		 "mappingContext":{"mappingEngine":"JavaScript","options":{"incomingScript":"x"}}}`
		if _, err := ParseCommand([]byte(legacy)); err == nil {
			t.Fatal("a command without per-source auth context must fail")
		}
		c, err := Parse([]byte(legacy))
		if err != nil {
			t.Fatal(err)
		}
		got := string(c.JSON(false))
		for _, w := range []string{
			`"authorizationContext":["legacy:subject"],"enforcement":{"input":"{{ source:address }}","filters":["{{thing:id}}"]}`,
			`"address":"t/{{ topic:action-subject }}"`,
			`"headerMapping":{"reply-to":"{{header:reply-to}}","correlation-id":"{{header:correlation-id}}"},"payloadMapping":["javascript"]`,
			`"mappingDefinitions":{"javascript":{"mappingEngine":"JavaScript","options":{"incomingScript":"x"}}}`,
		} {
			if !strings.Contains(got, w) {
				t.Fatalf("missing %s in %s", w, got)
			}
		}
	})
	t.Run("uri toASCIIString", func(t *testing.T) {
		c := mustParse(t, `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://üser:p@h:5672/v",
		 "targets":[{"address":"x","authorizationContext":["a:b"]}]}`)
		if c.URI != "amqp://%C3%BCser:p@h:5672/v" {
			t.Fatal(c.URI)
		}
	})
	t.Run("hono without uri", func(t *testing.T) {
		c := mustParse(t, `{"id":"h1","connectionType":"hono","connectionStatus":"open",
		 "sources":[{"addresses":["telemetry"],"authorizationContext":["a:b"],"qos":1}]}`)
		if c.URI != "" || Validate(c, DefaultValidationConfig(), mappingsOnly{}) != nil {
			t.Fatal(c.URI, Validate(c, DefaultValidationConfig(), mappingsOnly{}))
		}
	})
}

func TestParseErrors(t *testing.T) {
	base := func(repl string) string {
		return strings.Replace(minimalAMQP, `"id":"c1",`, repl, 1)
	}
	cases := []struct {
		name, json string
		status     int
		code       string
		parts      []string
	}{
		{"not json", `{`, 400, ditto.CodeJSONInvalid, nil},
		{"missing connectionType", strings.Replace(minimalAMQP, `"connectionType":"amqp-091",`, "", 1), 400,
			ditto.CodeJSONFieldMissing, []string{"JSON did not include required </connectionType> field!"}},
		{"missing id", base(""), 400, ditto.CodeJSONFieldMissing, []string{"</id>"}},
		{"missing uri", strings.Replace(minimalAMQP, `"uri":"amqp://h:5672",`, "", 1), 400, ditto.CodeJSONFieldMissing, []string{"</uri>"}},
		{"missing connectionStatus", strings.Replace(minimalAMQP, `"connectionStatus":"open",`, "", 1), 400, ditto.CodeJSONFieldMissing, []string{"</connectionStatus>"}},
		{"invalid id", base(`"id":"bad id!",`), 400, ditto.CodeConnectionIDInvalid, []string{"bad id!"}},
		{"invalid type", strings.Replace(minimalAMQP, `amqp-091"`, `foo"`, 1), 400, ditto.CodeJSONInvalid, []string{"Connection type <foo> is invalid!"}},
		{"invalid status", strings.Replace(minimalAMQP, `"open"`, `"sleepy"`, 1), 400, ditto.CodeJSONInvalid, []string{"Connection status <sleepy> is invalid!"}},
		{"wrong type clientCount", base(`"id":"c1","clientCount":"2",`), 400, ditto.CodeJSONInvalid, []string{`Value <"2"> for </clientCount> is not of type <Integer>!`}},
		{"clientCount zero", base(`"id":"c1","clientCount":0,`), 400, ditto.CodeConfigurationInvalid, []string{"client count must be positive"}},
		{"processorPoolSize zero", base(`"id":"c1","processorPoolSize":0,`), 400, ditto.CodeConfigurationInvalid, []string{"processor pool size must be positive"}},
		{"uri without port", strings.Replace(minimalAMQP, "amqp://h:5672", "amqp://h", 1), 400, ditto.CodeURIInvalid, []string{"The Connection URI 'amqp://h' has an invalid format."}},
		{"uri with query", strings.Replace(minimalAMQP, "amqp://h:5672", "amqp://h:5672/?a=b", 1), 400, ditto.CodeURIInvalid, []string{"amqp://h:5672/?a=b"}},
		{"uri underscore host", strings.Replace(minimalAMQP, "amqp://h:5672", "amqp://my_host:5672", 1), 400, ditto.CodeURIInvalid, []string{"my_host"}},
		{"no sources or targets", `{"id":"c1","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1"}`, 400,
			ditto.CodeConfigurationInvalid, []string{"Either a source or a target must be specified"}},
		{"missing auth context", `{"id":"c1","connectionType":"mqtt","connectionStatus":"open","uri":"tcp://h:1",
			"sources":[{"addresses":["a","b"]}],"targets":[{"address":"t"}]}`, 400, ditto.CodeConfigurationInvalid,
			[]string{"The Sources [a, b] and Targets [t] are missing an authorization context."}},
		{"announcements need clientCount 1", base(`"id":"c1","clientCount":2,`), 0, "", nil},
		{"unknown topic", strings.Replace(minimalAMQP, "_/_/things/twin/events", "_/_/things/twin/nope", 1), 400,
			ditto.CodeTopicInvalid, []string{"_/_/things/twin/nope"}},
		{"unknown credentials", base(`"id":"c1","credentials":{"type":"magic"},`), 400, ditto.CodeJSONInvalid, []string{"Unknown credential type <magic>"}},
		{"mapping definition without options", base(`"id":"c1","mappingDefinitions":{"m":{"mappingEngine":"Ditto"}},`), 400,
			ditto.CodeJSONFieldMissing, []string{"</options>"}},
		{"bad declared ack label", `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
			"sources":[{"addresses":["q"],"authorizationContext":["a:b"],"declaredAcks":["x"]}]}`, 400, ditto.CodeAckLabelInvalid, []string{"<x>"}},
		{"bad ack request label", `{"id":"c1","connectionType":"amqp-091","connectionStatus":"open","uri":"amqp://h:5672",
			"sources":[{"addresses":["q"],"authorizationContext":["a:b"],"acknowledgementRequests":{"includes":["ok-label","x"]}}]}`,
			422, "acknowledgement:request.parsing.failed",
			[]string{"<x> cannot be parsed to an acknowledgement request! Cause: Acknowledgement label <x> is invalid."}},
		{"bad modified", base(`"id":"c1","_created":"yesterday",`), 400, ditto.CodeJSONInvalid, []string{"ISO-8601"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "announcements need clientCount 1" {
				s := strings.Replace(minimalAMQP, `"_/_/things/twin/events"`, `"_/_/connections/announcements"`, 1)
				s = strings.Replace(s, `"id":"c1",`, `"id":"c1","clientCount":2,`, 1)
				_, err := ParseCommand([]byte(s))
				wantErr(t, err, 400, ditto.CodeConfigurationInvalid, "Connection announcements (topic _/_/connections/announcements) can only be used with client count 1.")
				return
			}
			_, err := ParseCommand([]byte(tc.json))
			wantErr(t, err, tc.status, tc.code, tc.parts...)
		})
	}
}

func TestSelect(t *testing.T) {
	in, _ := os.ReadFile("testdata/mqtt.input.json")
	c := mustParse(t, string(in))
	c.Revision, c.Lifecycle = 3, LifecycleActive
	cases := []struct{ sel, want string }{
		{"id,name,_revision", `{"id":"mqtt-example-1","name":"mqtt example","_revision":3}`},
		{"_revision,id", `{"_revision":3,"id":"mqtt-example-1"}`},
		{"sources/addresses", `{"sources":[{"addresses":["devices/+/telemetry"]}]}`},
		{"sources(addresses,qos),tags", `{"sources":[{"addresses":["devices/+/telemetry"],"qos":1}],"tags":["prod"]}`},
		{"credentials(type)", `{}`},
		{"nothing", `{}`},
		{"specificConfig/keepAlive", `{"specificConfig":{"keepAlive":"60s"}}`},
		{"/__lifecycle", `{"__lifecycle":"ACTIVE"}`},
	}
	for _, tc := range cases {
		t.Run(tc.sel, func(t *testing.T) {
			got, err := c.Select(tc.sel)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got %s want %s", got, tc.want)
			}
		})
	}
	t.Run("credentials(type) with credentials", func(t *testing.T) {
		in, _ := os.ReadFile("testdata/httppush.input.json")
		got, _ := mustParse(t, string(in)).Select("credentials(type)")
		if string(got) != `{"credentials":{"type":"oauth-client-credentials"}}` {
			t.Fatal(string(got))
		}
	})
	t.Run("invalid", func(t *testing.T) {
		_, err := c.Select("sources(addresses")
		wantErr(t, err, 400, ditto.CodeJSONFieldSelectorInvalid, "sources(addresses")
	})
}

// conn builds a connection JSON from parts for validation cases.
func conn(typ, uri, sources, targets, extra string) string {
	return `{"id":"c1","connectionType":"` + typ + `","connectionStatus":"open","uri":"` + uri + `","sources":[` +
		sources + `],"targets":[` + targets + `]` + extra + `}`
}

const ac = `"authorizationContext":["a:b"]`

// mappingsOnly knows every connection type as the zero Protocol with only
// the payload mapping check, which every type's rules run: the rules common
// to all types are tested here, what each type allows and its own rules
// beside its client (internal/client/<type>/validate_test.go).
type mappingsOnly struct{}

func (mappingsOnly) Protocol(string) (Protocol, bool) {
	return Protocol{Rules: func(k *Check) error { return k.PayloadMappings() }}, true
}

func TestValidate(t *testing.T) {
	mqttTgt := `{"address":"out/x","qos":1,"topics":["_/_/things/twin/events"],` + ac + `}`
	amqpTgt := `{"address":"x","topics":["_/_/things/twin/events"],` + ac + `}`
	five := strings.Repeat(amqpTgt+",", 4) + amqpTgt
	fakeDNS := func(h string) ([]net.IP, error) {
		switch h {
		case "localhost", "internal.example":
			return []net.IP{net.ParseIP("127.0.0.1")}, nil
		case "private.example":
			return []net.IP{net.ParseIP("10.1.2.3")}, nil
		case "public.example":
			return []net.IP{net.ParseIP("93.184.216.34")}, nil
		}
		return nil, &net.DNSError{Err: "no such host", Name: h}
	}
	blocked := DefaultValidationConfig()
	blocked.BlockedHostnames = []string{"localhost"}
	blocked.BlockedSubnets = []string{"93.184.0.0/16"}
	blocked.LookupIP = fakeDNS
	cases := []struct {
		name   string
		json   string
		cfg    *ValidationConfig
		status int
		code   string
		parts  []string
	}{
		{"too many targets", conn("amqp-091", "amqp://h:5672", "", five, ""), nil, 400, ditto.CodeConfigurationInvalid,
			[]string{"The number of configured sources or targets within a connection exceeded.", "above the limit of 4"}},
		{"empty source address", conn("amqp-091", "amqp://h:5672", `{"addresses":[""],`+ac+`}`, "", ""), nil, 400,
			ditto.CodeConfigurationInvalid, []string{"Source 0 of connection <c1>: addresses may not be empty."}},
		{"empty target address", conn("amqp-091", "amqp://h:5672", "", `{"address":"",`+ac+`}`, ""), nil, 400,
			ditto.CodeConfigurationInvalid, []string{"Targets of connection <c1>: addresses may not be empty."}},
		{"bad rql filter", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","topics":["_/_/things/twin/events?filter=eq(attributes/a"],`+ac+`}`, ""),
			nil, 400, ditto.CodeRQLInvalid, []string{"Invalid input"}},
		{"unknown rql property", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","topics":["_/_/things/twin/events?filter=eq(foo,1)"],`+ac+`}`, ""),
			nil, 400, ditto.CodeRQLInvalid, []string{"Unknown property name: foo"}},
		{"too many mappers", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","payloadMapping":["Ditto","Ditto","Ditto","Ditto","Ditto","Ditto","Ditto","Ditto","Ditto","Ditto","Ditto"],`+ac+`}`, ""),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"payload mappings exceeded the limit", "target with address x"}},
		{"issued ack of other connection", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","issuedAcknowledgementLabel":"other:ack",`+ac+`}`, ""),
			nil, 400, ditto.CodeAckLabelInvalid, []string{"<other:ack>", "c1:<alphanumeric-suffix>"}},
		{"issued ack not unique", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","issuedAcknowledgementLabel":"{{connection:id}}:ack",`+ac+`},{"address":"y","issuedAcknowledgementLabel":"c1:ack",`+ac+`}`, ""),
			nil, 409, ditto.CodeAckLabelNotUnique, []string{"only be used for one target"}},
		{"bad ca", conn("amqp-091", "amqps://h:5671", "", amqpTgt, `,"ca":"nope"`), nil, 400, ditto.CodeConfigurationInvalid,
			[]string{"/ca: bad format"}},
		{"blocked loopback", conn("amqp-091", "amqp://internal.example:5672", "", amqpTgt, ""), &blocked, 400, ditto.CodeConfigurationInvalid,
			[]string{"The configured host 'internal.example' may not be used for the connection because the host is blocked: the hostname resolved to a loopback address (127.0.0.1)."}},
		{"blocked site local", conn("amqp-091", "amqp://private.example:5672", "", amqpTgt, ""), &blocked, 400, ditto.CodeConfigurationInvalid,
			[]string{"site local address (10.1.2.3)"}},
		{"blocked subnet", conn("amqp-091", "amqp://public.example:5672", "", amqpTgt, ""), &blocked, 400, ditto.CodeConfigurationInvalid,
			[]string{"resides in blocked subnet 93.184.0.0/16"}},
		{"ssh scheme", conn("amqp-091", "amqp://h:5672", "", amqpTgt, `,"sshTunnel":{"enabled":true,"credentials":{"type":"plain","username":"u","password":"p"},"validateHost":false,"uri":"http://s:22"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"The SSH server URI 'http://s:22' is not valid: The scheme for the ssh endpoint must be 'ssh'."}},
		{"ssh known hosts", conn("amqp-091", "amqp://h:5672", "", amqpTgt, `,"sshTunnel":{"enabled":true,"credentials":{"type":"plain","username":"u","password":"p"},"validateHost":true,"uri":"ssh://s:22"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"Specify at least one fingerprint"}},
		{"ssh empty password", conn("amqp-091", "amqp://h:5672", "", amqpTgt, `,"sshTunnel":{"enabled":true,"credentials":{"type":"plain","username":"u","password":""},"validateHost":false,"uri":"ssh://s:22"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"SSH tunnel password must not be empty."}},
		{"hmac on mqtt", conn("mqtt", "tcp://h:1883", "", mqttTgt, `,"credentials":{"type":"hmac","algorithm":"az-sasl","parameters":{}}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"HMAC credentials are not supported for the connection type."}},
		{"oauth on amqp", conn("amqp-10", "amqp://h:5672", "", amqpTgt, `,"credentials":{"type":"oauth-client-credentials","tokenEndpoint":"https://a:443/t","clientId":"c","clientSecret":"s","requestedScopes":"x"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"OAuth client credentials are only supported for HTTP connection type."}},
		{"diversion to self", conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"headerMapping":{"divert-response-to-connection":"c1"},`+ac+`}`, "", ""),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"It is pointless to divert responses to the originating connection"}},
		{"diversion bad types", conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"headerMapping":{"divert-expected-response-types":"response,weird"},`+ac+`}`, "", `,"specificConfig":{"is-diversion-source":"true"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"Invalid response type in <divert-expected-response-types>: weird."}},
		{"diversion target with topics", conn("amqp-091", "amqp://h:5672", "", amqpTgt, `,"specificConfig":{"is-diversion-target":"true"}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"but isDiversionTarget is true"}},
		// Ditto's factory leaves out a definition whose options are invalid;
		// only naming it fails.
		{"mapper missing option", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","payloadMapping":["cs"],`+ac+`}`, `,"mappingDefinitions":{"cs":{"mappingEngine":"ConnectionStatus","options":{}}}`),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"The mapper <cs> could not be loaded.",
				"Make sure to only use either the specified mappingDefinitions names [] or fallback mapper names [UpdateTwinWithLiveResponse, Normalized, RawMessage, Ditto, CloudEvents]."}},
		{"unreferenced mapper missing option", conn("amqp-091", "amqp://h:5672", "", amqpTgt, `,"mappingDefinitions":{"cs":{"mappingEngine":"ConnectionStatus","options":{}}}`),
			nil, 0, "", nil},
		// Engines whose configuration is mandatory are no fallbacks.
		{"JavaScript without definition", conn("amqp-091", "amqp://h:5672", "", `{"address":"x","payloadMapping":["JavaScript"],`+ac+`}`, ""),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"The mapper <JavaScript> could not be loaded."}},
		{"ConnectionStatus without definition", conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"payloadMapping":["ConnectionStatus"],`+ac+`}`, "", ""),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"The mapper <ConnectionStatus> could not be loaded."}},
		{"ImplicitThingCreation without definition", conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"payloadMapping":["ImplicitThingCreation"],`+ac+`}`, "", ""),
			nil, 400, ditto.CodeConfigurationInvalid, []string{"The mapper <ImplicitThingCreation> could not be loaded."}},
		{"fallback and configured definition", conn("amqp-091", "amqp://h:5672", `{"addresses":["q"],"payloadMapping":["Normalized","js"],`+ac+`}`, "", `,"mappingDefinitions":{"js":{"mappingEngine":"JavaScript","options":{"incomingScript":""}}}`),
			nil, 0, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustParse(t, tc.json)
			cfg := DefaultValidationConfig()
			if tc.cfg != nil {
				cfg = *tc.cfg
			}
			err := Validate(c, cfg, mappingsOnly{})
			if tc.code == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			wantErr(t, err, tc.status, tc.code, tc.parts...)
		})
	}
}

func TestParseFilteredTopic(t *testing.T) {
	cases := []struct{ in, out string }{
		{"_/_/things/twin/events?namespaces=a,b&filter=eq(attributes/x,%22y%22)&extraFields=attributes", `_/_/things/twin/events?namespaces=a,b&filter=eq(attributes/x,"y")&extraFields=attributes`},
		{"_/_/things/live/messages?extraFields=thingId&namespaces=", "_/_/things/live/messages?extraFields=thingId"},
		{"_/_/policies/announcements?namespaces=n&filter=x", "_/_/policies/announcements?namespaces=n"},
		{"_/_/connections/announcements?namespaces=n", "_/_/connections/announcements"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			ft, err := ParseFilteredTopic(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if ft.String() != tc.out {
				t.Fatalf("got %s", ft.String())
			}
		})
	}
}

// Ditto parses a target topic's extraFields with ThingFieldSelector.fromString
// for every topic: the selector must parse as a JSON field selector and, as
// written, name thing fields only unless it holds a placeholder.
func TestTargetExtraFieldsAreAThingFieldSelector(t *testing.T) {
	const topic = "_/_/things/twin/events?extraFields="
	valid := []string{
		"thingId", "attributes", "/attributes/location,thingId", "features/f1/properties/x",
		"_metadata/a,_context/b,_revision,_created,_modified,_namespace,_policy,policyId,definition",
		"{{ header:want }}", "attributes/{{ header:x }}", "${legacy}", "attributes/a)",
	}
	for _, v := range valid {
		if _, err := ParseFilteredTopic(topic + v); err != nil {
			t.Errorf("extraFields=%s: %v", v, err)
		}
	}
	fields := "[thingId, policyId, definition, _namespace, _revision, _created, _modified, _metadata(/[^,]+)?, " +
		"_policy, _context, _context(/[^,]+)?, features(/[^,]+)?, attributes(/[^,]+)?]"
	for _, tc := range []struct {
		in   string
		want *ditto.Error
	}{
		{"foo", ditto.ThingFieldSelectionInvalid("foo", fields)},
		{"foo(", ditto.FieldSelectorInvalid("foo(")},
		{"attributes(a,b", ditto.FieldSelectorInvalid("attributes(a,b")},
		{"attributes(a,b)", ditto.ThingFieldSelectionInvalid("attributes(a,b)", fields)},
		{"thingId, attributes", ditto.ThingFieldSelectionInvalid("thingId, attributes", fields)},
		{"thingId,", ditto.ThingFieldSelectionInvalid("thingId,", fields)},
		{"attributes/", ditto.ThingFieldSelectionInvalid("attributes/", fields)},
		{"attributes//a", ditto.PointerConsecutiveSlashes("attributes//a")},
		{"features(f//x)", ditto.PointerConsecutiveSlashes("f//x")},
		{"a//b(c)", ditto.PointerConsecutiveSlashes("a//b")},
		{"{{ header:x", ditto.ThingFieldSelectionInvalid("{{ header:x", fields)},
		{"thingId%2Cfoo", ditto.ThingFieldSelectionInvalid("thingId,foo", fields)}, // URL-decoded first
	} {
		for _, prefix := range []string{topic, "_/_/connections/announcements?extraFields="} {
			_, err := ParseFilteredTopic(prefix + tc.in)
			wantErr(t, err, tc.want.Status, tc.want.Code, tc.want.Message, tc.want.Description)
		}
	}
}

// A stored connection whose extraFields dittoconn accepted before checking
// them still recovers; a command with them is refused as Ditto refuses it.
func TestStoredExtraFieldsStillRecover(t *testing.T) {
	raw := conn("amqp-091", "amqp://h:5672", "",
		`{"address":"x","topics":["_/_/things/twin/events?extraFields=foo"],"authorizationContext":["a:b"]}`, "")
	c, err := Parse([]byte(raw))
	if err != nil {
		t.Fatalf("stored connection: %v", err)
	}
	if got := c.Targets[0].Topics[0].ExtraFields; got != "foo" {
		t.Fatalf("extraFields = %q", got)
	}
	_, err = ParseCommand([]byte(raw))
	wantErr(t, err, 400, ditto.CodeThingFieldSelectionInvalid, "Thing field selection <foo> was not valid.")
}

func TestJavaHashOrder(t *testing.T) {
	// Orders computed from java.util.HashMap's bucket layout.
	got := JavaHashOrder([]string{"bootstrapServers", "saslMechanism", "groupId"})
	if strings.Join(got, ",") != "saslMechanism,bootstrapServers,groupId" {
		t.Fatal(got)
	}
	got = JavaHashOrder([]string{"correlation-id", "content-type", "reply-to"})
	if strings.Join(got, ",") != "content-type,reply-to,correlation-id" {
		t.Fatal(got)
	}
}

func FuzzParse(f *testing.F) {
	for _, n := range examples {
		b, _ := os.ReadFile("testdata/" + n + ".input.json")
		f.Add(b)
	}
	f.Add([]byte(minimalAMQP))
	f.Add([]byte(`{"id":"x","connectionType":"hono","connectionStatus":"open","sources":[{"addresses":["telemetry"],"authorizationContext":["a"]}],"sshTunnel":{"enabled":true,"credentials":{"type":"public-key","username":"u","publicKey":"p","privateKey":"k"},"validateHost":true,"uri":"ssh://x:22"}}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"id":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, parse := range []func([]byte) (*Connection, error){Parse, ParseCommand} {
			c, err := parse(data)
			if err != nil {
				if _, ok := ditto.As(err); !ok {
					t.Fatalf("non-Ditto error %v", err)
				}
				continue
			}
			out := c.JSON(true)
			if !json.Valid(out) {
				t.Fatalf("invalid JSON %s", out)
			}
			cfg := DefaultValidationConfig()
			cfg.LookupIP = func(string) ([]net.IP, error) { return nil, &net.DNSError{Err: "x"} }
			_ = Validate(c, cfg, mappingsOnly{})
			_, _ = c.Select("id,sources(addresses),x(")
			if _, err := ParseCommand(c.JSON(true)); err != nil {
				t.Fatalf("re-parse of own output failed: %v\n%s", err, out)
			}
		}
	})
}

// unknownTypes knows no connection type.
type unknownTypes struct{}

func (unknownTypes) Protocol(string) (Protocol, bool) { return Protocol{}, false }

// TestValidateProtocolsContract: a type the table does not know passes the
// shared rules as the zero Protocol would and is refused last, as Ditto
// refuses a type without a validator; nil is a table that knows nothing.
func TestValidateProtocolsContract(t *testing.T) {
	tgt := `{"address":"x",` + ac + `}`
	valid := mustParse(t, conn("amqp-091", "amqp://h:5672", "", tgt, ""))
	for name, p := range map[string]Protocols{"nil": nil, "unknown": unknownTypes{}} {
		t.Run(name, func(t *testing.T) {
			wantErr(t, Validate(valid, DefaultValidationConfig(), p), 500, ditto.CodeInternalError, "Unknown connection type: amqp-091")
			// the shared rules still come first
			empty := mustParse(t, conn("amqp-091", "amqp://h:5672", "", `{"address":"",`+ac+`}`, ""))
			wantErr(t, Validate(empty, DefaultValidationConfig(), p), 400, ditto.CodeConfigurationInvalid, "addresses may not be empty")
			// and the zero Protocol allows no HMAC credentials
			hmac := mustParse(t, conn("amqp-091", "amqp://h:5672", "", tgt, `,"credentials":{"type":"hmac","algorithm":"az-sasl","parameters":{}}`))
			wantErr(t, Validate(hmac, DefaultValidationConfig(), p), 400, ditto.CodeConfigurationInvalid, "HMAC credentials are not supported")
		})
	}
	if err := Validate(valid, DefaultValidationConfig(), mappingsOnly{}); err != nil {
		t.Fatalf("a known type with passing rules: %v", err)
	}
}
