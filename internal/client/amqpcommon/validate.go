// Package amqpcommon is what AMQP 0.9.1 (internal/client/amqp091) and
// AMQP 1.0 (internal/client/amqp10) share and neither may import from the
// other: Ditto's validation rules, which are the same for both but for the
// protocol's name. It holds no state.
package amqpcommon

import (
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/placeholder/template"
)

// Rules are the validation rules of an AMQP connection type; protocol names
// it in messages ("AMQP 0.9.1", "AMQP 1.0").
func Rules(protocol string) model.ProtocolRules {
	return func(k *model.Check) error {
		if err := k.URIScheme([]string{"amqp", "amqps"}, []string{"amqps"}, protocol); err != nil {
			return err
		}
		for _, s := range k.Conn.Sources {
			if err := k.HeaderEnforcement(s); err != nil {
				return err
			}
			if err := k.HeaderMapping(s.HeaderMapping); err != nil {
				return err
			}
		}
		for _, t := range k.Conn.Targets {
			if err := k.HeaderMapping(t.HeaderMapping); err != nil {
				return err
			}
			if err := k.Template(t.Address, template.Connectivity); err != nil {
				return err
			}
			if err := k.ExtraFields(t); err != nil {
				return err
			}
		}
		return k.PayloadMappings()
	}
}
