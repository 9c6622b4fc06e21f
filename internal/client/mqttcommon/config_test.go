package mqttcommon

import (
	"errors"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

func TestParseConfig(t *testing.T) {
	c := &model.Connection{ID: "conn-1", SpecificConfig: map[string]string{
		"keepAlive": "30s", "cleanSession": "false", "lastWillTopic": "lw", "lastWillQos": "1", "lastWillMessage": "bye"}}
	cfg, err := ParseConfig(c)
	if err != nil || cfg.ClientID != "conn-1" || cfg.KeepAlive != 30*time.Second || cfg.CleanSession ||
		cfg.LastWill == nil || cfg.LastWill.QoS != 1 || cfg.LastWill.Message != "bye" {
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
