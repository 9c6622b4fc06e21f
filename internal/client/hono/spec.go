// Package hono is the connection type hono: Eclipse Hono's Kafka messaging
// reached through Ditto's address aliases. As in Ditto, a Hono connection
// runs as a Kafka connection: Resolve turns it, with the service-wide Hono
// settings (Config), into the Kafka connection that the Kafka client and the
// data plane see. The package adds no client of its own; as protocol
// packages import no sibling, internal/client/clients hands it the Kafka
// Spec. Resolving is a pure function of the connection and the settings: it
// costs one deep copy per client start and nothing per message, and needs
// no locking.
package hono

import (
	"fmt"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// NewSpec is the connection type model.TypeHono under the settings cfg,
// running on kafka (the kafka Spec: its factory and status shape).
// Without bootstrap servers in cfg every hono connection is refused when
// created, modified or tested (and one stored earlier fails to start,
// misconfigured) instead of being stored and never run. The URI a
// connection carries is not checked against the blocked hosts: Ditto
// ignores it and takes the endpoint from its configuration. An SSH tunnel
// is refused, as for Kafka connections, whose client runs it.
func NewSpec(cfg Config, kafka client.Spec) client.Spec {
	return client.Spec{
		Type:       model.TypeHono,
		Validation: model.Protocol{Rules: rules(cfg), NoHost: true, NoSSHTunnel: true},
		New:        factory(cfg, kafka.New),
		Shape:      kafka.Shape,
		DialAddress: func(*model.Connection) string {
			if s := cfg.servers(); len(s) > 0 {
				return s[0]
			}
			return ""
		},
		Resolve: func(c *model.Connection) (*model.Connection, error) { return Resolve(cfg, c) },
	}
}

// rules refuse hono connections when Hono is not configured, then apply
// Ditto's Hono validator.
func rules(cfg Config) model.ProtocolRules {
	return func(k *model.Check) error {
		if !cfg.Configured() {
			return ditto.ConfigurationInvalidDesc(
				"Connections of type <hono> are not available: "+errNotConfigured.Error()+".",
				"Set the Hono settings of the connectivity service (HONO_CONNECTION_BOOTSTRAP_SERVERS and the other HONO_CONNECTION_* variables) and restart it.")
		}
		return validate(k)
	}
}

// factory builds the client of the resolved connection with kafka; the TLS
// settings are the resolved connection's (the service's ca and
// validateCertificates, the base URI's scheme).
func factory(cfg Config, kafka client.Factory) client.Factory {
	return func(env client.Env) (client.Client, error) {
		if env.Connection == nil || kafka == nil {
			return nil, fmt.Errorf("%w: hono: no connection or no Kafka client", client.ErrConfig)
		}
		r, err := Resolve(cfg, env.Connection)
		if err != nil {
			return nil, fmt.Errorf("%w: hono: %v", client.ErrConfig, err)
		}
		tlsCfg, err := client.TLSConfig(r)
		if err != nil {
			return nil, fmt.Errorf("hono: %w", err)
		}
		env.Connection, env.TLS = r, tlsCfg
		return kafka(env)
	}
}
