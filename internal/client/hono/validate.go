package hono

import (
	"fmt"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// validate is Ditto's Hono validator: sources name one of the aliases
// (telemetry, event, command_response) with QoS 0 or 1, targets the alias
// command; then the payload mappings. Hono connections have no URI of
// their own, so there is no scheme to check.
func validate(k *model.Check) error {
	for _, s := range k.Conn.Sources {
		if err := k.HeaderEnforcement(s); err != nil {
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
	for _, t := range k.Conn.Targets {
		if t.Address == "" {
			return ditto.ConfigurationInvalid("The provided target address must not be empty.")
		}
		if t.Address != "command" {
			return ditto.ConfigurationInvalid(fmt.Sprintf("The provided target address <%s> is invalid. It should be <command>.", t.Address))
		}
		if err := k.ExtraFields(t); err != nil {
			return err
		}
	}
	return k.PayloadMappings()
}
