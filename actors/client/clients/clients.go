// Package clients is the table of live broker clients per connection type:
// the one place that imports every protocol package.
package clients

import (
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/client/amqp091"
	"github.com/dittoconn/dittoconn/actors/client/amqp10"
	"github.com/dittoconn/dittoconn/actors/client/httppush"
	"github.com/dittoconn/dittoconn/actors/client/kafka"
	"github.com/dittoconn/dittoconn/actors/client/mqtt"
	"github.com/dittoconn/dittoconn/actors/client/mqtt5"
	"github.com/dittoconn/dittoconn/actors/model"
)

// Default returns a new registry with every protocol this build has (hono
// has none: its connections only change their desired status).
func Default() client.Registry {
	return client.Registry{
		model.TypeMQTT:     mqtt.New,
		model.TypeMQTT5:    mqtt5.New,
		model.TypeHTTPPush: httppush.New,
		model.TypeAMQP091:  amqp091.New,
		model.TypeAMQP10:   amqp10.New,
		model.TypeKafka:    kafka.New,
	}
}
