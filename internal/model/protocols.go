package model

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Protocols is the table of what Validate knows of each connection type:
// what the shared rules let the type have, and the type's own rules, which
// run after every shared rule has passed (Ditto's protocol-specific
// validator runs last as well). The table lives outside this package,
// beside each protocol's client (internal/client/<type>), so that what a
// type accepts is read and changed in one folder; the model only knows the
// rules every type shares.
//
// Contract: Protocol returns the entry of connectionType and true, or false
// when the table does not know the type; Validate then treats the type as
// allowing nothing beyond the shared rules and fails at the last step as
// Ditto does for a type without a validator (an internal error naming the
// type). The table is read-only once built and safe for concurrent use.
type Protocols interface {
	Protocol(connectionType string) (Protocol, bool)
}

// Protocol is one connection type's entry in the Protocols table. The zero
// value allows a URI host (checked against the blocked hosts), an SSH
// tunnel, and neither HMAC nor OAuth credentials, and has no rules.
type Protocol struct {
	// Rules are the type's own rules; nil: the type is refused as unknown.
	Rules ProtocolRules
	// NoHost: the connection's URI is not checked against the blocked
	// hosts (Hono's endpoint comes from the service's configuration).
	NoHost bool
	// NoSSHTunnel: an SSH tunnel is refused.
	NoSSHTunnel bool
	// HMACAlgorithms are the HMAC algorithms the type signs with under the
	// service's settings; nil: HMAC credentials are refused.
	HMACAlgorithms func(ValidationConfig) []string
	// OAuth: OAuth client-credentials and password credentials are allowed.
	OAuth bool
}

// ProtocolRules checks what one connection type's own validator checks: its
// URI schemes, its sources' and targets' addresses, QoS and placeholders,
// its payload mappings (Check.PayloadMappings, at the point the type's
// validator checks them, which fixes which error Ditto reports first) and
// its specificConfig. It returns the first failure as *ditto.Error and nil
// when the connection passes. It must not modify k.Conn and may run
// concurrently for different connections.
type ProtocolRules func(k *Check) error

// Check is what a type's rules are given: the connection under validation,
// the service's validation settings, and the checks several types share,
// each answering with the error Ditto gives.
type Check struct {
	Conn   *Connection
	Config ValidationConfig
}

// URIScheme is AbstractProtocolValidator.validateUriScheme: the URI's
// scheme must be one of accepted, and trusted certificates need one of
// secure; protocol names the type in the message.
func (k *Check) URIScheme(accepted, secure []string, protocol string) error {
	s := ""
	if u, ok := parseConnURI(k.Conn.URI); ok {
		s = u.Scheme
	}
	if !slices.Contains(accepted, s) {
		return ditto.URIInvalidDesc(fmt.Sprintf("The URI scheme '%s' is not valid for %s.", javaNull(s), protocol),
			"Accepted URI schemes are: "+strings.Join(accepted, ", "))
	}
	if !slices.Contains(secure, s) && k.Conn.CA != "" {
		return ditto.URIInvalidDesc("The connection has trusted certificates configured but uses an insecure protocol.",
			fmt.Sprintf("Either switch to a secure protocol (%s) or remove the trusted certificates.", JavaList(secure)))
	}
	return nil
}

// javaNull prints an absent scheme as Java's MessageFormat prints null.
func javaNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

// SourceDesc names s in messages as Ditto's validators do.
func (k *Check) SourceDesc(s Source) string {
	return fmt.Sprintf("Source of index %d of connection '%s'", s.Index, k.Conn.ID)
}

// TargetDesc names t in messages as Ditto's validators do.
func (k *Check) TargetDesc(t Target) string {
	return fmt.Sprintf("Target of address '%s' of connection '%s'", t.Address, k.Conn.ID)
}

// InvalidValue is the message of a configuration value out of its range.
func InvalidValue(value any, name, location string) string {
	return fmt.Sprintf("Invalid value '%v' for configuration '%s' in %s", value, name, location)
}

// Template is AbstractProtocolValidator.validateTemplate: tmpl must compile
// with the placeholders of set; placeholder errors become
// connection.configuration.invalid with their message.
func (k *Check) Template(tmpl string, set template.Set) error { return validateTemplate(tmpl, set) }

// CompileTemplate compiles tmpl as Template checks it and returns the
// compiled template, for rules that look at its literal text.
func (k *Check) CompileTemplate(tmpl string, set template.Set) (*template.Template, error) {
	t, e := compileTemplate(tmpl, set)
	if e != nil {
		return nil, asConfigurationInvalid(e)
	}
	return t, nil
}

// PlaceholderError is the placeholder exception tmpl raises with set, nil
// when it compiles; for rules that report it under their own message.
func (k *Check) PlaceholderError(tmpl string, set template.Set) *ditto.Error {
	return placeholderErr(tmpl, set)
}

// HeaderMapping checks the values of a header mapping, in Java HashMap
// order, against the connectivity placeholders.
func (k *Check) HeaderMapping(hm map[string]string) error {
	for _, key := range HashMapKeys(hm) {
		if err := validateTemplate(hm[key], template.Connectivity); err != nil {
			return err
		}
	}
	return nil
}

// ExtraFields checks the extraFields of t's topics.
func (k *Check) ExtraFields(t Target) error {
	for _, ft := range t.Topics {
		if e := placeholderErr(ft.ExtraFields, template.Connectivity); e != nil {
			return e
		}
	}
	return nil
}

// HeaderEnforcement checks an enforcement whose input is a header
// placeholder and whose filters name the thing, policy, entity or feature
// (AMQP, Kafka and Hono sources).
func (k *Check) HeaderEnforcement(s Source) error {
	if s.Enforcement == nil {
		return nil
	}
	if err := validateTemplate(s.Enforcement.Input, headersOnly); err != nil {
		return err
	}
	for _, f := range s.Enforcement.Filters {
		if err := validateTemplate(f, enforcementFiltersWithFeature); err != nil {
			return err
		}
	}
	return nil
}

var hoconDuration = regexp.MustCompile(`^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$`)

// ParseHoconDuration parses a duration as Typesafe config reads one from a
// specificConfig value ("60s", "1 minute"; bare numbers are milliseconds).
func ParseHoconDuration(s string) (time.Duration, bool) {
	m := hoconDuration.FindStringSubmatch(s)
	if m == nil {
		return 0, false
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		return 0, false
	}
	var unit time.Duration
	switch m[2] {
	case "", "ms", "milli", "millis", "millisecond", "milliseconds":
		unit = time.Millisecond
	case "ns", "nano", "nanos", "nanosecond", "nanoseconds":
		unit = time.Nanosecond
	case "us", "micro", "micros", "microsecond", "microseconds":
		unit = time.Microsecond
	case "s", "second", "seconds":
		unit = time.Second
	case "m", "minute", "minutes":
		unit = time.Minute
	case "h", "hour", "hours":
		unit = time.Hour
	case "d", "day", "days":
		unit = 24 * time.Hour
	default:
		return 0, false
	}
	// Typesafe reads digits as a long (too many is no duration) and
	// saturates the conversion to nanoseconds, as Java's casts do.
	if i, err := strconv.ParseInt(m[1], 10, 64); err == nil {
		if i > math.MaxInt64/int64(unit) {
			return math.MaxInt64, true
		} else if i < math.MinInt64/int64(unit) {
			return math.MinInt64, true
		}
		return time.Duration(i) * unit, true
	} else if !strings.Contains(m[1], ".") {
		return 0, false
	}
	switch f := n * float64(unit); {
	case f >= math.MaxInt64:
		return math.MaxInt64, true
	case f <= math.MinInt64:
		return math.MinInt64, true
	default:
		return time.Duration(f), true
	}
}

// Built-in mapper aliases (message-mapper-provider).
var mapperAliases = []string{"Ditto", "JavaScript", "Normalized", "ConnectionStatus", "RawMessage",
	"ImplicitThingCreation", "UpdateTwinWithLiveResponse", "CloudEvents"}

// fallbackMappers are the aliases a payloadMapping may name without a
// definition: those whose configuration is not mandatory
// (isConfigurationMandatory), in the order Ditto's HashMap lists them.
var fallbackMappers = JavaHashOrder([]string{"Ditto", "Normalized", "RawMessage", "UpdateTwinWithLiveResponse", "CloudEvents"})

// requiredMapperOptions are options a mapper cannot configure without.
var requiredMapperOptions = map[string][]string{"ConnectionStatus": {"thingId"}, "ImplicitThingCreation": {"thing"}}

// PayloadMappings is validatePayloadMappings: every definition is
// instantiated (a failing one refuses the connection, one Ditto's factory
// leaves out only fails when named) and every reference must name a
// configured definition or a fallback alias.
func (k *Check) PayloadMappings() error {
	c := k.Conn
	var custom []string
	for _, id := range HashMapKeys(c.MappingDefinitions) {
		ok, err := k.configureMapper(id, c.MappingDefinitions[id])
		if err != nil {
			return err
		}
		if ok {
			custom = append(custom, id)
		}
	}
	custom = JavaHashOrder(custom)
	check := func(pm []string) error {
		for _, m := range pm {
			if !slices.Contains(custom, m) && !slices.Contains(fallbackMappers, m) {
				return ditto.ConfigurationInvalidDesc(fmt.Sprintf("The mapper <%s> could not be loaded.", m),
					fmt.Sprintf("Make sure to only use either the specified mappingDefinitions names %s or fallback mapper names %s.",
						JavaList(custom), JavaList(fallbackMappers)))
			}
		}
		return nil
	}
	for _, s := range c.Sources {
		if err := check(s.PayloadMapping); err != nil {
			return err
		}
	}
	for _, t := range c.Targets {
		if err := check(t.PayloadMapping); err != nil {
			return err
		}
	}
	return nil
}

// configureMapper instantiates one definition with the configured factory,
// else checks only what each engine needs to start.
func (k *Check) configureMapper(id string, d MappingDefinition) (bool, error) {
	if k.Config.Mappers != nil {
		return k.Config.Mappers.Configure(k.Conn.ID, id, d)
	}
	if !slices.Contains(mapperAliases, d.MappingEngine) {
		return false, nil
	}
	opts := rawJV(d.Options)
	for _, req := range requiredMapperOptions[d.MappingEngine] {
		if !has(opts, req) {
			return false, nil
		}
	}
	return true, nil
}

// protocol runs the type's own rules from the table.
func (v *validator) protocol() error {
	if !v.known || v.proto.Rules == nil {
		return ditto.InternalError("Unknown connection type: " + v.c.ConnectionType)
	}
	return v.proto.Rules(&Check{Conn: v.c, Config: v.cfg})
}
