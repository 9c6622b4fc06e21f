package model

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

func (v *validator) protocol() error {
	c := v.c
	switch c.ConnectionType {
	case TypeMQTT:
		return v.mqtt(false)
	case TypeMQTT5:
		return v.mqtt(true)
	case TypeAMQP091:
		return v.amqp("AMQP 0.9.1")
	case TypeAMQP10:
		return v.amqp("AMQP 1.0")
	case TypeKafka:
		return v.kafka()
	case TypeHTTPPush:
		return v.httpPush()
	case TypeHono:
		return v.hono()
	}
	return ditto.InternalError("Unknown connection type: " + c.ConnectionType)
}

func (v *validator) scheme() string {
	u, ok := parseConnURI(v.c.URI)
	if !ok {
		return ""
	}
	return u.Scheme
}

// uriScheme is AbstractProtocolValidator.validateUriScheme.
func (v *validator) uriScheme(accepted, secure []string, protocol string) error {
	s := v.scheme()
	if !contains1(accepted, s) {
		return ditto.URIInvalidDesc(fmt.Sprintf("The URI scheme '%s' is not valid for %s.", javaNull(s), protocol),
			"Accepted URI schemes are: "+strings.Join(accepted, ", "))
	}
	if !contains1(secure, s) && v.c.CA != "" {
		return ditto.URIInvalidDesc("The connection has trusted certificates configured but uses an insecure protocol.",
			fmt.Sprintf("Either switch to a secure protocol (%s) or remove the trusted certificates.", javaList(secure)))
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

func contains1(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func sourceDesc(c *Connection, s Source) string {
	return fmt.Sprintf("Source of index %d of connection '%s'", s.Index, c.ID)
}

func targetDesc(c *Connection, t Target) string {
	return fmt.Sprintf("Target of address '%s' of connection '%s'", t.Address, c.ID)
}

func invalidValue(value any, name, location string) string {
	return fmt.Sprintf("Invalid value '%v' for configuration '%s' in %s", value, name, location)
}

func validateHeaderMapping(hm map[string]string) error {
	for _, k := range hashMapKeys(hm) {
		if err := validateTemplate(hm[k], template.Connectivity); err != nil {
			return err
		}
	}
	return nil
}

func validateExtraFields(t Target) error {
	for _, ft := range t.Topics {
		if e := placeholderErr(ft.ExtraFields, template.Connectivity); e != nil {
			return e
		}
	}
	return nil
}

var mqtt3Headers = []string{"mqtt.topic", "mqtt.qos", "mqtt.retain"}

func (v *validator) mqtt(five bool) error {
	c := v.c
	proto := "MQTT 3.1.1"
	if five {
		proto = "MQTT 5"
	}
	if err := v.uriScheme([]string{"tcp", "ssl"}, []string{"ssl"}, proto); err != nil {
		return err
	}
	if !five && c.ClientCount > 1 {
		return ditto.ConfigurationInvalidDesc("Client count limited to 1 for MQTT 3.1.1 connections.",
			"MQTT 3.1.1 does not support load-balancing; starting more than 1 client will only result in duplicate incoming messages.")
	}
	for _, s := range c.Sources {
		for _, a := range s.Addresses {
			if msg := mqttTopicFilterError(a); msg != "" {
				return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", a, msg))
			}
		}
	}
	for _, t := range c.Targets {
		if msg := mqttTopicError(t.Address); msg != "" {
			return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", t.Address, msg))
		}
	}
	for _, s := range c.Sources {
		desc := sourceDesc(c, s)
		if s.QoS == nil {
			return ditto.ConfigurationInvalid(fmt.Sprintf("MQTT Source <%s> must contain QoS value.", desc))
		}
		if *s.QoS < 0 || *s.QoS > 2 {
			return ditto.ConfigurationInvalid(invalidValue(*s.QoS, "qos", desc))
		}
		if s.Enforcement != nil {
			inputs := template.Set{template.Source}
			valid := "source:address"
			if five {
				inputs = append(inputs, template.Header)
				valid += ", header:<name>"
			}
			if e := placeholderErr(s.Enforcement.Input, inputs); e != nil {
				return ditto.ConfigurationInvalidDesc(invalidValue(s.Enforcement.Input, "input", desc),
					fmt.Sprintf("'%s' is not a valid value for MQTT enforcement. Valid placeholders are: '%s'.", s.Enforcement.Input, valid))
			}
			for _, f := range s.Enforcement.Filters {
				if e := placeholderErr(f, mqttEnforcementFilters); e != nil {
					return ditto.ConfigurationInvalidDesc(invalidValue(javaList(s.Enforcement.Filters), "filters", desc),
						"Placeholder substitution failed. Please check the placeholder variables against the documentation.")
				}
			}
		}
		if !five {
			for _, k := range hashMapKeys(s.HeaderMapping) {
				if err := validateTemplate(s.HeaderMapping[k], mqtt3SourceHeaders); err != nil {
					return err
				}
			}
			if s.ReplyTarget != nil {
				if err := mqtt3TargetHeaders(s.ReplyTarget.HeaderMapping); err != nil {
					return err
				}
			}
			if s.ConsumerCount > 1 {
				return ditto.ConfigurationInvalid("Consumer count limited to 1 for MQTT 3.1.1 connections.")
			}
		}
	}
	for _, t := range c.Targets {
		desc := targetDesc(c, t)
		if t.QoS == nil {
			return ditto.ConfigurationInvalid(fmt.Sprintf("MQTT Target <%s> must contain QoS value.", desc))
		}
		if *t.QoS < 0 || *t.QoS > 2 {
			return ditto.ConfigurationInvalid(invalidValue(*t.QoS, "qos", desc))
		}
		if err := validateTemplate(t.Address, template.Connectivity); err != nil {
			return err
		}
		if err := validateExtraFields(t); err != nil {
			return err
		}
		if !five {
			if err := mqtt3TargetHeaders(t.HeaderMapping); err != nil {
				return err
			}
		}
	}
	if err := v.payloadMappings(); err != nil {
		return err
	}
	return v.mqttSpecificConfig()
}

func mqtt3TargetHeaders(hm map[string]string) error {
	for _, k := range hashMapKeys(hm) {
		if !contains1(mqtt3Headers, k) {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("The header '%s' is not allowed in MQTT 3.1.1 target header mapping.", k),
				"The following headers are allowed and are directly applied to the published MQTT message: "+javaList(mqtt3Headers))
		}
		if err := validateTemplate(hm[k], headersOnly); err != nil {
			return err
		}
	}
	return nil
}

// mqttTopicError checks an MQTT topic name (no wildcards); "" when valid.
func mqttTopicError(t string) string {
	if t == "" {
		return "Topic must be at least one character long."
	}
	if i := strings.IndexByte(t, '#'); i >= 0 {
		return fmt.Sprintf("Topic [%s] must not contain multi level wildcard (#), found at index %d.", t, i)
	}
	if i := strings.IndexByte(t, '+'); i >= 0 {
		return fmt.Sprintf("Topic [%s] must not contain single level wildcard (+), found at index %d.", t, i)
	}
	if i := strings.IndexByte(t, 0); i >= 0 {
		return fmt.Sprintf("Topic [%s] must not contain null character (U+0000), found at index %d.", t, i)
	}
	return ""
}

// mqttTopicFilterError checks an MQTT topic filter (wildcards allowed).
func mqttTopicFilterError(t string) string {
	if t == "" {
		return "Topic filter must be at least one character long."
	}
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '#':
			if i != len(t)-1 || (i > 0 && t[i-1] != '/') {
				return fmt.Sprintf("Topic filter [%s] contains misplaced multi level wildcard (#) at index %d.", t, i)
			}
		case '+':
			if (i > 0 && t[i-1] != '/') || (i < len(t)-1 && t[i+1] != '/') {
				return fmt.Sprintf("Topic filter [%s] contains misplaced single level wildcard (+) at index %d.", t, i)
			}
		case 0:
			return fmt.Sprintf("Topic filter [%s] must not contain null character (U+0000), found at index %d.", t, i)
		}
	}
	return ""
}

var hoconDuration = regexp.MustCompile(`^\s*(-?[0-9]+(?:\.[0-9]+)?)\s*([a-zA-Z]*)\s*$`)

// parseHoconDuration parses a Typesafe-config duration ("60s", "1 minute",
// bare numbers are milliseconds).
func parseHoconDuration(s string) (time.Duration, bool) {
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
	return time.Duration(n * float64(unit)), true
}

func (v *validator) mqttSpecificConfig() error {
	sc := v.c.SpecificConfig
	if ka, ok := sc["keepAlive"]; ok {
		d, valid := parseHoconDuration(ka)
		if !valid {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Configured value for Keep Alive Interval is invalid: String: 1: keepAlive has type STRING rather than duration (%s)", ka),
				"Please adjust the interval to be within the allowed range.")
		}
		if secs := int64(d / time.Second); secs < 0 || secs > 65535 {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Expected seconds of duration to be within [0, 65535] but it was <%d>.", secs),
				"Please adjust the interval to be within the allowed range.")
		}
	}
	if topic, ok := sc["lastWillTopic"]; ok {
		if msg := mqttTopicError(topic); msg != "" {
			return ditto.ConfigurationInvalidDesc(msg, "Please provide a valid MQTT topic for config key <lastWillTopic>.")
		}
		if q, ok := sc["lastWillQos"]; ok {
			n, err := strconv.Atoi(strings.TrimSpace(q))
			if err == nil && (n < 0 || n > 2) {
				return ditto.ConfigurationInvalidDesc(fmt.Sprintf("<%d> is not a valid MQTT QoS code.", n),
					"Please provide a valid MQTT QoS code for config key <lastWillQos>.")
			}
		}
	}
	return nil
}

