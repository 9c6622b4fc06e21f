package model

import (
	"errors"
	"net"
	"testing"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// blockingConfig blocks "localhost" (resolved by a fake, so that no DNS is
// asked) and one documentation subnet.
func blockingConfig() ValidationConfig {
	cfg := DefaultValidationConfig()
	cfg.BlockedHostnames = []string{"localhost"}
	cfg.BlockedSubnets = []string{"203.0.113.0/24"}
	cfg.LookupIP = func(host string) ([]net.IP, error) {
		switch host {
		case "localhost":
			return []net.IP{net.ParseIP("127.0.0.1")}, nil
		case "metadata.test":
			return []net.IP{net.ParseIP("203.0.113.9")}, nil
		case "public.test":
			return []net.IP{net.ParseIP("192.0.2.7")}, nil
		}
		return nil, errors.New("no such host")
	}
	return cfg
}

// TestDialControlChecksTheDialledAddress: the dial check sees the address
// actually dialled, whatever the name resolved to when it was validated.
func TestDialControlChecksTheDialledAddress(t *testing.T) {
	cfg := blockingConfig()
	ctl := cfg.DialControl("public.test")
	if ctl == nil {
		t.Fatal("no dial check although hosts are blocked")
	}
	if err := ctl("tcp", "192.0.2.7:443", nil); err != nil {
		t.Errorf("public address refused: %v", err)
	}
	for addr, want := range map[string]string{
		"203.0.113.5:80": "The configured host 'public.test' may not be used for the connection because the host is blocked: the hostname resolved to address 203.0.113.5 which resides in blocked subnet 203.0.113.0/24.",
		"127.0.0.1:80":   "The configured host 'public.test' may not be used for the connection because the host is blocked: the hostname resolved to a loopback address (127.0.0.1).",
		"[::1]:80":       "The configured host 'public.test' may not be used for the connection because the host is blocked: the hostname resolved to a loopback address (::1).",
		"10.1.2.3:80":    "The configured host 'public.test' may not be used for the connection because the host is blocked: the hostname resolved to a site local address (10.1.2.3).",
	} {
		err := ctl("tcp", addr, nil)
		var de *ditto.Error
		if !errors.As(err, &de) || de.Status != 400 || de.Code != ditto.CodeConfigurationInvalid || de.Message != want {
			t.Errorf("dial %s: %v, want 400 %s %q", addr, err, ditto.CodeConfigurationInvalid, want)
		}
	}
	if cfg.DialControl("hono-endpoint") != nil {
		t.Error("an allowed hostname (Ditto's default hono-endpoint) is checked at dial")
	}
	if DefaultValidationConfig().DialControl("public.test") != nil {
		t.Error("nothing blocked (Ditto's default), yet dials are checked")
	}
}

// TestValidateHostNameResolvingIntoBlockedSubnet: a name is refused for
// what it resolves to.
func TestValidateHostNameResolvingIntoBlockedSubnet(t *testing.T) {
	err := blockingConfig().ValidateHost("metadata.test")
	var de *ditto.Error
	want := "The configured host 'metadata.test' may not be used for the connection because the host is blocked: the hostname resolved to address 203.0.113.9 which resides in blocked subnet 203.0.113.0/24."
	if !errors.As(err, &de) || de.Message != want {
		t.Fatalf("ValidateHost: %v, want %q", err, want)
	}
	if err := blockingConfig().ValidateHost("public.test"); err != nil {
		t.Errorf("public host refused: %v", err)
	}
}

func TestCheckHostSettings(t *testing.T) {
	cfg := DefaultValidationConfig()
	if err := cfg.CheckHostSettings(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	cfg.BlockedSubnets = []string{"10.0.0.0/8", "10.0.0.1"}
	cfg.BlockedHostRegex = "("
	if err := cfg.CheckHostSettings(); err == nil {
		t.Fatal("a subnet without prefix length and a broken regex were accepted")
	}
}
