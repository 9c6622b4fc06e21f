package amqp10

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// specificConfig keys Ditto passes to its JMS client as URI options; the
// ones with a Go equivalent are honoured, any other key is ignored.
const (
	cfgClientID       = "jms.clientID"
	cfgConnectTimeout = "jms.connectTimeout" // ms
	cfgSendTimeout    = "jms.sendTimeout"    // ms
	cfgRequestTimeout = "jms.requestTimeout" // ms
	cfgPrefetchAll    = "jms.prefetchPolicy.all"
	cfgUsername       = "jms.username"
	cfgPassword       = "jms.password"
	cfgSASLMechanisms = "amqp.saslMechanisms"
	cfgQueuePrefix    = "jms.queuePrefix"
	cfgTopicPrefix    = "jms.topicPrefix"
	cfgTrustAll       = "transport.trustAll"
	cfgVerifyHost     = "transport.verifyHost"
)

const (
	defaultConnectTimeout = 15 * time.Second // Qpid JMS's default
	defaultSendTimeout    = 10 * time.Second
	defaultRequestTimeout = 10 * time.Second
	defaultPrefetch       = 16
)

type config struct {
	secure     bool
	host, port string
	user, pass string
	anonymous  bool // SASL ANONYMOUS instead of PLAIN
	clientID   string

	connectTimeout time.Duration
	sendTimeout    time.Duration
	requestTimeout time.Duration
	prefetch       int32
	trustAll       bool
	verifyHost     bool
	// queuePrefix and topicPrefix are Qpid JMS's: prepended to the name of
	// a queue (topic) destination that does not start with them already.
	queuePrefix, topicPrefix string
	failover                 failoverConfig
}

// Ditto's target address prefixes: a JMS topic or queue destination.
const (
	addrTopic = "topic://"
	addrQueue = "queue://"
)

// node is the AMQP node a target address sends to, as Ditto's JMS client
// names it: "topic://x" is the topic x and "queue://x" the queue x, every
// occurrence of the prefix removed as Ditto does; any other address is a
// queue of that name. The jms.queuePrefix or jms.topicPrefix option is then
// prepended unless the name starts with it.
func (c config) node(address string) string {
	name, prefix := address, c.queuePrefix
	switch {
	case strings.HasPrefix(address, addrTopic):
		name, prefix = strings.ReplaceAll(address, addrTopic, ""), c.topicPrefix
	case strings.HasPrefix(address, addrQueue):
		name = strings.ReplaceAll(address, addrQueue, "")
	}
	if prefix != "" && !strings.HasPrefix(name, prefix) {
		return prefix + name
	}
	return name
}

func (c config) addr() string { return client.Endpoint{Host: c.host, Port: c.port}.HostPort() }

// parseConfig reads URI and specificConfig; errors never carry the password.
func parseConfig(conn *model.Connection) (config, error) {
	ep, err := client.ParseEndpoint(conn)
	if err != nil {
		return config{}, err
	}
	cfg := config{
		host: ep.Host, port: ep.Port,
		connectTimeout: defaultConnectTimeout,
		sendTimeout:    defaultSendTimeout,
		requestTimeout: defaultRequestTimeout,
		prefetch:       defaultPrefetch,
		verifyHost:     true,
	}
	switch ep.Scheme {
	case "amqp":
	case "amqps":
		cfg.secure = true
	default:
		return config{}, fmt.Errorf("%w: the URI scheme %q is not valid for amqp-10", client.ErrConfig, ep.Scheme)
	}
	if cfg.host == "" || cfg.port == "" {
		return config{}, fmt.Errorf("%w: the connection URI needs a host and a port", client.ErrConfig)
	}
	var hasLogin bool
	cfg.user, cfg.pass, hasLogin = client.UserInfo(conn)
	sc := conn.SpecificConfig
	if u, ok := sc[cfgUsername]; ok {
		cfg.user, cfg.pass, hasLogin = u, sc[cfgPassword], true
	}
	cfg.anonymous = !hasLogin
	if mechs := sc[cfgSASLMechanisms]; mechs != "" {
		// The first mechanism we support wins, as in Qpid JMS's ordered list.
		chosen := false
		for _, m := range strings.Split(mechs, ",") {
			switch strings.ToUpper(strings.TrimSpace(m)) {
			case "PLAIN":
				cfg.anonymous, chosen = false, true
			case "ANONYMOUS":
				cfg.anonymous, chosen = true, true
			default:
				continue
			}
			break
		}
		if !chosen {
			return config{}, fmt.Errorf("%w: amqp.saslMechanisms %q has neither PLAIN nor ANONYMOUS", client.ErrConfig, mechs)
		}
	}
	if cr := conn.Credentials; cr != nil && cr.Type == "hmac" {
		if err := hmacLogin(cr, &cfg, time.Now()); err != nil {
			return config{}, err
		}
		hasLogin = true
	}
	if hasLogin && cfg.user == "" && !cfg.anonymous {
		return config{}, fmt.Errorf("%w: SASL PLAIN needs a user name", client.ErrConfig)
	}
	if cfg.failover, err = parseFailover(conn); err != nil {
		return config{}, err
	}
	cfg.clientID = sc[cfgClientID]
	cfg.queuePrefix, cfg.topicPrefix = sc[cfgQueuePrefix], sc[cfgTopicPrefix]
	for key, dst := range map[string]*time.Duration{
		cfgConnectTimeout: &cfg.connectTimeout, cfgSendTimeout: &cfg.sendTimeout, cfgRequestTimeout: &cfg.requestTimeout,
	} {
		if err := millisOption(sc, key, 1, dst); err != nil {
			return config{}, err
		}
	}
	if v, ok := sc[cfgPrefetchAll]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 32)
		if err != nil || n < 0 {
			return config{}, fmt.Errorf("%w: %s %q is not a number >= 0", client.ErrConfig, cfgPrefetchAll, v)
		}
		cfg.prefetch = max(int32(n), 1) // 0 means "pull" in JMS; one credit is the closest
	}
	for key, dst := range map[string]*bool{cfgTrustAll: &cfg.trustAll, cfgVerifyHost: &cfg.verifyHost} {
		if err := boolOption(sc, key, dst); err != nil {
			return config{}, err
		}
	}
	return cfg, nil
}

// tlsConfig is env's TLS configuration adjusted by transport.* options.
func (c config) tlsConfig(base *tls.Config) *tls.Config {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if base != nil {
		cfg = base.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = c.host
	}
	switch {
	case c.trustAll:
		cfg.InsecureSkipVerify = true //nolint:gosec // transport.trustAll asks for it
	case !c.verifyHost && !cfg.InsecureSkipVerify:
		// Verify the chain but not the host name: Go has no switch for
		// that, so verification moves into VerifyConnection.
		roots := cfg.RootCAs
		cfg.InsecureSkipVerify = true //nolint:gosec // replaced by VerifyConnection below
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("amqp10: the server sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, ic := range cs.PeerCertificates[1:] {
				inter.AddCert(ic)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter})
			return err
		}
	}
	return cfg
}

// millisOption sets *dst from sc[key] when the key is present: a whole
// number of milliseconds, least or more.
func millisOption(sc map[string]string, key string, least int64, dst *time.Duration) error {
	v, ok := sc[key]
	if !ok {
		return nil
	}
	ms, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil || ms < least {
		return fmt.Errorf("%w: %s %q is not a number of milliseconds >= %d", client.ErrConfig, key, v, least)
	}
	*dst = time.Duration(ms) * time.Millisecond
	return nil
}

// boolOption sets *dst from sc[key] when the key is present: true or false.
func boolOption(sc map[string]string, key string, dst *bool) error {
	v, ok := sc[key]
	if !ok {
		return nil
	}
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return fmt.Errorf("%w: %s %q is not true or false", client.ErrConfig, key, v)
	}
	*dst = b
	return nil
}
