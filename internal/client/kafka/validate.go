package kafka

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

var topicChars = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)

// topicError mirrors org.apache.kafka.common.internals.Topic.validate.
func topicError(t string) string {
	switch {
	case t == "":
		return "Topic name is illegal, it can't be empty"
	case t == "." || t == "..":
		return "Topic name cannot be \".\" or \"..\""
	case len(t) > 249:
		return "Topic name is illegal, it can't be longer than 249 characters, topic name: " + t
	case !topicChars.MatchString(t):
		return "Topic name \"" + t + "\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
	}
	return ""
}

// placeholderMark stands for a placeholder's value while a templated topic
// is checked as Ditto checks it, with placeholders replaced.
const placeholderMark = "\x00placeholder\x00"

func checkTopic(topic string) error {
	if topic == "" {
		return ditto.ConfigurationInvalid("The provided topic in your target address may not be empty.")
	}
	if msg := topicError(strings.ReplaceAll(topic, placeholderMark, "replaced_placeholder")); msg != "" {
		return ditto.ConfigurationInvalid(fmt.Sprintf("The provided topic '%s' is not valid: %s", topic, msg))
	}
	return nil
}

var bootstrapServers = regexp.MustCompile(`^(([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9])(\.([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9\-]{0,61}[a-zA-Z0-9]))*\.?:([1-9]|[1-5]?[0-9]{2,4}|6[1-4][0-9]{3}|65[1-4][0-9]{2}|655[1-2][0-9]|6553[1-5])[\s,]*?)+$`)

var groupIDPattern = regexp.MustCompile(`^[a-zA-Z0-9._\-]+$`)

// validate is Ditto's Kafka validator: URI scheme, sources (enforcement,
// header mapping, topics, QoS 0 or 1), targets (topic, key or partition,
// header mapping, extraFields), payload mappings, then specificConfig.
func validate(k *model.Check) error {
	c := k.Conn
	if err := k.URIScheme([]string{"tcp", "ssl"}, []string{"ssl"}, "Kafka 2.1.1"); err != nil {
		return err
	}
	for _, s := range c.Sources {
		if err := k.HeaderEnforcement(s); err != nil {
			return err
		}
		if err := k.HeaderMapping(s.HeaderMapping); err != nil {
			return err
		}
		for _, a := range s.Addresses {
			if err := checkTopic(a); err != nil {
				return err
			}
		}
		if s.QoS != nil && (*s.QoS < 0 || *s.QoS > 1) {
			return ditto.ConfigurationInvalid(fmt.Sprintf(
				"Invalid 'qos' value for Kafka source, supported are: <0> or <1>. Configured 'qos' value was: <%d>", *s.QoS))
		}
	}
	for _, t := range c.Targets {
		if err := targetAddress(k, t.Address); err != nil {
			return err
		}
		if err := k.HeaderMapping(t.HeaderMapping); err != nil {
			return err
		}
		if err := k.ExtraFields(t); err != nil {
			return err
		}
	}
	if err := k.PayloadMappings(); err != nil {
		return err
	}
	return specificConfig(c)
}

// targetAddress checks "topic", "topic/key" or "topic#partition".
func targetAddress(k *model.Check, address string) error {
	tmpl, err := k.CompileTemplate(address, template.Connectivity)
	if err != nil {
		return err
	}
	addr := tmpl.ReplaceExpressions(placeholderMark)
	if i := strings.Index(addr, "/"); i > 0 {
		if err := checkTopic(addr[:i]); err != nil {
			return err
		}
		if addr[i+1:] == "" {
			return ditto.ConfigurationInvalid("The provided key in your target address may not be empty.")
		}
		return nil
	}
	if i := strings.Index(addr, "#"); i > 0 {
		if err := checkTopic(addr[:i]); err != nil {
			return err
		}
		part := addr[i+1:]
		if part == "" {
			return ditto.ConfigurationInvalid("The provided partition in your target address may not be empty.")
		}
		if _, err := strconv.ParseInt(strings.ReplaceAll(part, placeholderMark, "3"), 10, 32); err != nil {
			return ditto.ConfigurationInvalid(fmt.Sprintf("Can not parse partition number from %s.",
				strings.ReplaceAll(part, placeholderMark, "<placeholder>")))
		}
		return nil
	}
	return checkTopic(addr)
}

// specificConfig checks the SASL mechanism (only with user:password in the
// URI), the bootstrap servers, and with sources the consumer group and
// offset reset.
func specificConfig(c *model.Connection) error {
	sc := c.SpecificConfig
	if _, _, _, hasCreds, _, _, ok := c.URIParts(); ok && hasCreds {
		mech, ok := sc[cfgSASLMechanism]
		if !ok {
			mech = "PLAIN"
		}
		m := strings.ToUpper(mech)
		if m != "PLAIN" && m != "SCRAM-SHA-256" && m != "SCRAM-SHA-512" {
			return ditto.ConfigurationInvalid(fmt.Sprintf(
				"The connection configuration contains an invalid value for SASL mechanisms: <%s>. Allowed mechanisms are: <%s>",
				mech, model.JavaList(model.JavaHashOrder([]string{"PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"}))))
		}
	}
	bs, hasBS := sc[cfgBootstrapServers]
	if !hasBS || bs == "" || !bootstrapServers.MatchString(bs) ||
		strings.HasPrefix(strings.TrimSpace(bs), ",") || strings.HasSuffix(strings.TrimSpace(bs), ",") {
		shown := bs
		if !hasBS {
			shown = "null"
		}
		return ditto.ConfigurationInvalid(fmt.Sprintf("The provided list of bootstrap servers '%s' is not valid", shown))
	}
	if len(c.Sources) > 0 {
		if g, ok := sc[cfgGroupID]; ok {
			if r, ok := template.ResolveConnectionID(g, c.ID); ok {
				g = r
			}
			if !groupIDPattern.MatchString(g) {
				return ditto.ConfigurationInvalid(
					"The connection configuration contains an invalid value for the consumer group ID. Allowed Characters are: <[a-zA-Z0-9\\._\\-]>")
			}
		}
		if r, ok := sc[cfgConsumerOffsetReset]; ok && !strings.EqualFold(r, "earliest") && !strings.EqualFold(r, "latest") {
			return ditto.ConfigurationInvalid(
				"The connection configuration contains an invalid value for the consumer offset reset. Allowed values are: <[earliest, latest]>")
		}
	}
	return nil
}
