package model

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The options inventory (issue 15, "Rule for the future"): every option Ditto
// accepts is either acted on as Ditto does, with a test that proves it, or
// refused with a Ditto-style error, with a test that asserts the refusal.
// TestOptionsInventory walks Ditto's connection JSON schema and the
// specificConfig keys Ditto documents per connection type and fails on any
// option that is in neither state, or whose test does not exist.

// dittoReference is Ditto's unmodified reference material beside the
// repository (see /work/shared/ditto-reference/README.md).
const dittoReference = "../../../shared/ditto-reference"

// repoRoot is where the tests named in the inventory are searched.
const repoRoot = "../.."

// verdict is the state of one option: "implemented" or "refused", and the
// test that proves it as "<directory from the repository root>:<TestName>".
type verdict struct{ state, test string }

func impl(test string) verdict    { return verdict{"implemented", test} }
func refused(test string) verdict { return verdict{"refused", test} }

// Test names used more than once below.
const (
	tLiveMQTT      = "test/live:TestIntegrationMQTT"
	tLiveTLS       = "test/live:TestIntegrationMQTTTLS"
	tLiveSSH       = "test/live:TestIntegrationSSHTunnel"
	tTunnelRefuse  = "internal/sshtunnel:TestIntegrationTunnelRefusals"
	tTunnelForward = "internal/sshtunnel:TestIntegrationTunnelForwards"
	tAWS           = "internal/client/httppush:TestHTTPPushAWSSignatureVerified"
	tAzMonitor     = "internal/client/httppush:TestHTTPPushAzureMonitorSignatureVerified"
	tAzSASL        = "internal/client/httppush:TestHTTPPushAzureSASLSignatureVerified"
	tOAuthCC       = "internal/client/httppush:TestTokenCachedAndRefreshed"
	tOAuthPW       = "internal/client/httppush:TestHTTPPushOAuthPasswordFlow"
	tEnforcement   = "internal/dataplane:TestTwinCommandAndEnforcementFailuresAnswerTheReplyTarget"
	tAckTimeout    = "internal/dataplane:TestUnansweredLabelTimesOut"
	tTargets       = "internal/dataplane:TestTwinEventFilterAndUnresolvedAddress"
	tProof         = "test/live:TestIntegrationDataPlaneProof"
	tMetadata      = "internal/model:TestDefaultsAndHidden"
	tMQTTConfig    = "internal/client/mqttcommon:TestParseConfig"
	tSeparatePub   = "internal/client/mqtt:TestIntegrationSeparatePublisher"
	tMQTTValidate  = "internal/client/mqtt:TestValidate"
	tKafkaConfig   = "internal/client/kafka:TestParseConfig"
	tKafkaValidate = "internal/client/kafka:TestValidate"
	tKafkaDebug    = "internal/client/kafka:TestIntegrationDebugEnabledRecordMetadata"
	tHonoResolve   = "internal/client/hono:TestResolve"
	tAMQP10Config  = "internal/client/amqp10:TestParseConfig"
	tAMQP10Refuse  = "internal/client/amqp10:TestValidateRefusesUnsupportedJMSOptions"
)

