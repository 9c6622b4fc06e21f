package client

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/dittoconn/dittoconn/internal/model"
)

// MQTTConfig is the part of specificConfig the client uses (spec §1.9).
type MQTTConfig struct {
	ClientID                string
	PublisherID             string
	SeparatePublisherClient bool
	CleanSession            bool
	KeepAlive               time.Duration
	LastWill                *MQTTWill
}

// MQTTWill is the last-will message.
type MQTTWill struct {
	Topic   string
	QoS     byte
	Retain  bool
	Message string
}

// ParseMQTTConfig reads the specificConfig of an MQTT 3.1.1 or MQTT 5 connection with Ditto's defaults: client id =
// connection id, clean session, keep-alive 60 s.
func ParseMQTTConfig(c *model.Connection) (MQTTConfig, error) {
	sc := c.SpecificConfig
	cfg := MQTTConfig{ClientID: c.ID, CleanSession: true, KeepAlive: 60 * time.Second}
	if v := sc["clientId"]; v != "" {
		cfg.ClientID = v
	}
	cfg.PublisherID = sc["publisherId"]
	var err error
	if cfg.SeparatePublisherClient, err = boolOf(sc, "separatePublisherClient", false); err != nil {
		return cfg, err
	}
	if cfg.CleanSession, err = boolOf(sc, "cleanSession", true); err != nil {
		return cfg, err
	}
	if v := sc["keepAlive"]; v != "" {
		d, err := ParseDuration(v)
		if err != nil || d < 0 || d > 65535*time.Second {
			return cfg, fmt.Errorf("%w: keepAlive %q", ErrConfig, v)
		}
		cfg.KeepAlive = d
	}
	if t := sc["lastWillTopic"]; t != "" {
		w := &MQTTWill{Topic: t, Message: sc["lastWillMessage"]}
		if q := sc["lastWillQos"]; q != "" {
			n, err := strconv.Atoi(q)
			if err != nil || n < 0 || n > 2 {
				return cfg, fmt.Errorf("%w: lastWillQos %q", ErrConfig, q)
			}
			w.QoS = byte(n)
		}
		if w.Retain, err = boolOf(sc, "lastWillRetain", false); err != nil {
			return cfg, err
		}
		cfg.LastWill = w
	}
	return cfg, nil
}

func boolOf(sc map[string]string, key string, def bool) (bool, error) {
	v, ok := sc[key]
	if !ok || v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return def, fmt.Errorf("%w: %s %q", ErrConfig, key, v)
	}
	return b, nil
}

// ParseDuration reads a duration as Ditto's config does: "30s", "1m", "500ms"
// or a bare number of seconds.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	return time.ParseDuration(s)
}

// MQTTPublishParams are the topic (header mqtt.topic, else msg.Address), the
// QoS (header mqtt.qos, else msg.QoS, else 0) and the retain flag (header
// mqtt.retain) of an MQTT publish of msg.
func MQTTPublishParams(msg Message) (topic string, qos byte, retain bool) {
	topic = msg.Address
	if t := msg.Headers["mqtt.topic"]; t != "" {
		topic = t
	}
	q := 0
	if msg.QoS != nil {
		q = *msg.QoS
	}
	if n, err := strconv.Atoi(msg.Headers["mqtt.qos"]); err == nil && n >= 0 && n <= 2 {
		q = n
	}
	retain, _ = strconv.ParseBool(msg.Headers["mqtt.retain"])
	return topic, byte(q), retain
}
