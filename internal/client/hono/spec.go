// Package hono is the connection type hono: Eclipse Hono's messaging
// reached through Ditto's aliases. This build has no client for it (its
// connections only change their desired status), so its Spec carries the
// validation rules alone.
package hono

import (
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is the connection type model.TypeHono: its URI's host is not
// checked against the blocked hosts (Ditto takes Hono's endpoint from its
// own configuration).
var Spec = client.Spec{Type: model.TypeHono, Validation: model.Protocol{Rules: validate, NoHost: true}}
