package mqtt5

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/mqttcommon"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeMQTT5.
var Spec = client.Spec{Type: model.TypeMQTT5, Validation: model.Protocol{Rules: mqttcommon.Rules(mqttcommon.V5)}, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerSource
