package model

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model/rql"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// ValidationConfig holds the service configuration ConnectionValidator reads.
type ValidationConfig struct {
	MaxSources, MaxTargets             int // ditto.connectivity.connection.max-source-number / max-target-number
	MaxSourceMappers, MaxTargetMappers int // ditto.connectivity.mapping.mapper-limits
	AllowedHostnames                   []string
	BlockedHostnames                   []string
	BlockedSubnets                     []string // CIDR
	BlockedHostRegex                   string
	// HMACAlgorithms are the configured hmac-algorithms of http-push (amqp-10 allows only az-sasl).
	HMACAlgorithms []string
	// OAuth2EnforceHTTPS is ditto.connectivity.connection.http-push.oauth2.enforce-https.
	OAuth2EnforceHTTPS bool
	// LookupIP resolves host names for host validation; nil uses the system resolver
	// with a 5 s timeout. Tests inject a fake.
	LookupIP func(host string) ([]net.IP, error)
	// Mappers instantiates the mapping definitions; nil checks only the
	// options each engine cannot start without.
	Mappers MapperFactory
}

// MapperFactory instantiates one mapping definition as Ditto's
// DefaultMessageMapperFactory does while validating a connection.
// Configure answers true when the mapper configured; false with a nil
// error when Ditto leaves the definition out (unknown engine, invalid
// options: only a payloadMapping naming it fails); a non-nil error (a
// *ditto.Error) when Ditto refuses the connection outright. It must be safe
// for concurrent use.
type MapperFactory interface {
	Configure(connectionID, id string, def MappingDefinition) (bool, error)
}

// DefaultValidationConfig returns Ditto's defaults.
func DefaultValidationConfig() ValidationConfig {
	return ValidationConfig{MaxSources: 4, MaxTargets: 4, MaxSourceMappers: 10, MaxTargetMappers: 10,
		AllowedHostnames:   []string{"hono-endpoint"},
		HMACAlgorithms:     []string{"aws4-hmac-sha256", "az-monitor-2016-04-01", "az-sasl"},
		OAuth2EnforceHTTPS: true}
}

// Validate runs ConnectionValidator.validate's checks in Ditto's order and
// returns the first failure as *ditto.Error. The rules common to every
// connection type run here, asking protocols what the type allows (its
// host, an SSH tunnel, HMAC and OAuth credentials); the type's own rules
// come last. protocols nil: no type is known.
func Validate(c *Connection, cfg ValidationConfig, protocols Protocols) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = ditto.ConfigurationInvalid(fmt.Sprintf("Validation failed: %v", r))
		}
	}()
	v := &validator{c: c, cfg: cfg}
	if protocols != nil {
		v.proto, v.known = protocols.Protocol(c.ConnectionType)
	}
	steps := []func() error{
		v.counts, v.addresses, v.mapperLimits, v.acks, v.certificates,
		func() error {
			if v.proto.NoHost {
				return nil
			}
			_, _, _, _, host, _, _ := c.URIParts()
			return v.validateHost(host)
		},
		v.sshTunnel, v.credentials, v.responseDiversion, v.protocol,
	}
	for _, s := range steps {
		if err := s(); err != nil {
			return err
		}
	}
	return nil
}

type validator struct {
	c     *Connection
	cfg   ValidationConfig
	proto Protocol // what the table knows of the type; zero when unknown
	known bool
}

func (v *validator) counts() error {
	const msg = "The number of configured sources or targets within a connection exceeded."
	if len(v.c.Sources) > v.cfg.MaxSources {
		return ditto.ConfigurationInvalidDesc(msg, fmt.Sprintf(
			"The number of configured sources for connection: %s is above the limit of %d.", v.c.ID, v.cfg.MaxSources))
	}
	if len(v.c.Targets) > v.cfg.MaxTargets {
		return ditto.ConfigurationInvalidDesc(msg, fmt.Sprintf(
			"The number of configured targets for connection: %s is above the limit of %d.", v.c.ID, v.cfg.MaxTargets))
	}
	return nil
}

