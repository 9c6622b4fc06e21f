package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestBlockedHostSettings: Ditto's blocked-host and OAuth variables reach
// the validation and the HTTP push clients; a subnet that is not CIDR stops
// the service.
func TestBlockedHostSettings(t *testing.T) {
	env := map[string]string{
		"CONNECTIVITY_CONNECTION_BLOCKED_HOSTNAMES":  "localhost, metadata",
		"CONNECTIVITY_CONNECTION_ALLOWED_HOSTNAMES":  "broker",
		"CONNECTIVITY_CONNECTION_BLOCKED_SUBNETS":    "10.0.0.0/8,169.254.0.0/16",
		"CONNECTIVITY_CONNECTION_BLOCKED_HOST_REGEX": `.*\.internal`,
		"CONNECTIVITY_HTTP_OAUTH2_ENFORCE_HTTPS":     "false",
		"CONNECTIVITY_HTTP_OAUTH2_MAX_CLOCK_SKEW":    "30s",
	}
	cfg, err := parseConfig(nil, func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	v := cfg.Actors.Validation
	if !slices.Equal(v.BlockedHostnames, []string{"localhost", "metadata"}) || !slices.Equal(v.AllowedHostnames, []string{"broker"}) ||
		!slices.Equal(v.BlockedSubnets, []string{"10.0.0.0/8", "169.254.0.0/16"}) || v.BlockedHostRegex != `.*\.internal` ||
		v.OAuth2EnforceHTTPS || cfg.HTTPPush.TokenSkew != 30*time.Second {
		t.Fatalf("settings not applied: %+v, skew %v", v, cfg.HTTPPush.TokenSkew)
	}
	d, err := parseConfig(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if dv := d.Actors.Validation; len(dv.BlockedHostnames) != 0 || !slices.Equal(dv.AllowedHostnames, []string{"hono-endpoint"}) || !dv.OAuth2EnforceHTTPS {
		t.Fatalf("defaults are not Ditto's: %+v", dv)
	}
	env["CONNECTIVITY_CONNECTION_BLOCKED_SUBNETS"] = "10.0.0.1"
	if _, err := parseConfig(nil, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), `"10.0.0.1" is not in CIDR notation`) {
		t.Fatalf("a subnet without prefix length: %v", err)
	}
}
