package client

import (
	"errors"
	"fmt"
	"net/url"
	"syscall"

	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// HostPolicy is the service's blocked-host rules (Ditto's blocked and
// allowed hostnames, blocked subnets and host regex);
// model.ValidationConfig implements it.
type HostPolicy interface {
	// ValidateHost answers nil when host may be connected to, else Ditto's
	// error.
	ValidateHost(host string) error
	// DialControl is a net.Dialer Control refusing the addresses forbidden
	// for the configured host, or nil when none is.
	DialControl(host string) func(network, address string, c syscall.RawConn) error
}

var _ HostPolicy = model.ValidationConfig{}

// DialControl is env.Hosts' dial check for host, nil when there is none:
// clients set it as their net.Dialer's Control.
func (env Env) DialControl(host string) func(network, address string, c syscall.RawConn) error {
	if env.Hosts == nil {
		return nil
	}
	return env.Hosts.DialControl(host)
}

// Guarded is s whose factories first validate the connection's host, and
// its SSH tunnel's host when it has one, against p, on every connect
// attempt and every test (the grain builds a client for each), since the
// host was validated when the connection was stored and its name may
// resolve elsewhere now; the clients get p as Env.Hosts for their dials.
// Types whose URI has no host are not checked. Guarded must wrap the SSH
// tunnel's factories, not be wrapped by them: a tunnelled client's URI
// points at the tunnel's loopback end, and the tunnel clears Env.Hosts
// for it.
func (s Specs) Guarded(p HostPolicy) Specs {
	out := make(Specs, len(s))
	for t, spec := range s {
		if f := spec.New; f != nil {
			noHost := spec.Validation.NoHost
			spec.New = func(env Env) (Client, error) {
				env.Hosts = p
				if c := env.Connection; c != nil && !noHost {
					if ep, err := ParseEndpoint(c); err == nil {
						if err := p.ValidateHost(ep.Host); err != nil {
							return nil, HostRefused("", err)
						}
					}
				}
				if t := env.Connection; t != nil && t.SSHTunnel != nil && t.SSHTunnel.Enabled {
					if u, err := url.Parse(t.SSHTunnel.URI); err == nil && u.Hostname() != "" {
						if err := p.ValidateHost(u.Hostname()); err != nil {
							return nil, HostRefused("SSH tunnel: ", err)
						}
					}
				}
				return f(env)
			}
		}
		out[t] = spec
	}
	return out
}

// HostRefused is the client error of a host HostPolicy refused (err), for
// what ("" or "token endpoint: "): a configuration error with Ditto's
// message.
func HostRefused(what string, err error) error {
	var de *ditto.Error
	if errors.As(err, &de) {
		return fmt.Errorf("%w: %s%s", ErrConfig, what, de.Message)
	}
	return fmt.Errorf("%w: %s%v", ErrConfig, what, err)
}
