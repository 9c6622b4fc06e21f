package mqttcommon

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

func TestParseConfig(t *testing.T) {
	c := &model.Connection{ID: "conn-1", SpecificConfig: map[string]string{
		"keepAlive": "30s", "cleanSession": "false", "lastWillTopic": "lw", "lastWillQos": "1", "lastWillMessage": "bye", "lastWillRetain": "true"}}
	cfg, err := ParseConfig(c)
	if err != nil || cfg.ClientID != "conn-1" || cfg.KeepAlive != 30*time.Second || cfg.CleanSession ||
		cfg.LastWill == nil || cfg.LastWill.QoS != 1 || cfg.LastWill.Message != "bye" || !cfg.LastWill.Retain {
		t.Errorf("ParseConfig = %+v %v", cfg, err)
	}
	if cfg, _ := ParseConfig(&model.Connection{ID: "x", SpecificConfig: map[string]string{"keepAlive": "45", "clientId": "mine"}}); cfg.KeepAlive != 45*time.Second || cfg.ClientID != "mine" {
		t.Errorf("bare seconds / clientId: %+v", cfg)
	}
	for _, bad := range []map[string]string{{"keepAlive": "70000s"}, {"lastWillTopic": "t", "lastWillQos": "3"}, {"cleanSession": "maybe"}} {
		if _, err := ParseConfig(&model.Connection{ID: "x", SpecificConfig: bad}); !errors.Is(err, client.ErrConfig) {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

func TestPublishParams(t *testing.T) {
	two := 2
	for _, tc := range []struct {
		msg    client.Message
		topic  string
		qos    byte
		retain bool
	}{
		{client.Message{Address: "a/b"}, "a/b", 0, false},
		{client.Message{Address: "a/b", QoS: &two}, "a/b", 2, false},
		{client.Message{Address: "a/b", QoS: &two, Headers: map[string]string{"mqtt.qos": "1", "mqtt.topic": "x", "mqtt.retain": "true"}}, "x", 1, true},
		{client.Message{Address: "a/b", Headers: map[string]string{"mqtt.qos": "7"}}, "a/b", 0, false},
	} {
		topic, qos, retain := PublishParams(tc.msg)
		if topic != tc.topic || qos != tc.qos || retain != tc.retain {
			t.Errorf("%+v: %q %d %v", tc.msg, topic, qos, retain)
		}
	}
}

func TestDefaults(t *testing.T) {
	d, err := ReadDefaults(func(string) string { return "" })
	if err != nil || d != (Defaults{ReconnectForRedeliveryDelay: 10 * time.Second, SessionExpiry: 60 * time.Second}) {
		t.Fatalf("Ditto's defaults: %+v %v", d, err)
	}
	cfg, err := parseConfig(&model.Connection{ID: "x"}, d)
	if err != nil || cfg.CleanSession || cfg.ReconnectForRedelivery || cfg.SeparatePublisherClient ||
		cfg.ReconnectForRedeliveryDelay != 10*time.Second || cfg.SessionExpiry != time.Minute {
		t.Fatalf("config from the defaults: %+v %v", cfg, err)
	}
	env := map[string]string{
		"CONNECTIVITY_MQTT_CLEAN_SESSION": "true", "CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY": "true",
		"CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY_DELAY": "2s", "CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL": "5m",
		"CONNECTIVITY_MQTT_SEPARATE_PUBLISHER_CLIENT": "true",
	}
	d, err = ReadDefaults(func(k string) string { return env[k] })
	if err != nil || d != (Defaults{true, true, 2 * time.Second, 5 * time.Minute, true}) {
		t.Fatalf("defaults from the environment: %+v %v", d, err)
	}
	cfg, err = parseConfig(&model.Connection{ID: "x", SpecificConfig: map[string]string{
		"cleanSession": "false", "reconnectForRedelivery": "false", "separatePublisherClient": "false",
		"reconnectForRedeliveryDelay": "100ms"}}, d)
	if err != nil || cfg.CleanSession || cfg.ReconnectForRedelivery || cfg.SeparatePublisherClient ||
		cfg.ReconnectForRedeliveryDelay != time.Second {
		t.Fatalf("specificConfig over the defaults (delay raised to 1s): %+v %v", cfg, err)
	}
	for k, v := range map[string]string{"CONNECTIVITY_MQTT_CLEAN_SESSION": "maybe", "CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL": "soon"} {
		if _, err := ReadDefaults(func(key string) string {
			if key == k {
				return v
			}
			return ""
		}); !errors.Is(err, client.ErrConfig) || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	if _, err := parseConfig(&model.Connection{ID: "x", SpecificConfig: map[string]string{"reconnectForRedeliveryDelay": "later"}}, d); !errors.Is(err, client.ErrConfig) {
		t.Errorf("bad reconnectForRedeliveryDelay: %v", err)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true}, {"a/+", "a/b", true}, {"a/#", "a/b/c", true}, {"a/+", "a/b/c", false},
		{"a/b", "a/c", false}, {"a/b/c", "a/b", false}, {"#", "x", true},
		// shared subscriptions match as their filter
		{"$share/g/a/+", "a/b", true}, {"$share/g/a/b", "a/b", true}, {"$share/g/#", "x/y", true},
		{"$share/g/a/b", "a/c", false}, {"$share/g/a/b", "$share/g/a/b", false},
	} {
		if got := Match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.filter, tc.topic, got)
		}
	}
}
