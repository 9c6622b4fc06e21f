package client

import (
	"errors"
	"testing"

	"github.com/dittoconn/dittoconn/internal/model"
)

func TestUserInfoAndEndpoint(t *testing.T) {
	c := &model.Connection{URI: "ssl://us%40er:p%3Ass:w@broker.example:8883/vhost"}
	u, p, ok := UserInfo(c)
	if !ok || u != "us@er" || p != "p:ss:w" {
		t.Errorf("UserInfo = %q %q %v", u, p, ok)
	}
	ep, err := ParseEndpoint(c)
	if err != nil || ep.HostPort() != "broker.example:8883" || !ep.Secure() || ep.Path != "/vhost" {
		t.Errorf("ParseEndpoint = %+v, %v", ep, err)
	}
	if _, _, ok := UserInfo(&model.Connection{URI: "tcp://onlyuser@h:1"}); ok {
		t.Error("user-info without ':' gives no credentials (Ditto)")
	}
}

func TestTLSConfig(t *testing.T) {
	if cfg, err := TLSConfig(&model.Connection{URI: "tcp://h:1883"}); cfg != nil || err != nil {
		t.Errorf("insecure scheme: %v %v", cfg, err)
	}
	cfg, err := TLSConfig(&model.Connection{URI: "ssl://h:8883", ValidateCertificates: false})
	if err != nil || !cfg.InsecureSkipVerify || cfg.ServerName != "h" {
		t.Errorf("validateCertificates=false: %+v %v", cfg, err)
	}
	if _, err := TLSConfig(&model.Connection{URI: "ssl://h:8883", CA: "not a pem", ValidateCertificates: true}); !errors.Is(err, ErrConfig) {
		t.Errorf("bad ca: %v", err)
	}
}
