package httppush

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeHTTPPush.
var Spec = client.Spec{Type: model.TypeHTTPPush, Rules: validate, New: New, Shape: shape}

// shape of the source entries.
const shape = client.PerAddress
