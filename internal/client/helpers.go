package client

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
)

// ErrConfig: the connection's configuration cannot be used by the client
// (bad PEM, unsupported scheme…); the grain answers 504 with its text.
var ErrConfig = errors.New("client: invalid configuration")

// Endpoint is the connection URI split for dialing.
type Endpoint struct {
	Scheme string // tcp, ssl, amqp, amqps, http, https…
	Host   string // host name or address, without brackets
	Port   string
	Path   string
}

// HostPort is host:port for dialing.
func (e Endpoint) HostPort() string {
	if strings.Contains(e.Host, ":") {
		return "[" + e.Host + "]:" + e.Port
	}
	return e.Host + ":" + e.Port
}

// Secure reports whether the scheme asks for TLS.
func (e Endpoint) Secure() bool {
	switch e.Scheme {
	case "ssl", "amqps", "https", "tls", "mqtts", "wss":
		return true
	}
	return false
}

// ParseEndpoint reads the URI of c (user-info is left out; see UserInfo).
func ParseEndpoint(c *model.Connection) (Endpoint, error) {
	u, err := url.Parse(c.URI)
	if err != nil || u.Host == "" {
		return Endpoint{}, fmt.Errorf("%w: connection uri cannot be parsed", ErrConfig)
	}
	return Endpoint{Scheme: strings.ToLower(u.Scheme), Host: u.Hostname(), Port: u.Port(), Path: u.Path}, nil
}

// UserInfo returns username and password of the URI's user-info, split at the
// first ':' as Ditto does; ok is false when the URI carries none.
func UserInfo(c *model.Connection) (user, pass string, ok bool) {
	u, err := url.Parse(c.URI)
	if err != nil || u.User == nil {
		return "", "", false
	}
	p, has := u.User.Password()
	if !has {
		return "", "", false
	}
	return u.User.Username(), p, true
}

// TLSConfig builds the TLS configuration of c for a secure scheme: trusted
// certificates from ca (else the system pool), no verification when
// validateCertificates is false, a client certificate from client-cert
// credentials. It returns nil for insecure schemes.
func TLSConfig(c *model.Connection) (*tls.Config, error) {
	ep, err := ParseEndpoint(c)
	if err != nil {
		return nil, err
	}
	if !ep.Secure() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: ep.Host}
	if strings.TrimSpace(c.CA) != "" {
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM([]byte(c.CA)) {
			return nil, fmt.Errorf("%w: ca holds no PEM certificate", ErrConfig)
		}
		cfg.RootCAs = pool
	}
	if !c.ValidateCertificates {
		cfg.InsecureSkipVerify = true //nolint:gosec // the operator asked for it (validateCertificates=false)
	}
	if cr := c.Credentials; cr != nil && cr.Type == "client-cert" && cr.Cert != nil && cr.Key != nil {
		cert, err := tls.X509KeyPair([]byte(*cr.Cert), []byte(*cr.Key))
		if err != nil {
			// the error text of crypto/tls never contains key material
			return nil, fmt.Errorf("%w: client certificate: %v", ErrConfig, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// Backoff is the reconnect schedule: Min before the first retry, doubling up
// to Max, each delay spread by ±Jitter (a fraction).
type Backoff struct {
	Min    time.Duration
	Max    time.Duration
	Jitter float64
}

// DefaultBackoff is Ditto's schedule (5 s … 60 min).
var DefaultBackoff = Backoff{Min: 5 * time.Second, Max: 60 * time.Minute, Jitter: 0.2}

// WithDefaults fills zero fields from DefaultBackoff.
func (b Backoff) WithDefaults() Backoff {
	if b.Min <= 0 {
		b.Min = DefaultBackoff.Min
	}
	if b.Max < b.Min {
		b.Max = max(DefaultBackoff.Max, b.Min)
	}
	if b.Jitter <= 0 || b.Jitter >= 1 {
		b.Jitter = DefaultBackoff.Jitter
	}
	return b
}

// Delay is the wait before retry number attempt (0 = the first retry).
func (b Backoff) Delay(attempt int) time.Duration {
	b = b.WithDefaults()
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	spread := 1 + b.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * spread)
}

// Status details Ditto's resources report.
const (
	DetailsConnected       = "CONNECTED"
	DetailsConsumerStarted = "Consumer started."
	DetailsProducerStarted = "Producer started."
	// DetailsProducerOnDemand is the status (unknown) of an open target
	// whose address holds placeholders.
	DetailsProducerOnDemand = "Producers for targets with placeholders are started on-demand."
)

// ClientEntry is the client resource of a connected client.
func ClientEntry(since time.Time) ResourceStatus {
	return ResourceStatus{Type: "client", Status: StatusOpen, RecoveryStatus: RecoverySucceeded, Details: DetailsConnected, Since: since}
}

// SourceEntries are open source entries for c: one per source and address,
// or, with perSource, one per source (addresses joined by ";", as for MQTT
// where one consumer subscribes to all addresses of its source); each
// repeated consumerCount times.
func SourceEntries(c *model.Connection, since time.Time, perSource bool) []ResourceStatus {
	var out []ResourceStatus
	add := func(address string) {
		out = append(out, ResourceStatus{Type: "source", Address: address, Status: StatusOpen,
			Details: DetailsConsumerStarted, Since: since})
	}
	if !perSource {
		EachConsumer(c, func(_ model.Source, address string) { add(address) })
		return out
	}
	for _, s := range c.Sources {
		for range max(s.ConsumerCount, 1) {
			add(strings.Join(s.Addresses, ";"))
		}
	}
	return out
}

// EachConsumer calls f for every consumer of c that consumes one address:
// per source consumerCount copies, each of every address, in the order of
// the source entries.
func EachConsumer(c *model.Connection, f func(s model.Source, address string)) {
	for _, s := range c.Sources {
		for range max(s.ConsumerCount, 1) {
			for _, a := range s.Addresses {
				f(s, a)
			}
		}
	}
}

// TargetEntries are open target entries for c, one per target.
func TargetEntries(c *model.Connection, since time.Time) []ResourceStatus {
	out := make([]ResourceStatus, 0, len(c.Targets))
	for _, t := range c.Targets {
		e := ResourceStatus{Type: "target", Address: t.Address, Status: StatusOpen, Details: DetailsProducerStarted, Since: since}
		if template.HasPlaceholders(t.Address) {
			e.Status, e.Details = StatusUnknown, DetailsProducerOnDemand
		}
		out = append(out, e)
	}
	return out
}

// Announcement kinds.
const (
	AnnouncementOpened = "opened"
	AnnouncementClosed = "closed"
)
