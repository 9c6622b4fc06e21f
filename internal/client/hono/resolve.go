package hono

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
)

// The address aliases of Hono connections (Ditto's HonoAddressAlias).
const (
	aliasTelemetry       = "telemetry"
	aliasEvent           = "event"
	aliasCommand         = "command"
	aliasCommandResponse = "command_response"
)

// specificConfig keys: the tenant is Hono's; the others are Kafka's, which
// Resolve sets from the service's settings.
const (
	cfgTenantID         = "honoTenantId"
	cfgSASLMechanism    = "saslMechanism"
	cfgBootstrapServers = "bootstrapServers"
	cfgGroupID          = "groupId"
)

// Header mapping entries Ditto's Hono factory adds where absent.
const (
	hCorrelationID    = "correlation-id"
	hDeviceID         = "device_id"
	hSubject          = "subject"
	hStatus           = "status"
	hResponseRequired = "response-required"

	vCorrelationID    = "{{ header:correlation-id }}"
	vDeviceID         = "{{ thing:id }}"
	vStatus           = "{{ header:status }}"
	vResponseRequired = "{{ header:response-required }}"
	vTargetSubject    = "{{ header:subject | fn:default(topic:action-subject) }}"
	vReplySubject     = "{{ header:subject | fn:default(topic:action-subject) | fn:default(topic:criterion) }}-response"
)

// errNotConfigured: the service has no Hono settings.
var errNotConfigured = errors.New("this service has no Hono configuration (HONO_CONNECTION_BOOTSTRAP_SERVERS is not set)")

// Resolve is the Kafka connection a Hono connection c runs as, built as
// Ditto's Hono connection factory builds it: the URI is the base URI with
// the configured login; validateCertificates and ca are the service's;
// saslMechanism, bootstrapServers and groupId (c's own, else its id) join
// c's specificConfig; address aliases become Hono's topics of the tenant
// (specificConfig honoTenantId, else the connection id); the header
// mappings Hono needs are added where c does not define them. The type
// stays hono. c is not modified.
//
// Resolving a resolved connection changes nothing, so callers need not
// know whether it happened already.
func Resolve(cfg Config, c *model.Connection) (*model.Connection, error) {
	if c.ConnectionType != model.TypeHono {
		return nil, fmt.Errorf("expected a connection of type <%s> but it was <%s>", model.TypeHono, c.ConnectionType)
	}
	if !cfg.Configured() {
		return nil, errNotConfigured
	}
	mech, ok := saslMechanism(cfg.SASLMechanism)
	if !ok {
		return nil, fmt.Errorf("the Hono SASL mechanism %q is not PLAIN, SCRAM_SHA_256 or SCRAM_SHA_512", cfg.SASLMechanism)
	}
	base, err := url.Parse(cfg.BaseURI)
	if err != nil {
		return nil, errors.New("the Hono base URI cannot be parsed")
	}
	tenant, ok := c.SpecificConfig[cfgTenantID]
	if !ok {
		tenant = c.ID
	}
	r := resolver{tenant: tenant}

	out := c.Clone()
	base.User = nil
	if cfg.Username != "" {
		base.User = url.UserPassword(cfg.Username, cfg.Password)
	}
	out.URI = base.String()
	out.ValidateCertificates = cfg.ValidateCertificates
	out.CA = cfg.CA
	if out.SpecificConfig == nil {
		out.SpecificConfig = map[string]string{}
	}
	if _, ok := out.SpecificConfig[cfgGroupID]; !ok {
		out.SpecificConfig[cfgGroupID] = c.ID
	}
	out.SpecificConfig[cfgSASLMechanism] = mech
	out.SpecificConfig[cfgBootstrapServers] = strings.Join(cfg.servers(), ",")

	for i := range out.Sources {
		r.source(&out.Sources[i])
	}
	for i := range out.Targets {
		t := &out.Targets[i]
		t.Address = r.target(t.Address)
		t.HeaderMapping = putIfAbsent(t.HeaderMapping, hDeviceID, vDeviceID, hCorrelationID, vCorrelationID, hSubject, vTargetSubject)
		if slices.ContainsFunc(t.Topics, func(f model.FilteredTopic) bool {
			return f.Topic == model.TopicLiveMessages || f.Topic == model.TopicLiveCommands
		}) {
			t.HeaderMapping = putIfAbsent(t.HeaderMapping, hResponseRequired, vResponseRequired)
		}
	}
	return out, nil
}

// resolver turns the aliases of one tenant into topics.
type resolver struct{ tenant string }

func isAlias(a string) bool {
	return a == aliasTelemetry || a == aliasEvent || a == aliasCommand || a == aliasCommandResponse
}

// topic is Hono's Kafka topic of alias for the tenant.
func (r resolver) topic(alias string) string { return "hono." + alias + "." + r.tenant }

// target is a target address: an alias becomes its topic keyed by the thing
// id (the Kafka target form topic/key); anything else is kept.
func (r resolver) target(a string) string {
	if !isAlias(a) {
		return a
	}
	return r.topic(a) + "/{{thing:id}}"
}

// has reports whether addresses name alias or its topic (the latter when
// resolving again).
func (r resolver) has(addresses []string, alias string) bool {
	return slices.Contains(addresses, alias) || slices.Contains(addresses, r.topic(alias))
}

func (r resolver) source(s *model.Source) {
	// Reply targets serve device messages only: sources of command
	// responses lose theirs, as in Ditto.
	if r.has(s.Addresses, aliasTelemetry) || r.has(s.Addresses, aliasEvent) {
		if rt := s.ReplyTarget; rt != nil {
			rt.HeaderMapping = putIfAbsent(rt.HeaderMapping, hCorrelationID, vCorrelationID)
			if rt.Address == aliasCommand {
				rt.HeaderMapping = putIfAbsent(rt.HeaderMapping, hDeviceID, vDeviceID, hSubject, vReplySubject)
			}
			rt.Address = r.target(rt.Address)
		}
	} else {
		s.ReplyTarget = nil
	}
	if r.has(s.Addresses, aliasCommandResponse) {
		s.HeaderMapping = putIfAbsent(s.HeaderMapping, hCorrelationID, vCorrelationID, hStatus, vStatus)
	}
	var addrs []string
	for _, a := range s.Addresses {
		if isAlias(a) {
			a = r.topic(a)
		}
		if !slices.Contains(addrs, a) {
			addrs = append(addrs, a)
		}
	}
	s.Addresses = addrs
}

// putIfAbsent sets each key, value pair of kv that m lacks; m may be nil.
func putIfAbsent(m map[string]string, kv ...string) map[string]string {
	if m == nil {
		m = make(map[string]string, len(kv)/2)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if _, ok := m[kv[i]]; !ok {
			m[kv[i]] = kv[i+1]
		}
	}
	return m
}
