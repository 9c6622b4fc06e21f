package main

import (
	"bufio"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

// dittoConfFiles are Ditto's unmodified service configurations, the
// source of Ditto's variable names and defaults.
var dittoConfFiles = []string{
	"../../../shared/ditto-reference/config/connectivity.conf",
	"../../../shared/ditto-reference/config/gateway.conf",
}

// dittoVar is one `key = ${?NAME}` of a Ditto configuration file.
type dittoVar struct {
	name, key, file string
	def             string // the literal the key had before, unquoted; "" when none
}

var (
	hoconBlock  = regexp.MustCompile(`^([\w\-."]+)\s*[=:]?\s*\{$`)
	hoconEnv    = regexp.MustCompile(`^([\w\-."]+)\s*[=:]\s*\$\{\?([A-Z0-9_]+)\}$`)
	hoconAssign = regexp.MustCompile(`^([\w\-."]+)\s*[=:]\s*(.+)$`)
)

// dittoVars reads every environment variable of Ditto's configuration
// files with the default its key had just before (HOCON's
// `key = default` then `key = ${?NAME}` idiom).
func dittoVars(t *testing.T) []dittoVar {
	t.Helper()
	var out []dittoVar
	for _, f := range dittoConfFiles {
		file, err := os.Open(f)
		if err != nil {
			t.Skipf("Ditto's configuration is not beside the repository (%v)", err)
		}
		scopes := []map[string]string{{}}
		var keys []string
		sc := bufio.NewScanner(file)
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if i := strings.Index(line, "#"); i >= 0 && !strings.Contains(line[:i], `"`) {
				line = strings.TrimSpace(line[:i])
			}
			switch m := hoconBlock.FindStringSubmatch(line); {
			case m != nil:
				scopes = append(scopes, map[string]string{})
				keys = append(keys, m[1])
				continue
			case line == "}":
				if len(scopes) > 1 {
					scopes, keys = scopes[:len(scopes)-1], keys[:len(keys)-1]
				}
				continue
			}
			cur := scopes[len(scopes)-1]
			if m := hoconEnv.FindStringSubmatch(line); m != nil {
				out = append(out, dittoVar{name: m[2], key: strings.Join(append(append([]string{}, keys...), m[1]), "."),
					file: path.Base(f), def: cur[m[1]]})
				continue
			}
			if m := hoconAssign.FindStringSubmatch(line); m != nil {
				v := strings.TrimSpace(m[2])
				if strings.HasPrefix(v, "${") || strings.HasPrefix(v, "[") || v == "null" {
					v = ""
				}
				cur[m[1]] = strings.Trim(v, `"`)
			}
		}
		_ = file.Close()
	}
	if len(out) < 200 {
		t.Fatalf("read only %d variables from Ditto's configuration; has its format changed?", len(out))
	}
	return out
}

// inParallel marks variables that other changes of issue #16 make
// dittoconn read; an entry so marked may already be read.
const inParallel = "issue #16, another change: "

// dittoNotRead says, for every variable of Ditto's configuration that
// `dittoconn serve` does not read, why not (docs/COMPATIBILITY.md). A name
// with * is a pattern (path.Match).
var dittoNotRead = map[string]string{
	// Runtime internals of a JVM/Pekko service.
	"*_DISPATCHER_*":                                            "JVM thread pools and Pekko dispatchers: a Go process has none to tune",
	"DEFAULT_DISPATCHER_PARALLELISM_MAX":                        "JVM thread pools and Pekko dispatchers: a Go process has none to tune",
	"HTTP_PUSH_CORE_POOL_SIZE_*":                                "JVM thread pools and Pekko dispatchers: a Go process has none to tune",
	"HTTP_PUSH_POOL_SIZE_MAX":                                   "JVM thread pools and Pekko dispatchers: a Go process has none to tune",
	"PEKKO_*":                                                   "Pekko HTTP, cluster sharding and coordinated shutdown internals",
	"COORDINATED_SHUTDOWN_REQUEST_TIMEOUT":                      "Pekko coordinated shutdown: dittoconn finishes requests in flight on SIGTERM",
	"BREAKER_*":                                                 "circuit breakers of Pekko's MongoDB persistence plugin; dittoconn's store calls have their own deadlines",
	"SNAPSHOT_BREAKER_*":                                        "circuit breakers of Pekko's MongoDB persistence plugin; dittoconn's store calls have their own deadlines",
	"MONGODB_READ_JOURNAL_*":                                    "index hints of Ditto's MongoDB read journal queries, which dittoconn does not run",
	"DELAY_AFTER_PERSISTENCE_ACTOR_SHUTDOWN":                    "Pekko persistence actor shutdown; a grain has no such delay",
	"CONNECTIVITY_DEFAULT_CONFIG_PROVIDER":                      "Ditto's pluggable connection config provider; there is one built in",
	"CONNECTIVITY_SUPERVISOR_LOCAL_ASK_TIMEOUT":                 "Ditto's supervisor actor asks; a grain answers directly",
	"CONNECTIVITY_SUPERVISOR_LOCAL_ASK_TIMEOUT_DURING_RECOVERY": "Ditto's supervisor actor asks; a grain answers directly",
	"CONNECTIVITY_CLIENT_ACTOR_ASK_TIMEOUT":                     "Ditto's client actor asks; status is computed from what the clients report",
	"CONNECTIVITY_CLIENT_ACTOR_RETRIES_BEFORE_ESCALATION":       "Ditto's client actor supervision; clients reconnect with backoff for as long as the connection should be open",
	"CONNECTIVITY_ALL_CLIENT_ACTORS_ON_ONE_NODE":                "Ditto's client actor placement; a connection's clients run where its grain runs",
	"CONNECTION_SHUTDOWN_TIMEOUT":                               "Ditto's client actor shutdown",
	"CONNECTIVITY_PRIORITY_UPDATE_INTERVAL":                     "priorities of Ditto's persistence ping; open connections are reopened on start by dittoconn's own sweep",
	"RECONNECT_*":                                               "Ditto's persistence ping stream; open connections are reopened on start by dittoconn's own sweep",
	"PERSISTENCE_PING_STREAMING_ORDER":                          "Ditto's persistence ping stream; open connections are reopened on start by dittoconn's own sweep",
	"CONNECTION_IDS_RETRIEVAL_*":                                "batch sizes of Ditto's read journal queries; the ids listing pages the store itself",
	"CONNECTION_SNAPSHOT_INTERVAL":                              "dittoconn snapshots by event count only (CONNECTION_SNAPSHOT_THRESHOLD)",
	"CONNECTION_EVENT_HISTORICAL_HEADERS_TO_PERSIST":            "journal events are stored without headers for history",

	// Features dittoconn does not have: twin enrichment, the things gateway.
	"CONNECTIVITY_SIGNAL_ENRICHMENT_*":                        "no twin store to enrich signals from (extraFields, docs/COMPATIBILITY.md)",
	"GATEWAY_SIGNAL_ENRICHMENT_*":                             "no twin store to enrich signals from",
	"CONNECTIVITY_MESSAGE_MAPPING_PUBLISH_FAILED_ENRICHMENTS": "no twin store to enrich signals from",
	"GATEWAY_STREAMING_*":                                     "no WebSocket or SSE streaming API",
	"GATEWAY_WEBSOCKET_*":                                     "no WebSocket or SSE streaming API",
	"GATEWAY_SSE_*":                                           "no WebSocket or SSE streaming API",
	"WS_*":                                                    "no WebSocket or SSE streaming API",
	"GATEWAY_WOT_DIRECTORY_*":                                 "no WoT directory",
	"STATISTICS_*":                                            "no things statistics",
	"FIRE_AND_FORGET_ENFORCEMENT_TIMEOUT":                     "no policy enforcement of twin commands",
	"HEALTH_CHECK_*":                                          "/health answers for this process; there are no other services to check",
	"GATEWAY_STATUS_HEALTH_EXTERNAL_TIMEOUT":                  "/health answers for this process; there are no other services to check",
	"DNS_SERVER":                                              "the operating system's resolver is used",
	"SERVER_HEADER":                                           "no Server header is sent",
	"ADDITIONAL_ACCEPTED_MEDIA_TYPES":                         "the media types of the connections API are fixed",
	"ENABLE_CORS":                                             "CORS is configured by origin list (DITTOCONN_CORS_ALLOWED_ORIGINS)",
	"FORCE_HTTPS":                                             "dittoconn serves plain HTTP behind a TLS-terminating proxy",
	"REDIRECT_TO_HTTPS":                                       "dittoconn serves plain HTTP behind a TLS-terminating proxy",
	"REQUEST_TIMEOUT":                                         "the HTTP server's read and write timeouts bound a request (DITTOCONN_HTTP_*_TIMEOUT)",
	"IDLE_TIMEOUT":                                            "DITTOCONN_HTTP_IDLE_TIMEOUT, 120 s instead of Pekko's 610 s: an idle keep-alive connection holds a socket and a goroutine",
	"HOSTNAME":                                                "one listen address, DITTOCONN_HTTP_ADDR; every container runtime sets HOSTNAME, which would move the listener unnoticed",
	"BIND_HOSTNAME":                                           "one listen address, DITTOCONN_HTTP_ADDR",
	"HTTP_PORT":                                               "one listen address, DITTOCONN_HTTP_ADDR",
	"PORT":                                                    "one listen address, DITTOCONN_HTTP_ADDR",
	"AUTH_HTTP_PROXY_*":                                       "no OAuth authentication of API users, so no proxy to reach an issuer",
	"OAUTH_*":                                                 "API users authenticate with basic auth (devops); no OAuth",
	"ENABLE_PRE_AUTHENTICATION":                               "API users authenticate with basic auth (devops); no pre-authentication",
	"ENABLE_DUMMY_AUTH":                                       "API users authenticate with basic auth (devops); no pre-authentication",
	"DEVOPS_AUTHENTICATION_METHOD":                            "devops authentication is basic auth only",
	"DEVOPS_OAUTH2_*":                                         "devops authentication is basic auth only",
	"DEVOPS_PASSWORD_NAME":                                    "secrets are read from the environment, not from files",
	"DEVOPS_STATUS_SECURED":                                   "no /status resources",
	"STATUS_*":                                                "no /status resources",

	// Broker client tuning of Ditto's clients that dittoconn's clients do
	// not offer (yet).
	"AMQP10_*": "tuning of Ditto's Qpid JMS client and its stream stages (queues, parallelism, timeouts, prefetch, backoff) that dittoconn's AMQP 1.0 client does not offer",
	"AMQP_10_CONSUMER_THROTTLING_DETECTION_TOLERANCE": "throttling detection of Ditto's AMQP 1.0 consumer (docs/COMPATIBILITY.md, throttled)",
	"KAFKA_*":                                             "tuning of Ditto's Pekko Kafka stack (restarts, committer, producer queue and parallelism, kafka-clients timeouts) that dittoconn's Kafka client does not offer",
	"CONNECTIVITY_HTTP_PUSH_MAX_QUEUE_SIZE":               "HTTP push publishes from the data plane's target queue, whose bound is not configurable yet",
	"CONNECTIVITY_HTTP_OAUTH2_CACHE_SIZE":                 "each HTTP push client keeps its own token; there is no shared token cache to size",
	"CONNECTIVITY_ACKNOWLEDGEMENT_ISSUED_MAX_BYTES":       "acknowledgements are not issued yet",
	"CONNECTIVITY_ACK_LABEL_DECLARE_INTERVAL":             "acknowledgements are not issued yet",
	"CONNECTIVITY_CLIENT_INIT_TIMEOUT":                    "Ditto's client actor initialisation",
	"CONNECTIVITY_CLIENT_CONNECTING_MIN_TIMEOUT":          "one connect attempt is bounded by DITTOCONN_CLIENT_CONNECT_TIMEOUT, not grown with the backoff",
	"CONNECTIVITY_CLIENT_CONNECTING_MAX_TIMEOUT":          "one connect attempt is bounded by DITTOCONN_CLIENT_CONNECT_TIMEOUT, not grown with the backoff",
	"CONNECTIVITY_CLIENT_CONNECTING_MAX_TRIES":            "clients retry for as long as the connection should be open (docs/COMPATIBILITY.md, reconnect limit)",
	"CONNECTIVITY_CLIENT_DISCONNECTING_MAX_TIMEOUT":       "Ditto's client actor disconnect state",
	"CONNECTIVITY_CLIENT_DISCONNECT_ANNOUNCEMENT_TIMEOUT": "Ditto's client actor disconnect state",
	"CONNECTIVITY_CLIENT_SUBSCRIPTION_MANAGER_TIMEOUT":    "no search subscriptions",
	"CONNECTIVITY_CLIENT_SUBSCRIPTION_REFRESH_INTERVAL":   "no search subscriptions",

	// Being built by other changes of issue #16.
	"HONO_CONNECTION_*":                          inParallel + "Hono connections",
	"CONNECTIVITY_CONNECTION_ALLOWED_HOSTNAMES":  inParallel + "allowed and blocked hosts",
	"CONNECTIVITY_CONNECTION_BLOCKED_*":          inParallel + "allowed and blocked hosts",
	"CONNECTIVITY_HTTP_OAUTH2_ENFORCE_HTTPS":     inParallel + "OAuth settings of HTTP push",
	"CONNECTIVITY_HTTP_OAUTH2_MAX_CLOCK_SKEW":    inParallel + "OAuth settings of HTTP push",
	"CONNECTIVITY_MQTT_*":                        inParallel + "MQTT settings",
	"MQTT_CONSUMER_THROTTLING_*":                 inParallel + "MQTT settings",
	"CONNECTIVITY_MESSAGE_MAPPING_MAX_POOL_SIZE": inParallel + "processorPoolSize (parallel mapping)",
}

