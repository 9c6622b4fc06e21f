package clients

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/hono"
	"github.com/dittoconn/dittoconn/internal/model"
)

func TestDefaultHasAClientPerLiveType(t *testing.T) {
	var got []string
	for typ, f := range Default() {
		if f == nil {
			t.Errorf("%s: nil factory", typ)
		}
		got = append(got, typ)
	}
	slices.Sort(got)
	want := []string{model.TypeAMQP091, model.TypeAMQP10, model.TypeHono, model.TypeHTTPPush, model.TypeKafka, model.TypeMQTT, model.TypeMQTT5}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("types with a client %q, want %q", got, want)
	}
	if _, ok := Specs()[model.TypeHono]; !ok {
		t.Fatal("hono is not a known type")
	}
}

func TestDialAddress(t *testing.T) {
	s := Specs()
	for _, tc := range []struct {
		c    model.Connection
		want string
	}{
		{model.Connection{ConnectionType: model.TypeMQTT, URI: "tcp://u:p@broker:1883"}, "broker:1883"},
		{model.Connection{ConnectionType: model.TypeKafka, URI: "tcp://h:1",
			SpecificConfig: map[string]string{"bootstrapServers": "k1:9092, k2:9092"}}, "k1:9092"},
		{model.Connection{ConnectionType: model.TypeKafka, URI: "tcp://h:1"}, "h:1"},
		// Hono's endpoint is the service's, never the connection's URI (none here: not configured)
		{model.Connection{ConnectionType: model.TypeHono, URI: "amqps://hono:5671"}, ""},
		{model.Connection{ConnectionType: model.TypeAMQP091, URI: "::"}, ""},
	} {
		if got := s.DialAddress(&tc.c); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.c.ConnectionType, tc.c.URI, got, tc.want)
		}
	}
}

func TestExpectedSources(t *testing.T) {
	src := []model.Source{{Addresses: []string{"a", "b"}, ConsumerCount: 2}, {Addresses: []string{"c"}, ConsumerCount: 1}}
	for _, tc := range []struct {
		typ     string
		clients int
		want    int
	}{
		{model.TypeMQTT, 1, 3},     // one consumer per source: 2 + 1
		{model.TypeMQTT5, 2, 6},    // × clientCount
		{model.TypeAMQP091, 1, 5},  // per address: 2×2 + 1
		{model.TypeAMQP091, 3, 15}, // × clientCount
		{model.TypeKafka, 1, 5},
		{model.TypeAMQP10, 1, 5},
	} {
		c := &model.Connection{ConnectionType: tc.typ, ClientCount: tc.clients, Sources: src}
		if got := Specs().ExpectedSources(c); got != tc.want {
			t.Errorf("%s × %d clients: %d sources, want %d", tc.typ, tc.clients, got, tc.want)
		}
	}
}

// TestExamplesValidate: Ditto's example connections of the model's golden
// files pass the whole validation, the types' own rules included.
func TestExamplesValidate(t *testing.T) {
	for _, n := range []string{"mqtt", "amqp091", "kafka", "httppush"} {
		in, err := os.ReadFile("../../model/testdata/" + n + ".input.json")
		if err != nil {
			t.Fatal(err)
		}
		c, err := model.ParseCommand(in)
		if err != nil {
			t.Fatalf("%s: %v", n, err)
		}
		if err := model.Validate(c, model.DefaultValidationConfig(), Specs()); err != nil {
			t.Errorf("%s should validate: %v", n, err)
		}
	}
}

// TestEveryTypeHasRules: the table knows the rules of every connection
// type the model parses, so no valid connection is refused as unknown.
func TestEveryTypeHasRules(t *testing.T) {
	for _, typ := range []string{model.TypeAMQP091, model.TypeAMQP10, model.TypeMQTT, model.TypeMQTT5,
		model.TypeKafka, model.TypeHTTPPush, model.TypeHono} {
		if p, ok := Specs().Protocol(typ); !ok || p.Rules == nil {
			t.Errorf("%s has no validation rules", typ)
		}
	}
	c := &model.Connection{ID: "c1", ConnectionType: "nope"}
	if err := model.Validate(c, model.DefaultValidationConfig(), Specs()); err == nil || !strings.Contains(err.Error(), "Unknown connection type: nope") {
		t.Errorf("unknown type: %v", err)
	}
}

// TestPrepare: clients run a hono connection as the Kafka connection it
// resolves to, other types as they are; an unconfigured Hono is a
// configuration error naming the reason.
func TestPrepare(t *testing.T) {
	mq := &model.Connection{ID: "m", ConnectionType: model.TypeMQTT, URI: "ssl://b:8883", ValidateCertificates: true}
	c, tc, err := Specs().Prepare(mq)
	if err != nil || c != mq || tc == nil || tc.ServerName != "b" {
		t.Errorf("mqtt: %v %v %v", c, tc, err)
	}
	h := &model.Connection{ID: "h", ConnectionType: model.TypeHono, Sources: []model.Source{{Addresses: []string{"event"}}}}
	c, _, err = Specs().Prepare(h)
	if !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), "HONO_CONNECTION_BOOTSTRAP_SERVERS is not set") || c != h {
		t.Errorf("unconfigured hono: %v, %v", c, err)
	}
	s := Specs()
	s[model.TypeHono] = Hono(hono.Config{BaseURI: "ssl://hono:9093", SASLMechanism: "PLAIN", BootstrapServers: "k:9093"})
	c, tc, err = s.Prepare(h)
	if err != nil || c.URI != "ssl://hono:9093" || c.Sources[0].Addresses[0] != "hono.event.h" || tc == nil || !tc.InsecureSkipVerify {
		t.Errorf("configured hono: %+v %v %v", c, tc, err)
	}
	if h.URI != "" || h.Sources[0].Addresses[0] != "event" {
		t.Errorf("the stored connection changed: %+v", h)
	}
}
