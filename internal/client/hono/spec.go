// Package hono is the connection type hono: Eclipse Hono's messaging
// reached through Ditto's aliases. This build has no client for it (its
// connections only change their desired status), so its Spec carries the
// validation rules alone.
package hono

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeHono.
var Spec = client.Spec{Type: model.TypeHono, Rules: validate}
