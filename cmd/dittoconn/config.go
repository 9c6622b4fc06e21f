package main

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/gateway"
	"github.com/dittoconn/dittoconn/persistence/encryption"
)

// config is everything the binary reads from flags and the environment.
// Environment names are Ditto's where Ditto has one.
type config struct {
	HTTPAddr       string
	DataDir        string
	MongoURI       string
	MongoDatabase  string
	Instance       string
	DevopsSecured  bool
	DevopsPassword string
	BodyLimit      int64
	HTTPLimits     gateway.Limits
	LogLevel       string
	LogFormat      string

	SnapshotThreshold int
	PassivateAfter    time.Duration
	MaxSources        int
	MaxTargets        int

	// Encryption is Ditto's connection field encryption and its migration.
	Encryption encryption.Settings
	// MigrationLease is the lifetime of the migration's lease (0: 30 s).
	MigrationLease time.Duration

	// Live broker clients: reconnect backoff bounds, one connect attempt,
	// testConnection, concurrent connect attempts.
	ClientBackoffMin, ClientBackoffMax time.Duration
	ClientConnectTimeout               time.Duration
	ClientTestTimeout                  time.Duration
	ClientMaxConnecting                int

	// Cluster mode (on when ClusterEtcd is set): several nodes found
	// through etcd, sharing one MongoDB.
	ClusterEtcd          []string
	ClusterName          string
	ClusterBind          string
	ClusterAdvertise     string
	ClusterEtcdLostAfter time.Duration
	ClusterTLSCert       string
	ClusterTLSKey        string
	ClusterTLSCA         string
}

