package amqp10

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/amqpcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeAMQP10.
var Spec = client.Spec{Type: model.TypeAMQP10, Validation: validation, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress

// validation: AMQP 1.0 signs HMAC credentials with Azure's SAS only.
var validation = model.Protocol{Rules: amqpcommon.Rules("AMQP 1.0"),
	HMACAlgorithms: func(model.ValidationConfig) []string { return []string{"az-sasl"} }}