// enforcementHeaders validates the AMQP/Kafka/Hono style enforcement.
func enforcementHeaders(s Source) error {
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

func (v *validator) amqp(protocol string) error {
	if err := v.uriScheme([]string{"amqp", "amqps"}, []string{"amqps"}, protocol); err != nil {
		return err
	}
	for _, s := range v.c.Sources {
		if err := enforcementHeaders(s); err != nil {
			return err
		}
		if err := validateHeaderMapping(s.HeaderMapping); err != nil {
			return err
		}
	}
	for _, t := range v.c.Targets {
		if err := validateHeaderMapping(t.HeaderMapping); err != nil {
			return err
		}
		if err := validateTemplate(t.Address, template.Connectivity); err != nil {
			return err
		}
		if err := validateExtraFields(t); err != nil {
			return err
		}
	}
	return v.payloadMappings()
}

var kafkaTopicChars = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)

// kafkaTopicError mirrors org.apache.kafka.common.internals.Topic.validate.
func kafkaTopicError(t string) string {
	switch {
	case t == "":
		return "Topic name is illegal, it can't be empty"
	case t == "." || t == "..":
		return "Topic name cannot be \".\" or \"..\""
	case len(t) > 249:
		return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + t
	case !kafkaTopicChars.MatchString(t):
		return "Topic name \"" + t + "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
	}
	return ""
}

func kafkaTopic(topic, repl string) error {
	if topic == "" {
		return ditto.ConfigurationInvalid("The provided topic in your target address may not be empty.")
	}
	if msg := kafkaTopicError(strings.ReplaceAll(topic, repl, "replaced_placeholder")); msg != "" {
		return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", topic, msg))
	}
	return nil
}

var bootstrapServers = regexp.MustCompile(`^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9]))*\.?:([1-9]|[1-5]?[0-9]{2,4}|6[1-4][0-9]{3}|65[1-4][0-9]{2}|655[1-2][0-9]|6553[1-5])[\s,]*?)+$`)

var groupIDPattern = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)

