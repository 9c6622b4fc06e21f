package amqp091

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/amqpcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeAMQP091.
var Spec = client.Spec{Type: model.TypeAMQP091, Validation: model.Protocol{Rules: amqpcommon.Rules("AMQP 0.9.1")}, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress
