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
	if cfg, _ := ParseConfig(&model.Connection{ID: "x", SpecificConfig: map[string]string{"keepAlive": "45000", "clientId": "mine"}}); cfg.KeepAlive != 45*time.Second || cfg.ClientID != "mine" {
		t.Errorf("bare milliseconds / clientId: %+v", cfg)
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

// TestKeepAliveSecondsIsGetSeconds: Ditto's reading of keepAlive, a
// Typesafe duration (bare number = milliseconds) rounded down to seconds.
func TestKeepAliveSecondsIsGetSeconds(t *testing.T) {
	for in, want := range map[string]int64{"60": 0, "999": 0, "1000": 1, "60s": 60, "1.9s": 1, "-1ms": -1, "-1s": -1, "2 minutes": 120} {
		if got, ok := KeepAliveSeconds(in); !ok || got != want {
			t.Errorf("KeepAliveSeconds(%q) = %d, %v; want %d", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "s", "60 fortnights", "1e3"} {
		if _, ok := KeepAliveSeconds(bad); ok {
			t.Errorf("KeepAliveSeconds(%q) accepted", bad)
		}
	}
}

// FuzzKeepAliveSeconds: any text is refused or gives the floor of its
// duration in seconds.
func FuzzKeepAliveSeconds(f *testing.F) {
	for _, s := range []string{"60", "60s", "-1.5 seconds", "1 d", "9999999999999h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		secs, ok := KeepAliveSeconds(s)
		if !ok {
			return
		}
		d, _ := model.ParseHoconDuration(s)
		// floor(d / 1 s) without overflowing at the saturated ends
		q, r := int64(d/time.Second), d%time.Second
		if want := q - map[bool]int64{true: 1}[r < 0]; secs != want {
			t.Fatalf("%q: %v gives %d s", s, d, secs)
		}
	})
}