func (v *validator) kafka() error {
	c := v.c
	if err := v.uriScheme([]string{"tcp", "ssl"}, []string{"ssl"}, "Kafka 2.1.1"); err != nil {
		return err
	}
	const repl = "\x00placeholder\x00"
	for _, s := range c.Sources {
		if err := enforcementHeaders(s); err != nil {
			return err
		}
		if err := validateHeaderMapping(s.HeaderMapping); err != nil {
			return err
		}
		for _, a := range s.Addresses {
			if err := kafkaTopic(a, repl); err != nil {
				return err
			}
		}
		if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 1) {
			return ditto.ConfigurationInvalid(fmt.Sprintf(
				"Invalid 'qos' value for Kafka source, supported are: <0> or <1>. Configured 'qos' value was: <%d>", *s.QoS))
		}
	}
	for _, t := range c.Targets {
		tmpl, e := compileTemplate(t.Address, template.Connectivity)
		if e != nil {
			return asConfigurationInvalid(e)
		}
		addr := tmpl.ReplaceExpressions(repl)
		if i := strings.Index(addr, "/"); i > 0 {
			if err := kafkaTopic(addr[:i], repl); err != nil {
				return err
			}
			if addr[i+1:] == "" {
				return ditto.ConfigurationInvalid("The provided key in your target address may not be empty.")
			}
		} else if i := strings.Index(addr, "#"); i > 0 {
			if err := kafkaTopic(addr[:i], repl); err != nil {
				return err
			}
			part := addr[i+1:]
			if part == "" {
				return ditto.ConfigurationInvalid("The provided partition in your target address may not be empty.")
			}
			if _, err := strconv.ParseInt(strings.ReplaceAll(part, repl, "3"), 10, 32); err != nil {
				return ditto.ConfigurationInvalid(fmt.Sprintf("Can not parse partition number from %s.",
					strings.ReplaceAll(part, repl, "<placeholder>")))
			}
		} else if err := kafkaTopic(addr, repl); err != nil {
			return err
		}
		if err := validateHeaderMapping(t.HeaderMapping); err != nil {
			return err
		}
		if err := validateExtraFields(t); err != nil {
			return err
		}
	}
	if err := v.payloadMappings(); err != nil {
		return err
	}
	sc := c.SpecificConfig
	// KafkaAuthenticationSpecificConfig: only with user:password in the URI
	if u, ok := parseConnURI(c.URI); ok {
		if _, _, hasCreds := u.credentials(); hasCreds {
			mech, ok := sc["saslMechanism"]
			if !ok {
				mech = "PLAIN"
			}
			m := strings.ToUpper(mech)
			if m != "PLAIN" && m != "SCRAM-SHA-256" && m != "SCRAM-SHA-512" {
				return ditto.ConfigurationInvalid(fmt.Sprintf(
					"The connection configuration contains an invalid value for SASL mechanisms: <%s>. Allowed mechanisms are: <%s>",
					mech, javaList(javaHashOrder([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}))))
			}
		}
	}
	bs, hasBS := sc["bootstrapServers"]
	if !hasBS || bs == "" || !bootstrapServers.MatchString(bs) ||
		strings.HasPrefix(strings.TrimSpace(bs), ",") || strings.HasSuffix(strings.TrimSpace(bs), ",") {
		shown := bs
		if !hasBS {
			shown = "null"
		}
		return ditto.ConfigurationInvalid(fmt.Sprintf("The provided list of bootstrap servers '%s' is not valid", shown))
	}
	if len(c.Sources) > 0 {
		if g, ok := sc["groupId"]; ok {
			if r, ok := template.ResolveConnectionID(g, c.ID); ok {
				g = r
			}
			if !groupIDPattern.MatchString(g) {
				return ditto.ConfigurationInvalid(
					"The connection configuration contains an invalid value for the consumer group ID. Allowed Characters are: <[a-zA-Z0-9\\._\\-]>")
			}
		}
		if r, ok := sc["consumerOffsetReset"]; ok && !strings.EqualFold(r, "earliest") && !strings.EqualFold(r, "latest") {
			return ditto.ConfigurationInvalid(
				"The connection configuration contains an invalid value for the consumer offset reset. Allowed values are: <[earliest, latest]>")
		}
	}
	return nil
}

var httpMethods = []string{"CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"}

const supportedHTTPMethods = "PUT, PATCH, POST, GET, DELETE"

func (v *validator) httpPush() error {
	c := v.c
	if err := v.uriScheme([]string{"http", "https"}, []string{"https"}, "HTTP"); err != nil {
		return err
	}
	if len(c.Sources) > 0 {
		return ditto.ConfigurationInvalid("A connection of type 'http-push' may not have any source.")
	}
	for _, t := range c.Targets {
		desc := targetDesc(c, t)
		if err := validateHeaderMapping(t.HeaderMapping); err != nil {
			return err
		}
		if err := validateTemplate(t.Address, template.Connectivity); err != nil {
			return err
		}
		method, _, ok := strings.Cut(t.Address, ":")
		if !ok {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("%s: Target address has invalid format. Expect '<VERB>:/<path>', for example 'POST:/api'.", desc),
				"Supported methods are: "+supportedHTTPMethods)
		}
		if !contains1([]string{"PUT", "PATCH", "POST", "GET", "DELETE"}, method) {
			return ditto.ConfigurationInvalidDesc(fmt.Sprintf("%s: The method '%s' is not supported", desc, method),
				"Supported methods are: "+supportedHTTPMethods)
		}
		if err := validateExtraFields(t); err != nil {
			return err
		}
	}
	if err := v.payloadMappings(); err != nil {
		return err
	}
	if cr := c.Credentials; cr != nil && cr.Type == "oauth-client-credentials" && v.cfg.OAuth2EnforceHTTPS {
		if !strings.HasPrefix(deref(cr.TokenEndpoint), "https:") {
			return ditto.ConfigurationInvalid("The OAuth2 token endpoint must be accessed via HTTPS in order not to transmit the client secret in plain text.")
		}
	}
	sc := c.SpecificConfig
	if it, ok := sc["idleTimeout"]; ok {
		d, valid := parseHoconDuration(it)
		if !valid || d < 0 || d > 60*time.Second {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Idle timeout '%d' is not within the allowed range of [0, 60] seconds.", int64(d/time.Second)),
				"Please adjust the timeout to be within the allowed range.")
		}
	}
	if p, ok := sc["parallelism"]; ok {
		if n, err := strconv.Atoi(strings.TrimSpace(p)); err != nil || n <= 0 {
			return ditto.ConfigurationInvalid(fmt.Sprintf(
				"The configured value '%s' of 'parallelism' is invalid. It must be a positive integer.", p))
		}
	}
	if orb, ok := sc["omitRequestBody"]; ok && orb != "" {
		methods := javaSplit(orb, ",")
		for _, m := range methods {
			if m != "" && !contains1(httpMethods, m) {
				return ditto.ConfigurationInvalid(fmt.Sprintf(
					"The configured value '%s' of 'omitRequestBody' is invalid. It contains an invalid HTTP method: %s",
					javaList(methods), m))
			}
		}
	}
	return nil
}

