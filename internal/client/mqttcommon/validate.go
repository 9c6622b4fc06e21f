package mqttcommon

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Version is the MQTT protocol version a connection type speaks.
type Version int

const (
	// V311 is MQTT 3.1.1 (connection type mqtt).
	V311 Version = iota
	// V5 is MQTT 5 (connection type mqtt-5).
	V5
)

// String names the version as Ditto's messages do.
func (v Version) String() string {
	if v == V5 {
		return "MQTT 5"
	}
	return "MQTT 3.1.1"
}

// The placeholders MQTT sources may use beyond template.Connectivity.
var (
	mqtt3SourceHeaders     = template.Set{template.MQTT3Header}
	mqttEnforcementFilters = template.Set{template.Thing, template.Policy, template.Entity}
	headersOnly            = template.Set{template.Header}
)

// mqtt3Headers are the only header mapping keys of MQTT 3.1.1 targets.
var mqtt3Headers = []string{"mqtt.topic", "mqtt.qos", "mqtt.retain"}

// Rules are the validation rules of the connection type speaking v, in
// the order Ditto's MQTT validators check them.
func Rules(v Version) model.ProtocolRules {
	return func(k *model.Check) error { return validate(k, v) }
}

func validate(k *model.Check, v Version) error {
	c := k.Conn
	five := v == V5
	if err := k.URIScheme([]string{"tcp", "ssl"}, []string{"ssl"}, v.String()); err != nil {
		return err
	}
	if !five && c.ClientCount > 1 {
		return ditto.ConfigurationInvalidDesc("Client count limited to 1 for MQTT 3.1.1 connections.",
			"MQTT 3.1.1 does not support load-balancing; starting more than 1 client will only result in duplicate incoming messages.")
	}
	for _, s := range c.Sources {
		for _, a := range s.Addresses {
			if msg := topicFilterError(a); msg != "" {
				return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", a, msg))
			}
		}
	}
	for _, t := range c.Targets {
		if msg := topicError(t.Address); msg != "" {
			return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", t.Address, msg))
		}
	}
	for _, s := range c.Sources {
		desc := k.SourceDesc(s)
		if s.QoS == nil {
			return ditto.ConfigurationInvalid(fmt.Sprintf("MQTT Source <%s> must contain QoS value.", desc))
		}
		if *s.QoS < 0 || *s.QoS > 2 {
			return ditto.ConfigurationInvalid(model.InvalidValue(*s.QoS, "qos", desc))
		}
		if s.Enforcement != nil {
			inputs := template.Set{template.Source}
			valid := "source:address"
			if five {
				inputs = append(inputs, template.Header)
				valid += ", header:<name>"
			}
			if e := k.PlaceholderError(s.Enforcement.Input, inputs); e != nil {
				return ditto.ConfigurationInvalidDesc(model.InvalidValue(s.Enforcement.Input, "input", desc),
					fmt.Sprintf("'%s' is not a valid value for MQTT enforcement. Valid placeholders are: '%s'.", s.Enforcement.Input, valid))
			}
			for _, f := range s.Enforcement.Filters {
				if e := k.PlaceholderError(f, mqttEnforcementFilters); e != nil {
					return ditto.ConfigurationInvalidDesc(model.InvalidValue(model.JavaList(s.Enforcement.Filters), "filters", desc),
						"Placeholder substitution failed. Please check the placeholder variables against the documentation.")
				}
			}
		}
		if !five {
			for _, key := range model.HashMapKeys(s.HeaderMapping) {
				if err := k.Template(s.HeaderMapping[key], mqtt3SourceHeaders); err != nil {
					return err
				}
			}
			if s.ReplyTarget != nil {
				if err := mqtt3TargetHeaders(k, s.ReplyTarget.HeaderMapping); err != nil {
					return err
				}
			}
			if s.ConsumerCount > 1 {
				return ditto.ConfigurationInvalid("Consumer count limited to 1 for MQTT 3.1.1 connections.")
			}
		}
	}
	for _, t := range c.Targets {
		desc := k.TargetDesc(t)
		if t.QoS == nil {
			return ditto.ConfigurationInvalid(fmt.Sprintf("MQTT Target <%s> must contain QoS value.", desc))
		}
		if *t.QoS < 0 || *t.QoS > 2 {
			return ditto.ConfigurationInvalid(model.InvalidValue(*t.QoS, "qos", desc))
		}
		if err := k.Template(t.Address, template.Connectivity); err != nil {
			return err
		}
		if err := k.ExtraFields(t); err != nil {
			return err
		}
		if !five {
			if err := mqtt3TargetHeaders(k, t.HeaderMapping); err != nil {
				return err
			}
		}
	}
	if err := k.PayloadMappings(); err != nil {
		return err
	}
	return specificConfig(c.SpecificConfig)
}

func mqtt3TargetHeaders(k *model.Check, hm map[string]string) error {
	for _, key := range model.HashMapKeys(hm) {
		if !slices.Contains(mqtt3Headers, key) {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("The header '%s' is not allowed in MQTT 3.1.1 target header mapping.", key),
				"The following headers are allowed and are directly applied to the published MQTT message: "+model.JavaList(mqtt3Headers))
		}
		if err := k.Template(hm[key], headersOnly); err != nil {
			return err
		}
	}
	return nil
}

// topicError checks an MQTT topic name (no wildcards); "" when valid.
func topicError(t string) string {
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

// topicFilterError checks an MQTT topic filter (wildcards allowed).
func topicFilterError(t string) string {
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

// specificConfig checks the keys Ditto's MQTT specific config validates.
func specificConfig(sc map[string]string) error {
	if ka, ok := sc["keepAlive"]; ok {
		secs, valid := KeepAliveSeconds(ka)
		if !valid {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Configured value for Keep Alive Interval is invalid: String: 1: keepAlive has type STRING rather than duration (%s)", ka),
				"Please adjust the interval to be within the allowed range.")
		}
		if secs < 0 || secs > 65535 {
			return ditto.ConfigurationInvalidDesc(
				fmt.Sprintf("Expected seconds of duration to be within [0, 65535] but it was <%d>.", secs),
				"Please adjust the interval to be within the allowed range.")
		}
	}
	if topic, ok := sc["lastWillTopic"]; ok {
		if msg := topicError(topic); msg != "" {
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