// modelFields maps every field of Ditto's connection JSON schema, as
// schemaFields names it, to its verdict. Credentials variants are named by
// the fragment of their schema $id ("credentials#az-sasl.parameters.ttl").
var modelFields = map[string]verdict{
	"id":               impl("test:TestAPI"),
	"name":             impl("internal/model:TestExamplesRoundTrip"),
	"connectionType":   impl("internal/client/clients:TestEveryTypeHasRules"),
	"connectionStatus": impl("test/live:TestIntegrationRestartReopens"),
	"uri":              impl(tLiveMQTT),
	"ca":               impl(tLiveTLS),
	"credentials":      impl("internal/model:TestValidate"),

	"credentials#ClientCertificate.type": impl(tLiveTLS),
	"credentials#ClientCertificate.cert": impl(tLiveTLS),
	"credentials#ClientCertificate.key":  impl(tLiveTLS),

	"credentials#aws4-hmac-sha256.type":                         impl(tAWS),
	"credentials#aws4-hmac-sha256.algorithm":                    impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters":                   impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.region":            impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.service":           impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.accessKey":         impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.secretKey":         impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.doubleEncode":      impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.canonicalHeaders":  impl(tAWS),
	"credentials#aws4-hmac-sha256.parameters.xAmzContentSha256": impl(tAWS),

	"credentials#az-monitor.type":                   impl(tAzMonitor),
	"credentials#az-monitor.algorithm":              impl(tAzMonitor),
	"credentials#az-monitor.parameters":             impl(tAzMonitor),
	"credentials#az-monitor.parameters.workspaceId": impl(tAzMonitor),
	"credentials#az-monitor.parameters.sharedKey":   impl(tAzMonitor),

	"credentials#az-sasl.type":                     impl(tAzSASL),
	"credentials#az-sasl.algorithm":                impl(tAzSASL),
	"credentials#az-sasl.parameters":               impl(tAzSASL),
	"credentials#az-sasl.parameters.sharedKey":     impl(tAzSASL),
	"credentials#az-sasl.parameters.sharedKeyName": impl(tAzSASL),
	"credentials#az-sasl.parameters.endpoint":      impl(tAzSASL),
	"credentials#az-sasl.parameters.ttl":           impl(tAzSASL),

	"credentials#oauth2-client-credentials.type":            impl(tOAuthCC),
	"credentials#oauth2-client-credentials.tokenEndpoint":   impl(tOAuthCC),
	"credentials#oauth2-client-credentials.clientId":        impl(tOAuthCC),
	"credentials#oauth2-client-credentials.clientSecret":    impl(tOAuthCC),
	"credentials#oauth2-client-credentials.requestedScopes": impl(tOAuthCC),

	"credentials#oauth2-password.type":            impl(tOAuthPW),
	"credentials#oauth2-password.tokenEndpoint":   impl(tOAuthPW),
	"credentials#oauth2-password.clientId":        impl(tOAuthPW),
	"credentials#oauth2-password.clientSecret":    impl("internal/client/httppush:TestHTTPPushOAuthPasswordWithoutSecret"),
	"credentials#oauth2-password.requestedScopes": impl(tOAuthPW),
	"credentials#oauth2-password.username":        impl(tOAuthPW),
	"credentials#oauth2-password.password":        impl(tOAuthPW),

	"sources":                                     impl(tLiveMQTT),
	"sources[].addresses":                         impl(tLiveMQTT),
	"sources[].consumerCount":                     impl("internal/client/clients:TestExpectedSources"),
	"sources[].authorizationContext":              impl("internal/dataplane:TestRequestSubjectIdIsTheSourcesFirstAuthorizationSubject"),
	"sources[].enforcement":                       impl(tEnforcement),
	"sources[].enforcement.input":                 impl(tEnforcement),
	"sources[].enforcement.filters":               impl(tEnforcement),
	"sources[].acknowledgementRequests":           impl(tAckTimeout),
	"sources[].acknowledgementRequests.includes":  impl(tAckTimeout),
	"sources[].acknowledgementRequests.filter":    impl("internal/dataplane:TestAckRequestFilter"),
	"sources[].declaredAcks":                      impl("internal/dataplane:TestDeclaredAndUndeclaredDeviceAcks"),
	"sources[].payloadMapping":                    impl(tProof),
	"sources[].headerMapping":                     impl("test/live:TestIntegrationDataPlaneMQTT5"),
	"sources[].replyTarget":                       impl(tEnforcement),
	"sources[].replyTarget.enabled":               impl(tEnforcement),
	"sources[].replyTarget.address":               impl(tEnforcement),
	"sources[].replyTarget.headerMapping":         impl(tEnforcement),
	"sources[].replyTarget.expectedResponseTypes": impl(tAckTimeout),

	"targets":                              impl(tTargets),
	"targets[].address":                    impl(tTargets),
	"targets[].topics":                     impl(tTargets),
	"targets[].authorizationContext":       impl(tTargets),
	"targets[].issuedAcknowledgementLabel": impl("internal/dataplane:TestHTTPResponseIsTheAcknowledgement"),
	"targets[].payloadMapping":             impl(tProof),
	"targets[].headerMapping":              impl(tProof),

	"clientCount": impl("test/cluster:TestIntegrationClusterClientCount"),
	// Ditto's only use is AMQP 1.0's Qpid failover transport: the JMS
	// client reconnects by itself; the amqp10 client does the same.
	"failoverEnabled": impl("internal/client/amqp10:TestIntegrationFailoverEnabled"),
	// Ditto maps processorPoolSize messages of a client at once (at most
	// max-pool-size), each processor with a JavaScript scope of its own.
	"processorPoolSize":    impl("internal/dataplane:TestParallelMappingUsesThePool"),
	"validateCertificates": impl(tLiveTLS),
	"specificConfig":       impl(tMQTTConfig), // its keys: specificConfigKeys
	"mappingDefinitions":   impl(tProof),

	"mappingDefinitions.*.mappingEngine": impl("internal/mapping:TestValidatorInstantiatesEveryMappingDefinition"),
	"mappingDefinitions.*.options":       impl("internal/mapping:TestJavaScriptConfiguration"),

	"sshTunnel":                        impl(tLiveSSH),
	"sshTunnel.enabled":                impl("internal/sshtunnel:TestWrapLeavesUntunnelledConnectionsAlone"),
	"sshTunnel.uri":                    impl(tLiveSSH),
	"sshTunnel.credentials":            impl(tLiveSSH),
	"sshTunnel.credentials.type":       impl(tTunnelForward),
	"sshTunnel.credentials.username":   impl(tLiveSSH),
	"sshTunnel.credentials.password":   impl(tLiveSSH),
	"sshTunnel.credentials.publicKey":  impl(tTunnelForward),
	"sshTunnel.credentials.privateKey": impl(tTunnelForward),
	"sshTunnel.validateHost":           impl(tTunnelRefuse),
	"sshTunnel.knownHosts":             impl("internal/sshtunnel:TestHostKeyCallbackFingerprints"),

	"_revision": impl("test/durability:TestJournalDocumentsAreDittos"),
	"_created":  impl(tMetadata),
	"_modified": impl(tMetadata),
}

// extraFields are connection fields Ditto accepts that its JSON schema
// does not list, with the page that documents them.
var extraFields = map[string]string{
	"sources[].qos": "connectivity-protocol-bindings-mqtt.md, -mqtt5.md (Source format)",
	"targets[].qos": "connectivity-protocol-bindings-mqtt.md, -mqtt5.md (Target format)",
	"tags":          "basic-connections.md (connection tags)",
}

var extraFieldVerdicts = map[string]verdict{
	"sources[].qos": impl(tLiveMQTT),
	"targets[].qos": impl("internal/client/mqttcommon:TestPublishParams"),
	"tags":          impl("internal/model:TestSelect"),
}

// specificConfigKeys are the specificConfig keys Ditto documents per
// connection type, "<connectionType>:<key>". Only the Hono page is among the
// reference files (and is checked against this table below); the other
// pages are Ditto's documentation/src/main/resources/pages/ditto/
// connectivity-protocol-bindings-{mqtt,mqtt5,kafka2,http,amqp10,amqp091}.md,
// named per entry.
var specificConfigKeys = map[string]struct {
	page string
	v    verdict
}{
	// MQTT 3.1.1 and MQTT 5 ("Specific Config"; both pages list the same keys).
	// The conformance suites redeliver through a persistent session with
	// cleanSession false, reconnectForRedelivery and its delay.
	"mqtt:clientId":                      {"connectivity-protocol-bindings-mqtt.md", impl(tMQTTConfig)},
	"mqtt:reconnectForRedelivery":        {"connectivity-protocol-bindings-mqtt.md", impl("internal/client/mqtt:TestIntegrationConformance")},
	"mqtt:cleanSession":                  {"connectivity-protocol-bindings-mqtt.md", impl("internal/client/mqtt:TestIntegrationConformance")},
	"mqtt:separatePublisherClient":       {"connectivity-protocol-bindings-mqtt.md", impl(tSeparatePub)},
	"mqtt:publisherId":                   {"connectivity-protocol-bindings-mqtt.md", impl(tSeparatePub)},
	"mqtt:reconnectForRedeliveryDelay":   {"connectivity-protocol-bindings-mqtt.md", impl("internal/client/mqtt:TestIntegrationConformance")},
	"mqtt:keepAlive":                     {"connectivity-protocol-bindings-mqtt.md", impl("internal/client/mqtt:TestKeepAliveBareNumberIsMillis")},
	"mqtt:lastWillTopic":                 {"connectivity-protocol-bindings-mqtt.md", impl(tMQTTConfig)},
	"mqtt:lastWillQos":                   {"connectivity-protocol-bindings-mqtt.md", impl(tMQTTValidate)},
	"mqtt:lastWillRetain":                {"connectivity-protocol-bindings-mqtt.md", impl(tMQTTConfig)},
	"mqtt:lastWillMessage":               {"connectivity-protocol-bindings-mqtt.md", impl(tMQTTConfig)},
	"mqtt-5:clientId":                    {"connectivity-protocol-bindings-mqtt5.md", impl(tMQTTConfig)},
	"mqtt-5:reconnectForRedelivery":      {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestIntegrationConformance")},
	"mqtt-5:cleanSession":                {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestIntegrationConformance")},
	"mqtt-5:separatePublisherClient":     {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestIntegrationSeparatePublisher")},
	"mqtt-5:publisherId":                 {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestIntegrationSeparatePublisher")},
	"mqtt-5:reconnectForRedeliveryDelay": {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestIntegrationConformance")},
	"mqtt-5:keepAlive":                   {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestKeepAliveBareNumberIsMillis")},
	"mqtt-5:lastWillTopic":               {"connectivity-protocol-bindings-mqtt5.md", impl(tMQTTConfig)},
	"mqtt-5:lastWillQos":                 {"connectivity-protocol-bindings-mqtt5.md", impl("internal/client/mqtt5:TestValidate")},
	"mqtt-5:lastWillRetain":              {"connectivity-protocol-bindings-mqtt5.md", impl(tMQTTConfig)},
	"mqtt-5:lastWillMessage":             {"connectivity-protocol-bindings-mqtt5.md", impl(tMQTTConfig)},

	// Kafka ("Specific configuration properties"; groupId and
	// consumerOffsetReset in the source section).
	"kafka:bootstrapServers":    {"connectivity-protocol-bindings-kafka2.md", impl(tKafkaValidate)},
	"kafka:saslMechanism":       {"connectivity-protocol-bindings-kafka2.md", impl("internal/client/kafka:TestIntegrationSASL")},
	"kafka:groupId":             {"connectivity-protocol-bindings-kafka2.md", impl(tKafkaConfig)},
	"kafka:consumerOffsetReset": {"connectivity-protocol-bindings-kafka2.md", impl(tKafkaConfig)},
	// In Ditto debugEnabled only changes issued acknowledgements: 200 with
	// the record metadata instead of 204.
	"kafka:debugEnabled": {"connectivity-protocol-bindings-kafka2.md", impl(tKafkaDebug)},

	// HTTP push ("Specific configuration properties").
	"http-push:parallelism":     {"connectivity-protocol-bindings-http.md", impl("internal/client/httppush:TestHTTPPushParallelism")},
	"http-push:idleTimeout":     {"connectivity-protocol-bindings-http.md", impl("internal/client/httppush:TestHTTPPushIdleTimeoutBareNumberIsMillis")},
	"http-push:omitRequestBody": {"connectivity-protocol-bindings-http.md", impl("internal/client/httppush:TestHTTPPushOmitRequestBody")},

	// AMQP 1.0: "interpreted as JMS configuration options" (Qpid JMS), an
	// open set; the options the client acts on, and the refusal of any other.
	"amqp-10:jms.clientID":           {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.connectTimeout":     {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.sendTimeout":        {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.requestTimeout":     {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.prefetchPolicy.all": {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.username":           {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.password":           {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:amqp.saslMechanisms":    {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:jms.queuePrefix":        {"connectivity-protocol-bindings-amqp10.md", impl("internal/client/amqp10:TestIntegrationTopicAndQueueTargetPrefixes")},
	"amqp-10:jms.topicPrefix":        {"connectivity-protocol-bindings-amqp10.md", impl("internal/client/amqp10:TestIntegrationTopicAndQueueTargetPrefixes")},
	"amqp-10:transport.trustAll":     {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	"amqp-10:transport.verifyHost":   {"connectivity-protocol-bindings-amqp10.md", impl(tAMQP10Config)},
	// Qpid's failover transport options, which Ditto sets and lets
	// specificConfig override (AmqpSpecificConfig).
	"amqp-10:failover.*":                  {"connectivity-protocol-bindings-amqp10.md", impl("internal/client/amqp10:TestFailoverSchedule")},
	"amqp-10:<any other Qpid JMS option>": {"connectivity-protocol-bindings-amqp10.md", refused(tAMQP10Refuse)},

	// AMQP 0.9.1 documents no specificConfig key.

	// Hono ("Specific configuration options"); bootstrapServers and
	// saslMechanism are set from the service configuration, as in Ditto.
	"hono:honoTenantId":     {"connectivity-protocol-bindings-hono.md", impl("test/live:TestIntegrationHono")},
	"hono:groupId":          {"connectivity-protocol-bindings-hono.md", impl(tHonoResolve)},
	"hono:debugEnabled":     {"connectivity-protocol-bindings-hono.md", impl(tKafkaDebug)}, // Hono runs on the Kafka client
	"hono:bootstrapServers": {"connectivity-protocol-bindings-hono.md", impl(tHonoResolve)},
	"hono:saslMechanism":    {"connectivity-protocol-bindings-hono.md", impl(tHonoResolve)},
}

// knownGaps are options that are neither acted on as Ditto does nor refused
// today, each with its issue and why it is not refused yet. The test fails
// when a gap is also in the tables above, so closing one means moving it.
var knownGaps = map[string]string{}

// schemaFields lists every property of the connection schema, recursively,
// as dotted paths: array items as "[]", map values as ".*", oneOf variants
// with a "#fragment" $id as "name#fragment".
func schemaFields(node map[string]any, prefix string, out map[string]bool) {
	if props, ok := node["properties"].(map[string]any); ok {
		for name, sub := range props {
			p := name
			if prefix != "" {
				p = prefix + "." + name
			}
			out[p] = true
			if m, ok := sub.(map[string]any); ok {
				schemaFields(m, p, out)
			}
		}
	}
	if items, ok := node["items"].(map[string]any); ok {
		schemaFields(items, prefix+"[]", out)
	}
	if ap, ok := node["additionalProperties"].(map[string]any); ok {
		schemaFields(ap, prefix+".*", out)
	}
	for _, key := range []string{"oneOf", "anyOf", "allOf"} {
		alts, _ := node[key].([]any)
		for _, a := range alts {
			m, ok := a.(map[string]any)
			if !ok {
				continue
			}
			p := prefix
			if id, _ := m["$id"].(string); strings.Contains(id, "#") {
				p = prefix + "#" + id[strings.LastIndex(id, "#")+1:]
			}
			schemaFields(m, p, out)
		}
	}
}

var testFunc = regexp.MustCompile(`(?m)^func (Test\w+)\(`)

// testsByDir maps each directory (from the repository root, slash
// separated) to the Test functions of its *_test.go files.
func testsByDir(t *testing.T) map[string]map[string]bool {
	t.Helper()
	out := map[string]map[string]bool{}
	err := filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repoRoot, filepath.Dir(path))
		if err != nil {
			return err
		}
		dir := filepath.ToSlash(rel)
		if out[dir] == nil {
			out[dir] = map[string]bool{}
		}
		for _, m := range testFunc.FindAllSubmatch(src, -1) {
			out[dir][string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("scanning the repository's tests: %v", err)
	}
	return out
}

// checkVerdict reports a verdict whose state is unknown or whose test does
// not exist.
func checkVerdict(t *testing.T, tests map[string]map[string]bool, option string, v verdict) {
	t.Helper()
	if v.state != "implemented" && v.state != "refused" {
		t.Errorf("%s: state %q is neither implemented nor refused", option, v.state)
	}
	dir, name, ok := strings.Cut(v.test, ":")
	if !ok || !strings.HasPrefix(name, "Test") {
		t.Errorf("%s: test %q is not <dir>:<TestName>", option, v.test)
		return
	}
	if !tests[dir][name] {
		t.Errorf("%s is %s by %s, but %s/*_test.go has no func %s(", option, v.state, v.test, dir, name)
	}
}

// TestOptionsInventory fails when a field of Ditto's connection model or a
// documented specificConfig key is neither implemented nor refused by an
// existing test, and when the tables name fields Ditto's schema does not have.
func TestOptionsInventory(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(dittoReference, "jsonschema", "connection.json"))
	if err != nil {
		t.Skipf("Ditto's reference material is not beside the repository (%v)", err)
	}
	var schema map[string]any
	if err := json.Unmarshal(raw, &schema); err != nil {
		t.Fatalf("connection.json: %v", err)
	}
	fields := map[string]bool{}
	schemaFields(schema, "", fields)
	if len(fields) < 50 {
		t.Fatalf("walked only %d fields of connection.json; the walk is broken", len(fields))
	}
	tests := testsByDir(t)

	var unaccounted []string
	for f := range fields {
		v, inTable := modelFields[f]
		_, gap := knownGaps[f]
		switch {
		case inTable && gap:
			t.Errorf("%s is both in the table and a known gap", f)
		case inTable:
			checkVerdict(t, tests, f, v)
		case !gap:
			unaccounted = append(unaccounted, f)
		}
	}
	sort.Strings(unaccounted)
	for _, f := range unaccounted {
		t.Errorf("connection field %s is neither implemented nor refused by a test, nor a known gap", f)
	}
	for f := range modelFields {
		if !fields[f] {
			t.Errorf("table entry %s is not a field of Ditto's connection schema", f)
		}
	}
	for f := range knownGaps {
		if !fields[f] && extraFields[f] == "" {
			t.Errorf("known gap %s is not a field of Ditto's connection schema", f)
		}
	}
	for f, page := range extraFields {
		if fields[f] {
			t.Errorf("%s is in the schema now: move it to modelFields", f)
		}
		v, ok := extraFieldVerdicts[f]
		if !ok {
			t.Errorf("%s (%s) has no verdict", f, page)
			continue
		}
		checkVerdict(t, tests, f, v)
	}
	for key, e := range specificConfigKeys {
		if e.page == "" {
			t.Errorf("specificConfig %s names no source page", key)
		}
		checkVerdict(t, tests, "specificConfig "+key, e.v)
	}
	checkDocumentedKeys(t)
}

// backticked is a `key` in a Markdown table row or list item.
var backticked = regexp.MustCompile("^\\s*(?:\\|\\s*|\\*\\s*)`([A-Za-z][\\w.-]*)`")

// checkDocumentedKeys reads the "Specific configuration options" section of
// each protocol binding page among the reference files and fails on a key
// the table does not list for that type. Pages absent from the reference
// are covered by the fixed table alone.
func checkDocumentedKeys(t *testing.T) {
	t.Helper()
	pageType := map[string]string{
		"connectivity-protocol-bindings-hono.md":   "hono",
		"connectivity-protocol-bindings-mqtt.md":   "mqtt",
		"connectivity-protocol-bindings-mqtt5.md":  "mqtt-5",
		"connectivity-protocol-bindings-kafka2.md": "kafka",
		"connectivity-protocol-bindings-http.md":   "http-push",
	}
	pages, _ := filepath.Glob(filepath.Join(dittoReference, "pages", "ditto", "connectivity-protocol-bindings-*.md"))
	if len(pages) == 0 {
		t.Log("no protocol binding page among the reference files; the specificConfig table is not cross-checked")
	}
	for _, p := range pages {
		typ, ok := pageType[filepath.Base(p)]
		if !ok {
			t.Errorf("%s: a protocol binding page the inventory does not know; add its keys and type", filepath.Base(p))
			continue
		}
		keys := specificSectionKeys(t, p)
		if len(keys) == 0 {
			t.Errorf("%s: found no documented specificConfig key; the page layout changed", filepath.Base(p))
		}
		for _, k := range keys {
			if _, ok := specificConfigKeys[typ+":"+k]; !ok {
				t.Errorf("%s documents specificConfig %q, which the inventory does not list for %s", filepath.Base(p), k, typ)
			}
		}
	}
}

// specificSectionKeys returns the backticked keys of the lines of the
// page's section whose heading names specific configuration.
func specificSectionKeys(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("%v", err)
	}
	defer f.Close()
	var keys []string
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			h := strings.ToLower(line)
			in = strings.Contains(h, "specific config")
			continue
		}
		if m := backticked.FindStringSubmatch(line); in && m != nil && !slices.Contains(keys, m[1]) {
			keys = append(keys, m[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return keys
}