func (v *validator) hono() error {
	for _, s := range v.c.Sources {
		if err := enforcementHeaders(s); err != nil {
			return err
		}
		for _, a := range s.Addresses {
			if a == "" {
				return ditto.ConfigurationInvalid("The provided source address must not be empty.")
			}
			if a != "telemetry" && a != "event" && a != "command_response" {
				return ditto.ConfigurationInvalid(fmt.Sprintf(
					"The provided source address <%s> is invalid. It should be one of the defined aliases: [telemetry, event, command_response]", a))
			}
		}
		if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 1) {
			return ditto.ConfigurationInvalid(fmt.Sprintf("Invalid source 'qos' value <%d>. Supported values are <0> and <1>.", *s.QoS))
		}
	}
	for _, t := range v.c.Targets {
		if t.Address == "" {
			return ditto.ConfigurationInvalid("The provided target address must not be empty.")
		}
		if t.Address != "command" {
			return ditto.ConfigurationInvalid(fmt.Sprintf("The provided target address <%s> is invalid. It should be <command>.", t.Address))
		}
		if err := validateExtraFields(t); err != nil {
			return err
		}
	}
	return v.payloadMappings()
}

// Built-in mapper aliases (message-mapper-provider).
var mapperAliases = []string{"Ditto", "JavaScript", "Normalized", "ConnectionStatus", "RawMessage",
	"ImplicitThingCreation", "UpdateTwinWithLiveResponse", "CloudEvents"}

// requiredMapperOptions are options a mapper refuses to start without.
var requiredMapperOptions = map[string][]string{"ConnectionStatus": {"thingId"}, "ImplicitThingCreation": {"thing"}}

// payloadMappings is validatePayloadMappings: every definition must
// instantiate and every reference must name a definition or an alias.
func (v *validator) payloadMappings() error {
	var custom []string
	for _, id := range hashMapKeys(v.c.MappingDefinitions) {
		d := v.c.MappingDefinitions[id]
		if !contains1(mapperAliases, d.MappingEngine) {
			continue // unknown engines are skipped by the factory; references to them fail below
		}
		opts := rawJV(d.Options)
		for _, req := range requiredMapperOptions[d.MappingEngine] {
			if !has(opts, req) {
				return ditto.ConfigurationInvalidDesc(fmt.Sprintf(
					"The message mapper was not configured correctly as property '%s' was missing from the mapper's configuration.", req),
					"Make sure to add the missing property to the mapper's configuration.")
			}
		}
		custom = append(custom, id)
	}
	check := func(pm []string) error {
		for _, m := range pm {
			if !contains1(custom, m) && !contains1(mapperAliases, m) {
				return ditto.ConfigurationInvalidDesc(fmt.Sprintf("The mapper <%s> could not be loaded.", m),
					fmt.Sprintf("Make sure to only use either the specified mappingDefinitions names %s or fallback mapper names %s.",
						javaList(custom), javaList(javaHashOrder(mapperAliases))))
			}
		}
		return nil
	}
	for _, s := range v.c.Sources {
		if err := check(s.PayloadMapping); err != nil {
			return err
		}
	}
	for _, t := range v.c.Targets {
		if err := check(t.PayloadMapping); err != nil {
			return err
		}
	}
	return nil
}
