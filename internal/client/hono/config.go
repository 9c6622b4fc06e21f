package hono

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// Config is the service-wide Hono settings, Ditto's
// ditto.connectivity.hono: the Kafka cluster every Hono connection of this
// service reaches and how it logs in. Its fields never vary per connection.
type Config struct {
	// BaseURI is base-uri (HONO_CONNECTION_URI): its scheme (tcp or ssl)
	// decides TLS; host and port are the fallback seed.
	BaseURI string
	// ValidateCertificates is validate-certificates
	// (HONO_CONNECTION_VALIDATE_CERTIFICATE).
	ValidateCertificates bool
	// CA is ca (HONO_CONNECTION_CA): the PEM certificates trusted, as a
	// connection's own ca is (blank: the system pool).
	CA string
	// SASLMechanism is sasl-mechanism (HONO_CONNECTION_SASL_MECHANISM):
	// PLAIN, SCRAM_SHA_256 or SCRAM_SHA_512 (Ditto's enum names).
	SASLMechanism string
	// BootstrapServers is bootstrap-servers
	// (HONO_CONNECTION_BOOTSTRAP_SERVERS), comma-separated host:port.
	// Empty: Hono is not configured and hono connections are refused.
	BootstrapServers string
	// Username and Password are username and password
	// (HONO_CONNECTION_HONO_USERNAME, HONO_CONNECTION_HONO_PASSWORD): the
	// SASL login; no login when Username is empty.
	Username string
	Password string
}

// Defaults of the settings Ditto gives a default this service keeps.
const (
	DefaultBaseURI       = "tcp://localhost:9092"
	DefaultSASLMechanism = "PLAIN"
)

// DefaultConfig is Hono not configured: no bootstrap servers.
func DefaultConfig() Config {
	return Config{BaseURI: DefaultBaseURI, SASLMechanism: DefaultSASLMechanism}
}

// Configured reports whether hono connections can run: bootstrap servers
// are set.
func (c Config) Configured() bool { return len(c.servers()) > 0 }

// Validate checks the settings once at start-up, naming the variable at
// fault; it never prints the password. An unconfigured Config is valid.
func (c Config) Validate() error {
	if !c.Configured() {
		return nil
	}
	var errs []error
	if u, err := url.Parse(c.BaseURI); err != nil || (u.Scheme != "tcp" && u.Scheme != "ssl") || u.Host == "" {
		errs = append(errs, fmt.Errorf("HONO_CONNECTION_URI: %q is not a tcp:// or ssl:// URI with a host", c.BaseURI))
	}
	if _, ok := saslMechanism(c.SASLMechanism); !ok {
		errs = append(errs, fmt.Errorf("HONO_CONNECTION_SASL_MECHANISM: %q is not one of PLAIN, SCRAM_SHA_256, SCRAM_SHA_512", c.SASLMechanism))
	}
	if strings.TrimSpace(c.CA) != "" && !x509.NewCertPool().AppendCertsFromPEM([]byte(c.CA)) {
		errs = append(errs, errors.New("HONO_CONNECTION_CA: holds no PEM certificate"))
	}
	for _, s := range c.servers() {
		if _, port, err := net.SplitHostPort(s); err != nil || port == "" {
			errs = append(errs, fmt.Errorf("HONO_CONNECTION_BOOTSTRAP_SERVERS: %q is not host:port", s))
		}
	}
	return errors.Join(errs...)
}

// servers are the bootstrap servers trimmed, blanks and repeats dropped
// (Ditto keeps them in a set, in order).
func (c Config) servers() []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range strings.Split(c.BootstrapServers, ",") {
		if s = strings.TrimSpace(s); s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// saslMechanism is the specificConfig value Ditto writes for a configured
// mechanism (its enum's string form): plain, scram-sha-256, scram-sha-512.
// Ditto's enum names are accepted, and for convenience the Kafka spelling
// with hyphens, in any case.
func saslMechanism(configured string) (string, bool) {
	switch strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(configured), "-", "_")) {
	case "PLAIN":
		return "plain", true
	case "SCRAM_SHA_256":
		return "scram-sha-256", true
	case "SCRAM_SHA_512":
		return "scram-sha-512", true
	}
	return "", false
}
