package httppush

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeHTTPPush.
var Spec = client.Spec{Type: model.TypeHTTPPush, Validation: validation, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress

// validation: HTTP push signs HMAC credentials with the service's
// algorithms and is the one type that takes OAuth credentials.
var validation = model.Protocol{Rules: validate, OAuth: true,
	HMACAlgorithms: func(cfg model.ValidationConfig) []string { return cfg.HMACAlgorithms }}