// parseConfig reads args (without the program name and sub-command) on top of
// the environment: a flag wins over its variable.
func parseConfig(args []string, getenv func(string) string) (config, error) {
	env := func(name, def string) string {
		if v := getenv(name); v != "" {
			return v
		}
		return def
	}
	host, _ := os.Hostname()
	var cfg config
	var errs []error
	envBool := func(name string, def bool) bool {
		v := getenv(name)
		if v == "" {
			return def
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a boolean", name, v))
		}
		return b
	}
	envInt := func(name string, def int) int {
		v := getenv(name)
		if v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive integer", name, v))
		}
		return n
	}
	envIntOrZero := func(name string) int {
		v := getenv(name)
		if v == "" {
			return 0
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a whole number", name, v))
		}
		return n
	}
	envDuration := func(name string, def time.Duration) time.Duration {
		v := getenv(name)
		if v == "" {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a positive duration", name, v))
		}
		return d
	}

	fs := flag.NewFlagSet("dittoconn serve", flag.ContinueOnError)
	fs.StringVar(&cfg.HTTPAddr, "http-addr", env("DITTOCONN_HTTP_ADDR", "127.0.0.1:8080"), "HTTP listen address (DITTOCONN_HTTP_ADDR)")
	fs.StringVar(&cfg.DataDir, "data-dir", env("DITTOCONN_DATA_DIR", "./dittoconn-data"), "embedded store directory, used when MONGO_DB_URI is unset (DITTOCONN_DATA_DIR)")
	fs.StringVar(&cfg.MongoURI, "mongo-uri", getenv("MONGO_DB_URI"), "MongoDB URI; selects the MongoDB engine (MONGO_DB_URI)")
	fs.StringVar(&cfg.MongoDatabase, "mongo-database", env("MONGO_DB_DATABASE", "connectivity"), "MongoDB database (MONGO_DB_DATABASE)")
	fs.StringVar(&cfg.Instance, "instance", env("INSTANCE_INDEX", host), "instance id, the key of aggregated responses (INSTANCE_INDEX)")
	fs.StringVar(&cfg.LogLevel, "log-level", env("DITTOCONN_LOG_LEVEL", "info"), "debug, info, warn or error (DITTOCONN_LOG_LEVEL)")
	fs.StringVar(&cfg.LogFormat, "log-format", env("DITTOCONN_LOG_FORMAT", "json"), "json or console (DITTOCONN_LOG_FORMAT)")
	cfg.DevopsSecured = envBool("DEVOPS_SECURED", true)
	cfg.DevopsPassword = env("DEVOPS_PASSWORD", "foobar")
	cfg.BodyLimit = int64(envInt("DITTOCONN_BODY_LIMIT", 1<<20))
	cfg.HTTPLimits = gateway.Limits{
		ReadHeaderTimeout:      envDuration("DITTOCONN_HTTP_READ_HEADER_TIMEOUT", 10*time.Second),
		ReadTimeout:            envDuration("DITTOCONN_HTTP_READ_TIMEOUT", 30*time.Second),
		WriteTimeout:           envDuration("DITTOCONN_HTTP_WRITE_TIMEOUT", 75*time.Second),
		IdleTimeout:            envDuration("DITTOCONN_HTTP_IDLE_TIMEOUT", 120*time.Second),
		MaxHeaderBytes:         envInt("DITTOCONN_HTTP_MAX_HEADER_BYTES", 64<<10),
		MaxConcurrentPerClient: envIntOrZero("DITTOCONN_HTTP_MAX_CONCURRENT_PER_CLIENT"),
	}
	cfg.SnapshotThreshold = envInt("CONNECTION_SNAPSHOT_THRESHOLD", 10)
	cfg.PassivateAfter = envDuration("CONNECTION_ACTIVITY_CHECK_INTERVAL", 45*time.Minute)
	cfg.MaxSources = envInt("CONNECTION_SOURCE_NUMBER", 4)
	cfg.MaxTargets = envInt("CONNECTION_TARGET_NUMBER", 4)
	cfg.ClientBackoffMin = envDuration("DITTOCONN_CLIENT_BACKOFF_MIN", 5*time.Second)
	cfg.ClientBackoffMax = envDuration("DITTOCONN_CLIENT_BACKOFF_MAX", 60*time.Minute)
	cfg.ClientConnectTimeout = envDuration("DITTOCONN_CLIENT_CONNECT_TIMEOUT", 10*time.Second)
	cfg.ClientTestTimeout = envDuration("DITTOCONN_CLIENT_TESTING_TIMEOUT", 10*time.Second)
	cfg.ClientMaxConnecting = envInt("DITTOCONN_CLIENT_MAX_CONNECTING", 64)
	if cfg.ClientBackoffMax < cfg.ClientBackoffMin {
		errs = append(errs, fmt.Errorf("DITTOCONN_CLIENT_BACKOFF_MAX (%v) is below DITTOCONN_CLIENT_BACKOFF_MIN (%v)", cfg.ClientBackoffMax, cfg.ClientBackoffMin))
	}
	cfg.Encryption = parseEncryption(getenv, envBool, &errs)
	if getenv("DITTOCONN_ENCRYPTION_MIGRATION_LEASE") != "" {
		cfg.MigrationLease = envDuration("DITTOCONN_ENCRYPTION_MIGRATION_LEASE", 0)
	}
	var etcdList string
	fs.StringVar(&etcdList, "cluster-etcd", getenv("DITTOCONN_CLUSTER_ETCD_ENDPOINTS"), "comma-separated etcd endpoints; turns cluster mode on (needs MongoDB) (DITTOCONN_CLUSTER_ETCD_ENDPOINTS)")
	fs.StringVar(&cfg.ClusterName, "cluster-name", env("DITTOCONN_CLUSTER_NAME", "dittoconn"), "cluster name, the same on every node (DITTOCONN_CLUSTER_NAME)")
	fs.StringVar(&cfg.ClusterBind, "cluster-bind", env("DITTOCONN_CLUSTER_BIND", "127.0.0.1:0"), "host:port of the cluster listener (DITTOCONN_CLUSTER_BIND)")
	fs.StringVar(&cfg.ClusterAdvertise, "cluster-advertise", getenv("DITTOCONN_CLUSTER_ADVERTISE"), "host:port other nodes reach this one at; needed when the bind host is 0.0.0.0 (DITTOCONN_CLUSTER_ADVERTISE)")
	cfg.ClusterEtcdLostAfter = envDuration("DITTOCONN_CLUSTER_ETCD_LOST_AFTER", 10*time.Second)
	fs.StringVar(&cfg.ClusterTLSCert, "cluster-tls-cert", getenv("DITTOCONN_CLUSTER_TLS_CERT"), "PEM certificate for mutual TLS between nodes (DITTOCONN_CLUSTER_TLS_CERT)")
	fs.StringVar(&cfg.ClusterTLSKey, "cluster-tls-key", getenv("DITTOCONN_CLUSTER_TLS_KEY"), "its PEM key (DITTOCONN_CLUSTER_TLS_KEY)")
	fs.StringVar(&cfg.ClusterTLSCA, "cluster-tls-ca", getenv("DITTOCONN_CLUSTER_TLS_CA"), "PEM CA of every node's certificate (DITTOCONN_CLUSTER_TLS_CA)")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	for _, e := range strings.Split(etcdList, ",") {
		if e = strings.TrimSpace(e); e != "" {
			cfg.ClusterEtcd = append(cfg.ClusterEtcd, e)
		}
	}
	if len(cfg.ClusterEtcd) > 0 && cfg.MongoURI == "" {
		errs = append(errs, errors.New("cluster mode (DITTOCONN_CLUSTER_ETCD_ENDPOINTS) needs the MongoDB engine: "+
			"set MONGO_DB_URI to the database every node shares; the embedded store belongs to one process"))
	}
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments: %v", fs.Args()))
	}
	if cfg.Instance == "" {
		cfg.Instance = "1"
	}
	if len(cfg.ClusterEtcd) > 0 && getenv("INSTANCE_INDEX") == "" && !flagSet(fs, "instance") {
		// Aggregated answers are keyed by instance: the host name is not
		// unique when several nodes share a host; the cluster address is.
		switch _, port, _ := net.SplitHostPort(cfg.ClusterBind); {
		case cfg.ClusterAdvertise != "":
			cfg.Instance = cfg.ClusterAdvertise
		case port != "" && port != "0":
			cfg.Instance = cfg.ClusterBind
		default:
			cfg.Instance = fmt.Sprintf("%s-%d", host, os.Getpid())
		}
	}
	return cfg, errors.Join(errs...)
}

// parseEncryption reads Ditto's encryption variables and makes the start-up
// checks; no message quotes a key.
func parseEncryption(getenv func(string) string, envBool func(string, bool) bool, errs *[]error) encryption.Settings {
	s := encryption.DefaultSettings()
	s.Enabled = envBool("CONNECTIVITY_CONNECTION_ENCRYPTION_ENABLED", false)
	s.Key = getenv("CONNECTIVITY_CONNECTION_ENCRYPTION_KEY")
	s.OldKey = getenv("CONNECTIVITY_CONNECTION_OLD_ENCRYPTION_KEY")
	if v := getenv("CONNECTIVITY_CONNECTION_ENCRYPTION_POINTERS"); v != "" {
		ps, err := encryption.ParsePointers(v)
		if err != nil {
			*errs = append(*errs, err)
		}
		s.Pointers = ps
	}
	for name, dst := range map[string]*int{
		"CONNECTIVITY_ENCRYPTION_MIGRATION_BATCH_SIZE":          &s.BatchSize,
		"CONNECTIVITY_ENCRYPTION_MIGRATION_MAX_DOCS_PER_MINUTE": &s.MaxDocsPerMinute,
	} {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				*errs = append(*errs, fmt.Errorf("%s: %q is not an integer", name, v))
				continue
			}
			*dst = n
		}
	}
	if err := s.Validate(); err != nil {
		*errs = append(*errs, err)
	}
	return s
}

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