func (v *validator) addresses() error {
	for _, s := range v.c.Sources {
		empty := len(s.Addresses) == 0
		for _, a := range s.Addresses {
			if a == "" {
				empty = true
			}
		}
		if empty {
			return ditto.ConfigurationInvalid(fmt.Sprintf("Source %d of connection <%s>: addresses may not be empty.", s.Index, v.c.ID))
		}
	}
	for _, t := range v.c.Targets {
		if t.Address == "" {
			return ditto.ConfigurationInvalid(fmt.Sprintf("Targets of connection <%s>: addresses may not be empty.", v.c.ID))
		}
		for _, ft := range t.Topics {
			if ft.Filter != "" {
				if err := ValidateFilter(ft.Filter); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// ValidateFilter checks a topic's RQL filter as QueryFilterCriteriaFactory
// does: syntax, then that every property maps to a thing field or one of
// the topic/resource/time/entity/thing/feature placeholders.
func ValidateFilter(filter string) error {
	node, err := rql.Parse(filter)
	if err != nil {
		return ditto.RQLInvalid(err.Error())
	}
	return checkRQLFields(node)
}

var simpleThingFields = map[string]bool{"thingId": true, "_namespace": true, "policyId": true, "_revision": true,
	"_created": true, "_modified": true, "definition": true, "_metadata": true}

// filterPlaceholders are the placeholders a topic's RQL filter may compare.
var filterPlaceholders = template.Set{template.Topic, template.Resource, template.Time, template.Entity,
	template.Thing, template.Feature}

func checkRQLFields(n rql.Node) error {
	check := func(prop string, exists bool) error {
		p := strings.TrimPrefix(prop, "/")
		if strings.HasPrefix(p, "attributes/") || strings.HasPrefix(p, "_metadata/") || simpleThingFields[p] {
			return nil
		}
		if parts := strings.Split(p, "/"); parts[0] == "features" && len(parts) >= 2 && parts[1] != "" {
			switch {
			case len(parts) >= 4 && (parts[2] == "properties" || parts[2] == "desiredProperties"):
				return nil
			case len(parts) == 3 && parts[2] == "definition":
				return nil
			case exists && (len(parts) == 2 || len(parts) == 3 && (parts[2] == "properties" || parts[2] == "desiredProperties")):
				return nil
			}
		}
		if prefix, name, ok := strings.Cut(p, ":"); ok && filterPlaceholders.Supports(prefix, name) {
			return nil
		}
		return ditto.RQLInvalid("Unknown property name: " + p)
	}
	switch x := n.(type) {
	case *rql.Comparison:
		return check(x.Property, false)
	case *rql.Multi:
		return check(x.Property, false)
	case *rql.Exists:
		return check(x.Property, true)
	case *rql.Empty:
		return check(x.Property, true)
	case *rql.Logical:
		for _, k := range x.Children {
			if err := checkRQLFields(k); err != nil {
				return err
			}
		}
	}
	return nil
}

func (v *validator) mapperLimits() error {
	const msg = "The number of configured payload mappings exceeded the limit."
	for _, s := range v.c.Sources {
		if len(s.PayloadMapping) > v.cfg.MaxSourceMappers {
			return ditto.ConfigurationInvalidDesc(msg, fmt.Sprintf(
				"The number of configured payload mappings for the source with address %s is above the limit of %d.",
				strings.Join(s.Addresses, ","), v.cfg.MaxSourceMappers))
		}
	}
	for _, t := range v.c.Targets {
		if len(t.PayloadMapping) > v.cfg.MaxTargetMappers {
			return ditto.ConfigurationInvalidDesc(msg, fmt.Sprintf(
				"The number of configured payload mappings for the target with address %s is above the limit of %d.",
				t.Address, v.cfg.MaxTargetMappers))
		}
	}
	return nil
}

// resolveAckLabel resolves {{connection:id}}; other placeholders leave the
// label out (Ditto's resolver yields nothing for them).
func (v *validator) resolveAckLabel(l string) (string, bool) {
	return template.ResolveConnectionID(l, v.c.ID)
}

func (v *validator) acks() error {
	prefix := v.c.ID + ":"
	var labels []string
	for _, s := range v.c.Sources {
		for _, l := range s.DeclaredAcks {
			if r, ok := v.resolveAckLabel(l); ok {
				labels = append(labels, r)
			}
		}
	}
	var issued []string
	for _, t := range v.c.Targets {
		if t.IssuedAcknowledgementLabel == "" {
			continue
		}
		if r, ok := v.resolveAckLabel(t.IssuedAcknowledgementLabel); ok && r != "live-response" {
			issued = append(issued, r)
		}
	}
	for _, l := range append(labels, issued...) {
		if !strings.HasPrefix(l, prefix) {
			return ditto.AckLabelInvalid(l, fmt.Sprintf(
				"Declared acknowledgement labels of a connection must have the form %s<alphanumeric-suffix>", prefix))
		}
	}
	if len(dedup(issued)) < len(issued) {
		return ditto.AckLabelNotUnique()
	}
	return nil
}

func badPEM(pointer, format, label string) error {
	return ditto.ConfigurationInvalid(fmt.Sprintf(
		"%s: bad format. Expect PEM-encoded %s data specified by RFC-7468 starting with '-----BEGIN %s-----'",
		pointer, format, label))
}

func parseCertChain(s string) bool {
	rest := []byte(s)
	n := 0
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return false
		}
		n++
	}
	return n > 0
}

func (v *validator) certificates() error {
	cr := v.c.Credentials
	isCert := cr != nil && cr.Type == "client-cert"
	if v.c.CA == "" && !isCert {
		return nil
	}
	if v.c.CA != "" && !parseCertChain(v.c.CA) {
		return badPEM("/ca", "DER", "CERTIFICATE")
	}
	if isCert {
		if cr.Cert != nil && cr.Key != nil {
			if !parseCertChain(*cr.Cert) {
				return badPEM("/credentials/cert", "DER", "CERTIFICATE")
			}
			b, _ := pem.Decode([]byte(*cr.Key))
			if b == nil || b.Type != "PRIVATE KEY" {
				return badPEMKey()
			}
			if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
				return badPEMKey()
			}
		}
	}
	return nil
}

func badPEMKey() error {
	e := badPEM("/credentials/key", "PKCS #8", "PRIVATE KEY").(*ditto.Error)
	e.Description = "Please format your client key as PEM-encoded unencrypted PKCS #8."
	return e
}

// validateHost is DefaultHostValidator.validateHost.
func (v *validator) validateHost(host string) error {
	blocked := v.blockedAddresses()
	if len(blocked) == 0 {
		return nil // nothing blocked: every host is allowed, private ones included
	}
	for _, a := range v.cfg.AllowedHostnames {
		if strings.TrimSpace(a) == host {
			return nil
		}
	}
	if re, err := regexp.Compile("^(?:" + v.cfg.BlockedHostRegex + ")$"); err == nil && re.MatchString(host) {
		return hostBlocked(host, "the host is blocked: the host is blocked.")
	}
	ips, err := v.lookup(strings.Trim(host, "[]"))
	if err != nil {
		reason := fmt.Sprintf("The configured host '%s' is invalid: %s", host, err.Error())
		return hostBlocked(host, fmt.Sprintf("The configured host '%s' is invalid: %s", host, reason))
	}
	for _, ip := range ips {
		if err := v.checkIP(host, ip, blocked); err != nil {
			return err
		}
	}
	return nil
}

// checkIP refuses an address host resolved to that is loopback, site local,
// multicast, the wildcard, a blocked host's or in a blocked subnet.
func (v *validator) checkIP(host string, ip net.IP, blocked []net.IP) error {
	addr := ip.String()
	switch {
	case ip.IsLoopback():
		return hostBlocked(host, "the host is blocked: "+fmt.Sprintf("the hostname resolved to a loopback address (%s).", addr))
	case isSiteLocal(ip):
		return hostBlocked(host, "the host is blocked: "+fmt.Sprintf("the hostname resolved to a site local address (%s).", addr))
	case ip.IsMulticast():
		return hostBlocked(host, "the host is blocked: "+fmt.Sprintf("the hostname resolved to a multicast address (%s).", addr))
	case ip.IsUnspecified():
		return hostBlocked(host, "the host is blocked: "+fmt.Sprintf("the hostname resolved to a wildcard address (%s).", addr))
	}
	for _, b := range blocked {
		if b.Equal(ip) {
			return hostBlocked(host, "the host is blocked: "+fmt.Sprintf("the hostname resolved to a blocked address (%s).", addr))
		}
	}
	for _, s := range v.cfg.BlockedSubnets {
		s = strings.TrimSpace(s)
		if _, n, err := net.ParseCIDR(s); err == nil && n.Contains(ip) {
			return hostBlocked(host, "the host is blocked: "+fmt.Sprintf(
				"the hostname resolved to address %s which resides in blocked subnet %s.", addr, s))
		}
	}
	return nil
}

// isSiteLocal is InetAddress.isSiteLocalAddress: 10/8, 172.16/12, 192.168/16, fec0::/10.
func isSiteLocal(ip net.IP) bool {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4[0] == 10 || ip4[0] == 172 && ip4[1]&0xf0 == 16 || ip4[0] == 192 && ip4[1] == 168
	}
	return len(ip) == net.IPv6len && ip[0] == 0xfe && ip[1]&0xc0 == 0xc0
}

func hostBlocked(host, because string) error {
	return ditto.ConfigurationInvalidDesc(
		fmt.Sprintf("The configured host '%s' may not be used for the connection because %s", host, because),
		"The host is blocked or resolves to a forbidden address. If the host is valid, add it to the allowed hostnames configuration.")
}

func (v *validator) lookup(host string) ([]net.IP, error) {
	if ip := net.ParseIP(host); ip != nil {
		return []net.IP{ip}, nil
	}
	if v.cfg.LookupIP != nil {
		return v.cfg.LookupIP(host)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	ips := make([]net.IP, 0, len(addrs))
	for _, a := range addrs {
		ips = append(ips, a.IP)
	}
	return ips, nil
}

// blockedAddresses resolves blocked-hostnames; unresolvable ones are skipped.
func (v *validator) blockedAddresses() []net.IP {
	var out []net.IP
	for _, h := range v.cfg.BlockedHostnames {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if ips, err := v.lookup(h); err == nil {
			out = append(out, ips...)
		}
	}
	return out
}

func (v *validator) sshTunnel() error {
	t := v.c.SSHTunnel
	if t == nil {
		return nil
	}
	if v.proto.NoSSHTunnel {
		return ditto.ConfigurationInvalidDesc("SSH tunneling not supported.",
			fmt.Sprintf("SSH tunneling is not supported for the connection type <%s>.", v.c.ConnectionType))
	}
	if t.URI == "" {
		return ditto.ConfigurationInvalid("The URI of the ssh server must not be empty.")
	}
	if err := v.sshURI(t.URI); err != "" {
		return ditto.ConfigurationInvalid(fmt.Sprintf("The SSH server URI '%s' is not valid: %s", ditto.MaskUserInfo(t.URI), err))
	}
	switch t.Credentials.Type {
	case "plain":
		if t.Credentials.Username == nil || *t.Credentials.Username == "" {
			return ditto.ConfigurationInvalid("SSH tunnel username must not be empty.")
		}
		if t.Credentials.Password == nil || *t.Credentials.Password == "" {
			return ditto.ConfigurationInvalid("SSH tunnel password must not be empty.")
		}
	case "public-key":
		if b, _ := pem.Decode([]byte(t.Credentials.PrivateKey)); b == nil || b.Type != "PRIVATE KEY" {
			e := badPEM("/credentials/privateKey", "PKCS #8", "PRIVATE KEY").(*ditto.Error)
			e.Description = "Please format your client key as PEM-encoded unencrypted PKCS #8."
			return e
		}
		if b, _ := pem.Decode([]byte(t.Credentials.PublicKey)); b == nil || b.Type != "PUBLIC KEY" {
			e := badPEM("/credentials/publicKey", "PKCS #8", "PUBLIC KEY").(*ditto.Error)
			e.Description = "Please format your public key as PEM-encoded unencrypted PKCS #8."
			return e
		}
	default:
		return ditto.ConfigurationInvalid(fmt.Sprintf("Credentials type %s cannot be used for an ssh tunnel.", t.Credentials.Type))
	}
	if t.ValidateHost && len(t.KnownHosts) == 0 {
		return ditto.ConfigurationInvalid("Specify at least one fingerprint if host validationis enabled.")
	}
	return nil
}

// sshURI returns the cause text Ditto appends, or "".
func (v *validator) sshURI(s string) string {
	i := strings.Index(s, "://")
	if i <= 0 {
		return "Expected scheme-specific part at index " + strconv.Itoa(strings.IndexByte(s, ':')+1) + ": " + ditto.MaskUserInfo(s)
	}
	u, ok := parseConnURI(s)
	host := ""
	if ok {
		host = u.Host
	} else if pu, err := url.Parse(s); err == nil {
		host = pu.Hostname()
	}
	if s[:i] != "ssh" {
		return "The scheme for the ssh endpoint must be 'ssh'."
	}
	if err := v.validateHost(host); err != nil {
		return err.(*ditto.Error).Message
	}
	return ""
}

var scopesPattern = regexp.MustCompile(`^[\x21\x23-\x5B\x5D-\x7E]+( [\x21\x23-\x5B\x5D-\x7E]+)*$`)

func (v *validator) credentials() error {
	cr := v.c.Credentials
	if cr == nil {
		return nil
	}
	switch cr.Type {
	case "hmac":
		if v.proto.HMACAlgorithms == nil {
			return ditto.ConfigurationInvalidDesc("HMAC credentials are not supported for the connection type.",
				"Only HTTP and AMQP 1.0 connections support HMAC credentials.")
		}
		if u, ok := parseConnURI(v.c.URI); ok && u.HasUser && u.UserInfo != "" {
			return ditto.ConfigurationInvalidDesc("There are conflicting authentication mechanisms.",
				"HMAC credentials and URI userinfo may not be present at the same time.")
		}
		algos := v.proto.HMACAlgorithms(v.cfg)
		for _, a := range algos {
			if a == cr.Algorithm {
				return nil
			}
		}
		return ditto.ConfigurationInvalidDesc("Unsupported HMAC algorithm: "+cr.Algorithm,
			"Supported algorithms: "+strings.Join(algos, ", "))
	case "oauth-client-credentials", "oauth-password":
		if !v.proto.OAuth {
			return ditto.ConfigurationInvalidDesc("OAuth client credentials are only supported for HTTP connection type.",
				"Only HTTP connections support OAuth client credentials.")
		}
		te := deref(cr.TokenEndpoint)
		u, err := url.Parse(te)
		if err != nil || u.Scheme == "" || (u.Scheme != "http" && u.Scheme != "https") {
			cause := "no protocol: " + te
			if err == nil && u.Scheme != "" {
				cause = "unknown protocol: " + u.Scheme
			}
			return ditto.ConfigurationInvalidDesc(fmt.Sprintf("Invalid token endpoint '%s' provided: %s", te, cause),
				"Provide a valid URL as token endpoint.")
		}
		if err := v.validateHost(u.Hostname()); err != nil {
			return err
		}
		if scopes := deref(cr.RequestedScopes); !scopesPattern.MatchString(scopes) {
			e := ditto.ConfigurationInvalidDesc("Invalid format of requested scopes: "+scopes,
				"Provide scopes as space separated list (RFC6749 section 3.3).")
			e.Href = "https://datatracker.ietf.org/doc/html/rfc6749#section-3.3"
			return e
		}
	}
	return nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func boolConfig(c *Connection, key string) bool {
	return strings.EqualFold(c.SpecificConfig[key], "true")
}

func (v *validator) responseDiversion() error {
	c := v.c
	if boolConfig(c, "is-diversion-source") {
		for _, s := range c.Sources {
			types, ok := s.HeaderMapping["divert-expected-response-types"]
			if !ok || strings.TrimSpace(types) == "" {
				continue
			}
			for _, t := range strings.Split(types, ",") {
				t = strings.TrimSpace(t)
				if t != "" && t != "response" && t != "error" && t != "nack" {
					return ditto.ConfigurationInvalid("Invalid response type in <divert-expected-response-types>: " +
						t + ". Valid types are: response, error, nack")
				}
			}
		}
	}
	for _, s := range c.Sources {
		target, ok := s.HeaderMapping["divert-response-to-connection"]
		if !ok {
			continue
		}
		switch {
		case strings.TrimSpace(target) == "":
			return ditto.ConfigurationInvalid("The divert-response-to-connection in headerMapping must not be empty")
		case !ValidID(target):
			return ditto.ConfigurationInvalid("Invalid target connection ID format in divert-response-to-connection: " + target)
		case target == c.ID:
			return ditto.ConfigurationInvalid("It is pointless to divert responses to the originating connection, it will receive the responses by default. Remove the divert-response-to-connection from the headerMapping of connection: " + c.ID)
		}
	}
	if boolConfig(c, "is-diversion-target") {
		if ac := strings.TrimSpace(c.SpecificConfig["authorized-connections-as-sources"]); ac != "" {
			for _, id := range strings.Split(ac, ",") {
				if id = strings.TrimSpace(id); !ValidID(id) {
					return ditto.ConnectionIDInvalid(id)
				}
			}
		}
		for _, t := range c.Targets {
			if len(t.Topics) > 0 {
				return ditto.ConfigurationInvalid(fmt.Sprintf("Connection %s has topics configured in target %s but isDiversionTarget is true. When isDiversionTarget is true, no topics must be configured in targets.",
					c.ID, targetString(t)))
			}
		}
	}
	return nil
}

// targetString approximates ImmutableTarget.toString.
func targetString(t Target) string {
	topics := make([]string, 0, len(t.Topics))
	for _, ft := range t.Topics {
		topics = append(topics, ft.String())
	}
	qos := "null"
	if t.QoS != nil {
		qos = strconv.Itoa(*t.QoS)
	}
	return fmt.Sprintf("ImmutableTarget [address=%s, topics=%s, qos=%s, authorizationContext=%v, originalAddress=%s, issuedAcknowledgementLabel=%s, headerMapping=%v, payloadMapping=%v]",
		t.Address, JavaList(topics), qos, t.AuthorizationContext, t.Address, t.IssuedAcknowledgementLabel, t.HeaderMapping, t.PayloadMapping)
}
