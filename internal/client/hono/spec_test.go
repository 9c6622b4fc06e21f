package hono

import (
	"errors"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// TestFactory: the Kafka factory gets the resolved connection and its TLS
// configuration; what cannot run is a configuration error.
func TestFactory(t *testing.T) {
	var got client.Env
	kafka := client.Spec{Shape: client.PerAddress, New: func(env client.Env) (client.Client, error) {
		got = env
		return nil, nil
	}}
	conn := &model.Connection{ID: "c", ConnectionType: model.TypeHono, Sources: []model.Source{{Addresses: []string{"telemetry"}}}}
	cfg := Config{BaseURI: "ssl://hono:9093", SASLMechanism: "PLAIN", BootstrapServers: "k:9093", ValidateCertificates: true}
	if _, err := NewSpec(cfg, kafka).New(client.Env{Connection: conn}); err != nil {
		t.Fatal(err)
	}
	if got.Connection == nil || got.Connection.Sources[0].Addresses[0] != "hono.telemetry.c" || got.Connection.SpecificConfig["bootstrapServers"] != "k:9093" {
		t.Errorf("the Kafka client got %+v", got.Connection)
	}
	if got.TLS == nil || got.TLS.InsecureSkipVerify || got.TLS.ServerName != "hono" {
		t.Errorf("TLS %+v", got.TLS)
	}
	for name, f := range map[string]client.Factory{
		"not configured": NewSpec(DefaultConfig(), kafka).New,
		"no Kafka":       NewSpec(cfg, client.Spec{}).New,
	} {
		if _, err := f(client.Env{Connection: conn}); !errors.Is(err, client.ErrConfig) {
			t.Errorf("%s: %v, want a configuration error", name, err)
		}
	}
	if s := NewSpec(cfg, kafka); s.DialAddress(conn) != "k:9093" || s.Shape != client.PerAddress {
		t.Errorf("dial address %q, shape %v", s.DialAddress(conn), s.Shape)
	}
}