// dittoLookalikes are variables of the settings table with Ditto-style
// names that Ditto's two configuration files do not hold.
var dittoLookalikes = map[string]string{
	"MONGO_DB_URI":   "Ditto's ditto-mongo.conf",
	"INSTANCE_INDEX": "Ditto's ditto-cluster.conf",
	// Fluency keys that Ditto's connectivity.conf sets without a variable:
	// dittoconn names a variable for them the way Ditto names the others.
	"CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_*": "named after the fluency key, as Ditto names its other fluency variables",
}

func notReadReason(name string) (string, bool) {
	if r, ok := dittoNotRead[name]; ok {
		return r, true
	}
	for p, r := range dittoNotRead {
		if ok, _ := path.Match(p, name); ok && strings.Contains(p, "*") {
			return r, true
		}
	}
	return "", false
}

// TestDittoVariablesReadOrExplained: every environment variable of Ditto's
// connectivity.conf and gateway.conf is either read by `dittoconn serve`
// (the settings table) or listed in dittoNotRead with the reason; a name
// listed there must not be read as well (unless another #16 change is
// adding it), so the list cannot go stale.
func TestDittoVariablesReadOrExplained(t *testing.T) {
	read := map[string]bool{}
	for _, s := range settings {
		read[s.env] = true
	}
	seen := map[string]bool{}
	for _, v := range dittoVars(t) {
		if seen[v.name] {
			continue
		}
		seen[v.name] = true
		reason, listed := notReadReason(v.name)
		switch {
		case read[v.name] && listed && !strings.HasPrefix(reason, inParallel):
			if _, exact := dittoNotRead[v.name]; exact {
				t.Errorf("%s (%s %s) is read now: remove it from dittoNotRead", v.name, v.file, v.key)
			}
		case !read[v.name] && !listed:
			t.Errorf("Ditto's %s reads %s (%s); dittoconn neither reads it (settings in config.go) nor says why not (dittoNotRead)",
				v.file, v.name, v.key)
		}
	}
	for p := range dittoNotRead {
		if strings.Contains(p, "*") {
			continue
		}
		if !seen[p] {
			t.Errorf("dittoNotRead names %s, which Ditto's configuration does not have", p)
		}
	}
	// The other way round: a variable with a Ditto-style name is Ditto's.
	for _, s := range settings {
		if strings.HasPrefix(s.env, "DITTOCONN_") || seen[s.env] {
			continue
		}
		found := false
		for p := range dittoLookalikes {
			if ok, _ := path.Match(p, s.env); ok {
				found = true
			}
		}
		if !found {
			t.Errorf("%s looks like one of Ditto's variables but is not in Ditto's configuration: name it DITTOCONN_…", s.env)
		}
	}
}

// dittoDefaultDiffers: settings read under Ditto's name whose default is
// not Ditto's, and why.
var dittoDefaultDiffers = map[string]string{
	// Ditto's file has placeholders here; a Hono connection without real
	// values should fail saying so, not try them.
	"HONO_CONNECTION_HONO_USERNAME":     "Ditto's placeholder honoUsername; unset",
	"HONO_CONNECTION_HONO_PASSWORD":     "Ditto's placeholder honoPassword; unset",
	"HONO_CONNECTION_BOOTSTRAP_SERVERS": "Ditto's placeholder localhost:9092; unset",
}

// TestDittoDefaults: a variable read under Ditto's name has Ditto's
// default (the literal before `${?NAME}` in Ditto's file).
func TestDittoDefaults(t *testing.T) {
	byEnv := map[string]setting{}
	for _, s := range settings {
		byEnv[s.env] = s
	}
	defaults := defaultConfig()
	checked := 0
	for _, v := range dittoVars(t) {
		s, ok := byEnv[v.name]
		if !ok || s.value == nil || v.def == "" {
			continue // not read, read by another package with its own defaults, or no literal default
		}
		if _, differs := dittoDefaultDiffers[v.name]; differs {
			continue
		}
		want := s.value(&defaults).String()
		if !sameValue(s, v.def, want) {
			t.Errorf("%s: Ditto's default (%s %s) is %q, dittoconn's %q", v.name, v.file, v.key, v.def, want)
		}
		checked++
	}
	if checked < 15 {
		t.Fatalf("compared only %d defaults", checked)
	}
}
