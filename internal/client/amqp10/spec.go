package amqp10

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/amqpcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeAMQP10.
var Spec = client.Spec{Type: model.TypeAMQP10, Rules: amqpcommon.Rules("AMQP 1.0"), New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress
