package amqp10

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeAMQP10.
var Spec = client.Spec{Type: model.TypeAMQP10, Validation: validation, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress

// validation: AMQP 1.0 signs HMAC credentials with Azure's SAS only and
// takes only the specificConfig keys it acts on.
var validation = model.Protocol{Rules: rules,
	HMACAlgorithms: func(model.ValidationConfig) []string { return []string{"az-sasl"} }}
