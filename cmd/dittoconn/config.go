package main

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/bridge"
	"github.com/dittoconn/dittoconn/internal/client/mqttcommon"
	"github.com/dittoconn/dittoconn/internal/dataplane"
	"github.com/dittoconn/dittoconn/internal/mapping"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/service"
	"github.com/dittoconn/dittoconn/persistence/fieldcrypto"
)

// config is everything `dittoconn serve` reads from flags and the
// environment: the service's configuration and the binary's log settings.
type config struct {
	service.Config
	LogLevel  string
	LogFormat string
	// clusterEtcd is DITTOCONN_CLUSTER_ETCD_ENDPOINTS before it is split
	// into Actors.Cluster.Etcd.
	clusterEtcd string
}

// defaultConfig is the service's defaults and the binary's own.
func defaultConfig() config {
	c := config{Config: service.DefaultConfig(), LogLevel: "info", LogFormat: "json"}
	// Every mapping limit has its default here, so the settings table shows
	// them and a variable changes one without zeroing the others.
	c.Actors.Mapping = mapping.DefaultConfig()
	c.Instance, _ = os.Hostname()
	return c
}

// setting is one flag and/or environment variable of `dittoconn serve`.
// settings is the only list of them: parseConfig reads what it names, and
// TestREADMEConfiguration holds the README's tables to it.
type setting struct {
	flag  string // "": environment only
	env   string
	usage string // flag usage; "" for a variable without a flag
	// value is the field the setting fills; its content before parsing is
	// the default. nil: another package reads the variable (external).
	value func(*config) value
}

// value is one parsed setting (flag.Value with the reason in its error).
type value interface {
	Set(string) error
	String() string
}

// settings in the README's order. Environment names are Ditto's where Ditto
// has one.
var settings = []setting{
	{"http-addr", "DITTOCONN_HTTP_ADDR", "HTTP listen address", str(func(c *config) *string { return &c.HTTPAddr })},
	{"data-dir", "DITTOCONN_DATA_DIR", "embedded store directory, used when MONGO_DB_URI is unset", str(func(c *config) *string { return &c.Store.DataDir })},
	{"mongo-uri", "MONGO_DB_URI", "MongoDB URI; selects the MongoDB engine", str(func(c *config) *string { return &c.Store.MongoURI })},
	{"mongo-database", "MONGO_DB_DATABASE", "MongoDB database", str(func(c *config) *string { return &c.Store.MongoDatabase })},
	{"instance", "INSTANCE_INDEX", "instance id, the key of aggregated responses", str(func(c *config) *string { return &c.Instance })},
	{"", "DEVOPS_SECURED", "", boolean(func(c *config) *bool { return &c.Gateway.DevopsSecured })},
	{"", "DEVOPS_PASSWORD", "", str(func(c *config) *string { return &c.Gateway.DevopsPassword })},
	{"", "DITTOCONN_BODY_LIMIT", "", positive64(func(c *config) *int64 { return &c.Gateway.BodyLimit })},
	{"", "DITTOCONN_CORS_ALLOWED_ORIGINS", "", list(func(c *config) *[]string { return &c.Gateway.CORSAllowedOrigins })},
	{"", "CONNECTION_SNAPSHOT_THRESHOLD", "", positive(func(c *config) *int { return &c.Actors.SnapshotThreshold })},
	{"", "CONNECTION_ACTIVITY_CHECK_INTERVAL", "", duration(func(c *config) *time.Duration { return &c.Actors.PassivateAfter })},
	{"", "CONNECTION_SOURCE_NUMBER", "", positive(func(c *config) *int { return &c.Actors.Validation.MaxSources })},
	{"", "CONNECTION_TARGET_NUMBER", "", positive(func(c *config) *int { return &c.Actors.Validation.MaxTargets })},
	// Blocked hosts (Ditto's connectivity.connection, SSRF protection).
	{"", "CONNECTIVITY_CONNECTION_ALLOWED_HOSTNAMES", "", list(func(c *config) *[]string { return &c.Actors.Validation.AllowedHostnames })},
	{"", "CONNECTIVITY_CONNECTION_BLOCKED_HOSTNAMES", "", list(func(c *config) *[]string { return &c.Actors.Validation.BlockedHostnames })},
	{"", "CONNECTIVITY_CONNECTION_BLOCKED_SUBNETS", "", list(func(c *config) *[]string { return &c.Actors.Validation.BlockedSubnets })},
	{"", "CONNECTIVITY_CONNECTION_BLOCKED_HOST_REGEX", "", str(func(c *config) *string { return &c.Actors.Validation.BlockedHostRegex })},
	{"", "DITTOCONN_CLIENT_BACKOFF_MIN", "", duration(func(c *config) *time.Duration { return &c.Actors.Backoff.Min })},
	{"", "DITTOCONN_CLIENT_BACKOFF_MAX", "", duration(func(c *config) *time.Duration { return &c.Actors.Backoff.Max })},
	{"", "DITTOCONN_CLIENT_CONNECT_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Actors.ConnectTimeout })},
	{"", "DITTOCONN_CLIENT_TESTING_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Actors.TestTimeout })},
	{"", "DITTOCONN_CLIENT_MAX_CONNECTING", "", positive(func(c *config) *int { return &c.Actors.MaxConnecting })},
	{"", "DITTOCONN_SSH_TUNNEL_HEARTBEAT_INTERVAL", "", duration(func(c *config) *time.Duration { return &c.Actors.Tunnel.HeartbeatInterval })},
	{"", "DITTOCONN_STANDALONE_ROUTING", "", routing(func(c *config) *dataplane.Routing { return &c.Actors.StandaloneRouting })},
	// The bridge to Ditto's gateway, read by internal/bridge (ConfigFromEnv).
	{"", "DITTOCONN_DITTO_WS_URI", "", nil},
	{"", "DITTOCONN_DITTO_AUTH", "", nil},
	{"", "DITTOCONN_DITTO_OAUTH_TOKEN_URL", "", nil},
	{"", "DITTOCONN_DITTO_OAUTH_CLIENT_ID", "", nil},
	{"", "DITTOCONN_DITTO_OAUTH_CLIENT_SECRET", "", nil},
	{"", "DITTOCONN_DITTO_OAUTH_SCOPE", "", nil},
	{"", "DITTOCONN_DITTO_TLS_CA", "", nil},
	{"", "DITTOCONN_DITTO_RECONNECT_MIN", "", nil},
	{"", "DITTOCONN_DITTO_RECONNECT_MAX", "", nil},
	{"", "DITTOCONN_DITTO_PING_INTERVAL", "", nil},
	{"", "DITTOCONN_DITTO_MAX_IN_FLIGHT", "", nil},
	{"log-level", "DITTOCONN_LOG_LEVEL", "debug, info, warn or error", str(func(c *config) *string { return &c.LogLevel })},
	{"log-format", "DITTOCONN_LOG_FORMAT", "json or console", str(func(c *config) *string { return &c.LogFormat })},
	// The connection logs and their publisher (internal/monitor reads them).
	{"", "CONNECTIVITY_LOGGER_LOG_DURATION", "", nil},
	{"", "CONNECTIVITY_LOGGER_SUCCESS_CAPACITY", "", nil},
	{"", "CONNECTIVITY_LOGGER_FAILURE_CAPACITY", "", nil},
	{"", "CONNECTIVITY_LOGGER_MAX_LOG_SIZE_BYTES", "", nil},
	{"", "CONNECTIVITY_LOGGER_ACTIVE_CHECK_INTERVAL", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_ENABLED", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_LOG_LEVELS", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_LOG_HEADERS_AND_PAYLOAD", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_LOG_TAG", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_HOST", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_PORT", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_SSL_ENABLED", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_CONNECTION_TIMEOUT", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_READ_TIMEOUT", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_FLUSH_ATTEMPT_INTERVAL", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_WAIT_UNTIL_BUFFER_FLUSHED", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_WAIT_UNTIL_TERMINATED", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_MAX_BUFFER_SIZE", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_BUFFER_CHUNK_INITIAL_SIZE", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_BUFFER_CHUNK_RETENTION_SIZE", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_BUFFER_CHUNK_RETENTION_TIME", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_JVM_HEAP_BUFFER_MODE", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_FILE_BACKUP_DIR", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_SENDER_MAX_RETRY_COUNT", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_SENDER_BASE_RETRY_INTERVAL", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_SENDER_MAX_RETRY_INTERVAL", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_ACK_RESPONSE_MODE", "", nil},
	{"", "CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_WAIT_UNTIL_ALL_BUFFER_FLUSHED_DURATION_ON_CLOSE", "", nil},
	// HTTP push clients (Ditto's connectivity.connection.http-push).
	{"", "CONNECTIVITY_HTTP_PUSH_REQUEST_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.HTTPPush.RequestTimeout })},
	{"", "CONNECTIVITY_HTTP_PROXY_ENABLED", "", boolean(func(c *config) *bool { return &c.HTTPPush.Proxy.Enabled })},
	{"", "CONNECTIVITY_HTTP_PROXY_HOST", "", str(func(c *config) *string { return &c.HTTPPush.Proxy.Host })},
	{"", "CONNECTIVITY_HTTP_PROXY_PORT", "", whole(func(c *config) *int { return &c.HTTPPush.Proxy.Port })},
	{"", "CONNECTIVITY_HTTP_PROXY_USERNAME", "", str(func(c *config) *string { return &c.HTTPPush.Proxy.Username })},
	{"", "CONNECTIVITY_HTTP_PROXY_PASSWORD", "", str(func(c *config) *string { return &c.HTTPPush.Proxy.Password })},
	// MQTT clients (Ditto's connectivity.connection.mqtt), read by internal/client/mqttcommon.
	{"", "CONNECTIVITY_MQTT_CLEAN_SESSION", "", nil},
	{"", "CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY", "", nil},
	{"", "CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY_DELAY", "", nil},
	{"", "CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL", "", nil},
	{"", "CONNECTIVITY_MQTT_SEPARATE_PUBLISHER_CLIENT", "", nil},
	// Unsettled consumed messages per consumer (Ditto's consumer throttling
	// limit × max-in-flight-factor), read by internal/client.
	{"", "MQTT_CONSUMER_THROTTLING_LIMIT", "", nil},
	{"", "KAFKA_CONSUMER_THROTTLING_LIMIT", "", nil},
	{"", "KAFKA_CONSUMER_THROTTLING_MAX_IN_FLIGHT_FACTOR", "", nil},
	{"", "AMQP10_CONSUMER_THROTTLING_LIMIT", "", nil},
	{"", "AMQP10_CONSUMER_THROTTLING_MAX_IN_FLIGHT_FACTOR", "", nil},
	{"", "DITTOCONN_CONSUMER_MAX_UNSETTLED", "", nil},
	{"", "CONNECTIVITY_HTTP_OAUTH2_ENFORCE_HTTPS", "", boolean(func(c *config) *bool { return &c.Actors.Validation.OAuth2EnforceHTTPS })},
	{"", "CONNECTIVITY_HTTP_OAUTH2_MAX_CLOCK_SKEW", "", duration(func(c *config) *time.Duration { return &c.HTTPPush.TokenSkew })},
	// Hono connections (Ditto's connectivity.hono): the Kafka cluster they run on.
	{"", "HONO_CONNECTION_URI", "", str(func(c *config) *string { return &c.Hono.BaseURI })},
	{"", "HONO_CONNECTION_VALIDATE_CERTIFICATE", "", boolean(func(c *config) *bool { return &c.Hono.ValidateCertificates })},
	{"", "HONO_CONNECTION_CA", "", str(func(c *config) *string { return &c.Hono.CA })},
	{"", "HONO_CONNECTION_SASL_MECHANISM", "", str(func(c *config) *string { return &c.Hono.SASLMechanism })},
	{"", "HONO_CONNECTION_BOOTSTRAP_SERVERS", "", str(func(c *config) *string { return &c.Hono.BootstrapServers })},
	{"", "HONO_CONNECTION_HONO_USERNAME", "", str(func(c *config) *string { return &c.Hono.Username })},
	{"", "HONO_CONNECTION_HONO_PASSWORD", "", str(func(c *config) *string { return &c.Hono.Password })},
	{"", "DITTOCONN_HTTP_READ_HEADER_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Gateway.Limits.ReadHeaderTimeout })},
	{"", "DITTOCONN_HTTP_READ_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Gateway.Limits.ReadTimeout })},
	{"", "DITTOCONN_HTTP_WRITE_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Gateway.Limits.WriteTimeout })},
	{"", "DITTOCONN_HTTP_IDLE_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Gateway.Limits.IdleTimeout })},
	{"", "DITTOCONN_HTTP_MAX_HEADER_BYTES", "", positive(func(c *config) *int { return &c.Gateway.Limits.MaxHeaderBytes })},
	{"", "DITTOCONN_HTTP_MAX_CONCURRENT_PER_CLIENT", "", whole(func(c *config) *int { return &c.Gateway.Limits.MaxConcurrentPerClient })},
	{"", "CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED", "", boolean(func(c *config) *bool { return &c.Encryption.Enabled })},
	{"", "CONNECTIVITY_CONNECTION_ENCRYPTION_KEY", "", str(func(c *config) *string { return &c.Encryption.Key })},
	{"", "CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY", "", str(func(c *config) *string { return &c.Encryption.OldKey })},
	{"", "CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS", "", pointers(func(c *config) *[]string { return &c.Encryption.Pointers })},
	{"", "CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE", "", integer(func(c *config) *int { return &c.Encryption.BatchSize })},
	{"", "CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE", "", integer(func(c *config) *int { return &c.Encryption.MaxDocsPerMinute })},
	{"", "DITTOCONN_ENCRYPTION_MIGRATION_LEASE", "", duration(func(c *config) *time.Duration { return &c.Migration.LeaseTTL })},
	// Cluster mode (on when DITTOCONN_CLUSTER_ETCD_ENDPOINTS is set).
	{"cluster-etcd", "DITTOCONN_CLUSTER_ETCD_ENDPOINTS", "comma-separated etcd endpoints; turns cluster mode on (needs MongoDB)", str(func(c *config) *string { return &c.clusterEtcd })},
	{"cluster-name", "DITTOCONN_CLUSTER_NAME", "cluster name, the same on every node", str(func(c *config) *string { return &c.Actors.Cluster.Name })},
	{"cluster-bind", "DITTOCONN_CLUSTER_BIND", "host:port of the cluster listener", str(func(c *config) *string { return &c.Actors.Cluster.Bind })},
	{"cluster-advertise", "DITTOCONN_CLUSTER_ADVERTISE", "host:port other nodes reach this one at; needed when the bind host is 0.0.0.0", str(func(c *config) *string { return &c.Actors.Cluster.Advertise })},
	{"", "DITTOCONN_CLUSTER_ETCD_LEASE_TTL", "", duration(func(c *config) *time.Duration { return &c.Actors.Cluster.EtcdLeaseTTL })},
	{"", "DITTOCONN_CLUSTER_ETCD_LOST_AFTER", "", duration(func(c *config) *time.Duration { return &c.Actors.Cluster.EtcdLostAfter })},
	{"cluster-tls-cert", "DITTOCONN_CLUSTER_TLS_CERT", "PEM certificate for mutual TLS between nodes", str(func(c *config) *string { return &c.Actors.Cluster.TLSCertFile })},
	{"cluster-tls-key", "DITTOCONN_CLUSTER_TLS_KEY", "its PEM key", str(func(c *config) *string { return &c.Actors.Cluster.TLSKeyFile })},
	{"cluster-tls-ca", "DITTOCONN_CLUSTER_TLS_CA", "PEM CA of every node's certificate", str(func(c *config) *string { return &c.Actors.Cluster.TLSCAFile })},

	// Journal cleanup (Ditto's connectivity.connection.cleanup).
	{"", "CLEANUP_ENABLED", "", boolean(func(c *config) *bool { return &c.Cleanup.Enabled })},
	{"", "CLEANUP_HISTORY_RETENTION_DURATION", "", nonNegativeDuration(func(c *config) *time.Duration { return &c.Cleanup.HistoryRetention })},
	{"", "CLEANUP_QUIET_PERIOD", "", nonNegativeDuration(func(c *config) *time.Duration { return &c.Cleanup.QuietPeriod })},
	{"", "CLEANUP_INTERVAL", "", duration(func(c *config) *time.Duration { return &c.Cleanup.Interval })},
	{"", "CLEANUP_TIMER_THRESHOLD", "", duration(func(c *config) *time.Duration { return &c.Cleanup.TimerThreshold })},
	{"", "CLEANUP_CREDITS_PER_BATCH", "", whole(func(c *config) *int { return &c.Cleanup.CreditsPerBatch })},
	{"", "CLEANUP_READS_PER_QUERY", "", positive(func(c *config) *int { return &c.Cleanup.ReadsPerQuery })},
	{"", "CLEANUP_WRITES_PER_CREDIT", "", positive(func(c *config) *int { return &c.Cleanup.WritesPerCredit })},
	{"", "CLEANUP_DELETE_FINAL_DELETED_SNAPSHOT", "", boolean(func(c *config) *bool { return &c.Cleanup.DeleteFinalDeletedSnapshot })},

	// Ditto's names (connectivity.conf) for settings that had only
	// dittoconn's; the old names above stay as aliases, and Ditto's name,
	// read later, wins when both are set.
	{"", "CONNECTIVITY_CLIENT_MIN_BACKOFF", "", duration(func(c *config) *time.Duration { return &c.Actors.Backoff.Min })},
	{"", "CONNECTIVITY_CLIENT_MAX_BACKOFF", "", duration(func(c *config) *time.Duration { return &c.Actors.Backoff.Max })},
	{"", "CONNECTIVITY_CLIENT_TESTING_TIMEOUT", "", duration(func(c *config) *time.Duration { return &c.Actors.TestTimeout })},
	{"", "CONNECTION_ACTIVITY_CHECK_DELETED_INTERVAL", "", duration(func(c *config) *time.Duration { return &c.Actors.PassivateDeletedAfter })},
	// JavaScript mapping (Ditto's connectivity.mapping.javascript), and
	// dittoconn's own guards for what the JVM's heap bounds in Ditto.
	// connectivity.mapping.max-pool-size: the most a connection's
	// processorPoolSize takes effect with.
	{"", "CONNECTIVITY_MESSAGE_MAPPING_MAX_POOL_SIZE", "", positive(func(c *config) *int { return &c.Actors.Mapping.MaxPoolSize })},
	{"", "CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_SCRIPT_SIZE_BYTES", "", positive(func(c *config) *int { return &c.Actors.Mapping.JavaScript.MaxScriptSizeBytes })},
	{"", "CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_EXECUTION_TIME", "", duration(func(c *config) *time.Duration { return &c.Actors.Mapping.JavaScript.MaxScriptExecutionTime })},
	{"", "CONNECTIVITY_MESSAGE_MAPPING_JS_MAX_STACK_DEPTH", "", positive(func(c *config) *int { return &c.Actors.Mapping.JavaScript.MaxScriptStackDepth })},
	{"", "CONNECTIVITY_MESSAGE_MAPPING_JS_ALLOW_UNSAFE_STANDARD_OBJECTS", "", boolean(func(c *config) *bool { return &c.Actors.Mapping.JavaScript.AllowUnsafeStandardObjects })},
	{"", "CONNECTIVITY_MESSAGE_MAPPING_JS_COMMON_JS_MODULE_PATH", "", str(func(c *config) *string { return &c.Actors.Mapping.JavaScript.CommonJSModulePath })},
	{"", "DITTOCONN_MESSAGE_MAPPING_JS_MAX_ALLOCATION_BYTES", "", positive64(func(c *config) *int64 { return &c.Actors.Mapping.JavaScript.MaxScriptAllocationBytes })},
	{"", "DITTOCONN_MESSAGE_MAPPING_JS_MAX_HEAP_GROWTH_BYTES", "", positive64(func(c *config) *int64 { return &c.Actors.Mapping.JavaScript.MaxScriptHeapGrowthBytes })},
}

// parseConfig reads args (without the program name and sub-command) on top of
// the environment: a flag wins over its variable.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	cfg := defaultConfig()
	var errs []error
	fs := flag.NewFlagSet("dittoconn serve", flag.ContinueOnError)
	for _, s := range settings {
		if s.value == nil {
			// Read by another package: the client settings reach the
			// broker clients through service.Config.ClientSettings.
			if v := getenv(s.env); v != "" {
				if cfg.ClientSettings == nil {
					cfg.ClientSettings = map[string]string{}
				}
				cfg.ClientSettings[s.env] = v
			}
			continue
		}
		v := s.value(&cfg)
		if raw := getenv(s.env); raw != "" {
			if err := v.Set(raw); err != nil {
				errs = append(errs, fmt.Errorf("%s: %q %w", s.env, raw, err))
			}
		}
		if s.flag != "" {
			// Strings only: a flag's default shows the variable's value.
			p := v.(*stringValue)
			fs.StringVar((*string)(p), s.flag, string(*p), s.usage+" ("+s.env+")")
		}
	}
	var err error
	if cfg.Actors.Logs, err = monitor.LogConfigFromEnv(getenv); err != nil {
		return cfg, fmt.Errorf("connection log settings: %w", err)
	}
	if cfg.Fluent, err = monitor.FluentConfigFromEnv(getenv); err != nil {
		return cfg, fmt.Errorf("connection log publisher settings: %w", err)
	}
	if cfg.Ditto, err = bridge.ConfigFromEnv(getenv); err != nil {
		return cfg, fmt.Errorf("the Ditto bridge settings: %w", err)
	}
	if b := cfg.Actors.Backoff; b.Max < b.Min {
		errs = append(errs, fmt.Errorf("CONNECTIVITY_CLIENT_MAX_BACKOFF (%v) is below CONNECTIVITY_CLIENT_MIN_BACKOFF (%v)", b.Max, b.Min))
	}
	if cfg.Actors.Mapping.JavaScript.AllowUnsafeStandardObjects {
		// In Ditto this hands scripts Rhino's unsafe standard objects (Java
		// packages and classes); goja has no Java to hand over, and accepting
		// it would leave the operator's setting without its effect.
		errs = append(errs, errors.New("CONNECTIVITY_MESSAGE_MAPPING_JS_ALLOW_UNSAFE_STANDARD_OBJECTS=true is not supported: "+
			"dittoconn's JavaScript runtime has no Java packages or classes to expose; unset it or set it to false"))
	}
	if ttl := cfg.Actors.Cluster.EtcdLeaseTTL; ttl < time.Second || ttl%time.Second != 0 {
		errs = append(errs, fmt.Errorf("DITTOCONN_CLUSTER_ETCD_LEASE_TTL (%v) must be whole seconds, at least 1s: etcd leases count seconds", ttl))
	}
	if err := cfg.HTTPPush.Proxy.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Actors.Validation.CheckHostSettings(); err != nil {
		errs = append(errs, fmt.Errorf("CONNECTIVITY_CONNECTION_BLOCKED_SUBNETS / _BLOCKED_HOST_REGEX: %w", err))
	}
	if _, err := mqttcommon.ReadDefaults(getenv); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Hono.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Encryption.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.Cleanup.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, e := range strings.Split(cfg.clusterEtcd, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.Actors.Cluster.Etcd = append(cfg.Actors.Cluster.Etcd, e)
		}
	}
	if cfg.Actors.Cluster.Enabled() && cfg.Store.MongoURI == "" {
		errs = append(errs, errors.New("cluster mode (DITTOCONN_CLUSTER_ETCD_ENDPOINTS) needs the MongoDB engine: "+
			"set MONGO_DB_URI to the database every node shares; the embedded store belongs to one process"))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if cfg.Instance == "" {
		cfg.Instance = "1"
	}
	if cc := cfg.Actors.Cluster; cc.Enabled() && getenv("INSTANCE_INDEX") == "" && !flagSet(fs, "instance") {
		// Aggregated answers are keyed by instance: the host name is not
		// unique when several nodes share a host; the cluster address is.
		switch _, port, _ := net.SplitHostPort(cc.Bind); {
		case cc.Advertise != "":
			cfg.Instance = cc.Advertise
		case port != "" && port != "0":
			cfg.Instance = cc.Bind
		default:
			host, _ := os.Hostname()
			cfg.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
		}
	}
	return cfg, errors.Join(errs...)
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// The kinds of setting. Each Set's error completes "NAME: "value" …".

type stringValue string

func str(f func(*config) *string) func(*config) value {
	return func(c *config) value { return (*stringValue)(f(c)) }
}
func (v *stringValue) Set(s string) error { *v = stringValue(s); return nil }
func (v *stringValue) String() string     { return string(*v) }

// routingValue is DITTOCONN_STANDALONE_ROUTING: subjects or all.
type routingValue dataplane.Routing

func routing(f func(*config) *dataplane.Routing) func(*config) value {
	return func(c *config) value { return (*routingValue)(f(c)) }
}
func (v *routingValue) Set(s string) error {
	r, err := dataplane.ParseRouting(s)
	if err != nil {
		return fmt.Errorf("is not %q or %q", dataplane.RoutingSubjects, dataplane.RoutingAll)
	}
	*v = routingValue(r)
	return nil
}
func (v *routingValue) String() string { return string(*v) }

type boolValue bool

func boolean(f func(*config) *bool) func(*config) value {
	return func(c *config) value { return (*boolValue)(f(c)) }
}

// Set takes Go's spellings and HOCON's (yes/no, on/off), which Ditto's
// configuration accepts for a boolean variable.
func (v *boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	switch strings.ToLower(s) {
	case "yes", "on":
		b, err = true, nil
	case "no", "off":
		b, err = false, nil
	}
	if err != nil {
		return errors.New("is not a boolean")
	}
	*v = boolValue(b)
	return nil
}
func (v *boolValue) String() string { return strconv.FormatBool(bool(*v)) }

// intValue accepts integers from min on; why is the error otherwise.
type intValue struct {
	get func() int64
	set func(int64)
	min int64
	why string
}

func ints(p *int, min int64, why string) value {
	return &intValue{get: func() int64 { return int64(*p) }, set: func(n int64) { *p = int(n) }, min: min, why: why}
}

func positive(f func(*config) *int) func(*config) value {
	return func(c *config) value { return ints(f(c), 1, "is not a positive integer") }
}

func whole(f func(*config) *int) func(*config) value {
	return func(c *config) value { return ints(f(c), 0, "is not a whole number") }
}

func integer(f func(*config) *int) func(*config) value {
	return func(c *config) value { return ints(f(c), math.MinInt, "is not an integer") }
}

func positive64(f func(*config) *int64) func(*config) value {
	return func(c *config) value {
		p := f(c)
		return &intValue{get: func() int64 { return *p }, set: func(n int64) { *p = n }, min: 1, why: "is not a positive integer"}
	}
}

func (v *intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || int64(n) < v.min {
		return errors.New(v.why)
	}
	v.set(int64(n))
	return nil
}
func (v *intValue) String() string { return strconv.FormatInt(v.get(), 10) }

// durationValue is a positive duration or, with zeroOK, one of zero or
// more (a retention or quiet period of none).
type durationValue struct {
	p      *time.Duration
	zeroOK bool
}

func duration(f func(*config) *time.Duration) func(*config) value {
	return func(c *config) value { return &durationValue{p: f(c)} }
}

func nonNegativeDuration(f func(*config) *time.Duration) func(*config) value {
	return func(c *config) value { return &durationValue{p: f(c), zeroOK: true} }
}

func (v *durationValue) Set(s string) error {
	d, err := parseDuration(s)
	switch {
	case v.zeroOK && (err != nil || d < 0):
		return errors.New("is not a duration of zero or more")
	case !v.zeroOK && (err != nil || d <= 0):
		return errors.New("is not a positive duration")
	}
	*v.p = d
	return nil
}

// hoconUnits are the duration units of Ditto's configuration (HOCON) that
// Go's time.ParseDuration does not know.
var hoconUnits = map[string]time.Duration{
	"nanosecond": time.Nanosecond, "nanoseconds": time.Nanosecond, "nanos": time.Nanosecond, "nano": time.Nanosecond,
	"microsecond": time.Microsecond, "microseconds": time.Microsecond, "micros": time.Microsecond, "micro": time.Microsecond,
	"millisecond": time.Millisecond, "milliseconds": time.Millisecond, "millis": time.Millisecond, "milli": time.Millisecond,
	"second": time.Second, "seconds": time.Second, "minute": time.Minute, "minutes": time.Minute,
	"hour": time.Hour, "hours": time.Hour, "d": 24 * time.Hour, "day": 24 * time.Hour, "days": 24 * time.Hour,
}

// parseDuration reads Go's form ("1m30s") and the forms a value in Ditto's
// configuration takes: a number with a HOCON unit ("500 ms", "2 seconds",
// "1d") or a bare number of milliseconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, "ms"
	if i >= 0 {
		num, unit = s[:i], strings.TrimSpace(s[i:])
	}
	n, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return 0, err
	}
	if u, ok := hoconUnits[unit]; ok {
		return time.Duration(n * float64(u)), nil
	}
	return time.ParseDuration(num + unit)
}
func (v *durationValue) String() string { return v.p.String() }

// listValue is a comma-separated list; blank items are dropped.
type listValue []string

func list(f func(*config) *[]string) func(*config) value {
	return func(c *config) value { return (*listValue)(f(c)) }
}

func (v *listValue) Set(s string) error {
	var out []string
	for _, o := range strings.Split(s, ",") {
		if o = strings.TrimSpace(o); o != "" {
			out = append(out, o)
		}
	}
	*v = out
	return nil
}
func (v *listValue) String() string { return strings.Join(*v, ",") }

// pointersValue is Ditto's list of JSON pointers (a JSON array or commas).
type pointersValue []string

func pointers(f func(*config) *[]string) func(*config) value {
	return func(c *config) value { return (*pointersValue)(f(c)) }
}

func (v *pointersValue) Set(s string) error {
	ps, err := fieldcrypto.ParsePointers(s)
	if err != nil {
		return err
	}
	*v = ps
	return nil
}
func (v *pointersValue) String() string { return strings.Join(*v, ",") }
