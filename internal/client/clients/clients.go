// Package clients is the table of connection types: the one place that
// imports every protocol package. Each protocol declares its client.Spec in
// its own folder; this table only lists them.
package clients

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/amqp091"
	"github.com/dittoconn/dittoconn/internal/client/amqp10"
	"github.com/dittoconn/dittoconn/internal/client/hono"
	"github.com/dittoconn/dittoconn/internal/client/httppush"
	"github.com/dittoconn/dittoconn/internal/client/kafka"
	"github.com/dittoconn/dittoconn/internal/client/mqtt"
	"github.com/dittoconn/dittoconn/internal/client/mqtt5"
)

// Specs returns every connection type this build knows: the table of
// their clients and of their validation rules (model.Protocols). Hono is
// not configured in this table (its connections are refused): the service
// puts Hono of its settings in place.
func Specs() client.Specs {
	return client.NewSpecs(mqtt.Spec, mqtt5.Spec, httppush.Spec, amqp091.Spec, amqp10.Spec, kafka.Spec, Hono(hono.DefaultConfig()))
}

// Hono is the type hono under the service's Hono settings: it runs on the
// Kafka client.
func Hono(cfg hono.Config) client.Spec { return hono.NewSpec(cfg, kafka.Spec) }

// Default returns a new registry with every protocol this build has a
// client for.
func Default() client.Registry { return Specs().Registry() }
