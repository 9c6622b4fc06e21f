package client

import (
	"crypto/tls"
	"fmt"
	"net/url"

	"github.com/dittoconn/dittoconn/internal/model"
)

// Spec is what the service knows of one connection type beyond the
// connection model: its validation rules, its client, the shape of its
// status and the endpoint a test dials. A protocol folder declares its Spec
// beside its client (one folder per protocol); internal/client/clients
// lists them all.
type Spec struct {
	// Type is the connection type (model.TypeMQTT, …).
	Type string
	// Validation is what model.Validate knows of the type: what the shared
	// rules allow it and its own rules.
	Validation model.Protocol
	// New builds the live client; nil for a type without one (its
	// connections only change their desired status).
	New Factory
	// Shape of the source entries a client of the type reports.
	Shape Shape
	// DialAddress is the host:port of the endpoint that testConnection dials
	// for a type without a live client and that errors name; nil: the URI's.
	DialAddress func(c *model.Connection) string
	// Resolve is the connection the type's clients and data plane run, for
	// a type that runs as another (hono as kafka); nil: the connection
	// itself. It must not modify c, and resolving its own result must
	// change nothing.
	Resolve func(c *model.Connection) (*model.Connection, error)
}

// Specs are the known connection types by name.
type Specs map[string]Spec

// NewSpecs indexes specs by type.
func NewSpecs(specs ...Spec) Specs {
	out := make(Specs, len(specs))
	for _, s := range specs {
		out[s.Type] = s
	}
	return out
}

// Protocol is the validation entry of connectionType: Specs is the
// model.Protocols table of model.Validate.
func (s Specs) Protocol(connectionType string) (model.Protocol, bool) {
	spec, ok := s[connectionType]
	return spec.Validation, ok
}

// Registry is the factories of the types with a live client.
func (s Specs) Registry() Registry {
	r := Registry{}
	for t, spec := range s {
		if spec.New != nil {
			r[t] = spec.New
		}
	}
	return r
}

// Factory is the live client factory of type typ, if it has one.
func (s Specs) Factory(typ string) (Factory, bool) {
	spec, ok := s[typ]
	return spec.New, ok && spec.New != nil
}

// With is a copy of s whose factories for the types of r are r's (tests
// put instrumented clients in place this way); other types keep theirs.
func (s Specs) With(r Registry) Specs {
	out := make(Specs, len(s)+len(r))
	for t, spec := range s {
		out[t] = spec
	}
	for t, f := range r {
		spec := out[t]
		spec.Type, spec.New = t, f
		out[t] = spec
	}
	return out
}

// DialAddress is the host:port a test of c connects to and its errors
// name: the type's own, else the URI's ("" when there is none).
func (s Specs) DialAddress(c *model.Connection) string {
	if spec, ok := s[c.ConnectionType]; ok && spec.DialAddress != nil {
		return spec.DialAddress(c)
	}
	return URIHostPort(c)
}

// Prepare is what the clients and data plane of c run on: c as its type
// resolves it (Spec.Resolve; c itself for most types) and the TLS
// configuration of the result. On an error the connection is c and the
// error wraps ErrConfig: the clients fail misconfigured with the reason.
func (s Specs) Prepare(c *model.Connection) (*model.Connection, *tls.Config, error) {
	if spec, ok := s[c.ConnectionType]; ok && spec.Resolve != nil {
		r, err := spec.Resolve(c)
		if err != nil {
			return c, nil, fmt.Errorf("%w: %s: %v", ErrConfig, c.ConnectionType, err)
		}
		c = r
	}
	cfg, err := TLSConfig(c)
	return c, cfg, err
}

// URIHostPort is the host:port of c's URI, "" when it has none.
func URIHostPort(c *model.Connection) string {
	u, err := url.Parse(c.URI)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Host
}

// ExpectedSources is how many source entries the clients of a desired-open
// c report together: per client and consumer one per address, or for a
// PerSource type one per source.
func (s Specs) ExpectedSources(c *model.Connection) int {
	perSource := s[c.ConnectionType].Shape == PerSource
	n := 0
	for _, src := range c.Sources {
		k := max(src.ConsumerCount, 1)
		if !perSource {
			k *= len(src.Addresses)
		}
		n += k
	}
	return n * max(c.ClientCount, 1)
}
