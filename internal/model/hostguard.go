package model

import (
	"errors"
	"fmt"
	"net"
	"regexp"
	"strings"
	"syscall"
)

// The blocked-host rules outside connection validation: the service checks
// its settings once at start, the clients check every connect attempt
// (ValidateHost) and every dial (DialControl), because what a name resolves
// to may change after the connection was validated.

// CheckHostSettings refuses blocked subnets that are not CIDR and a blocked
// host regex that does not compile: the service does not start with a
// block list it cannot apply.
func (cfg ValidationConfig) CheckHostSettings() error {
	var errs []error
	for _, s := range cfg.BlockedSubnets {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if _, _, err := net.ParseCIDR(s); err != nil {
			errs = append(errs, fmt.Errorf("blocked subnet %q is not in CIDR notation (e.g. 10.0.0.0/8)", s))
		}
	}
	if _, err := regexp.Compile(cfg.BlockedHostRegex); err != nil {
		errs = append(errs, fmt.Errorf("blocked host regex %q: %v", cfg.BlockedHostRegex, err))
	}
	return errors.Join(errs...)
}

// ValidateHost is Ditto's host validation of one host name or address: nil
// when it may be connected to, else Ditto's 400
// connectivity:connection.configuration.invalid.
func (cfg ValidationConfig) ValidateHost(host string) error {
	return (&validator{cfg: cfg}).validateHost(host)
}

// DialControl is a net.Dialer Control that refuses to connect to an address
// the host validation forbids for host (the name the connection
// configures, which the allowed hostnames are matched against): it sees the
// address actually dialled, so a name that resolves elsewhere after
// validation is still refused. nil when nothing needs checking (no blocked
// hostnames, as Ditto permits every address then, or host is allowed). The
// blocked hostnames are resolved once, here.
func (cfg ValidationConfig) DialControl(host string) func(network, address string, c syscall.RawConn) error {
	v := &validator{cfg: cfg}
	blocked := v.blockedAddresses()
	if len(blocked) == 0 {
		return nil
	}
	for _, a := range cfg.AllowedHostnames {
		if strings.TrimSpace(a) == host {
			return nil
		}
	}
	return func(network, address string, _ syscall.RawConn) error {
		h, _, err := net.SplitHostPort(address)
		if err != nil {
			h = address
		}
		ip := net.ParseIP(h)
		if ip == nil {
			return fmt.Errorf("dialing %s: not an IP address", address)
		}
		return v.checkIP(host, ip, blocked)
	}
}
