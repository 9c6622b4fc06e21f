package mqtt

import (
	"github.com/dittoconn/dittoconn/actors/client"
	"github.com/dittoconn/dittoconn/actors/model"
)

// Spec is the connection type model.TypeMQTT.
var Spec = client.Spec{Type: model.TypeMQTT, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerSource
