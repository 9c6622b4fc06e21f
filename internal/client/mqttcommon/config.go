package mqttcommon

import (
	"fmt"
	"strconv"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Config is the part of specificConfig the client uses (spec §1.9).
type Config struct {
	ClientID                string
	PublisherID             string
	SeparatePublisherClient bool
	CleanSession            bool
	KeepAlive               time.Duration
	LastWill                *Will
}

// Will is the last-will message.
type Will struct {
	Topic   string
	QoS     byte
	Retain  bool
	Message string
}

// ParseConfig reads the specificConfig of an MQTT 3.1.1 or MQTT 5 connection with Ditto's defaults: client id =
// connection id, clean session, keep-alive 60 s.
func ParseConfig(c *model.Connection) (Config, error) {
	sc := c.SpecificConfig
	cfg := Config{ClientID: c.ID, CleanSession: true, KeepAlive: 60 * time.Second}
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
		d, err := client.ParseDuration(v)
		if err != nil || d < 0 || d > 65535*time.Second {
			return cfg, fmt.Errorf("%w: keepAlive %q", client.ErrConfig, v)
		}
		cfg.KeepAlive = d
	}
	if t := sc["lastWillTopic"]; t != "" {
		w := &Will{Topic: t, Message: sc["lastWillMessage"]}
		if q := sc["lastWillQos"]; q != "" {
			n, err := strconv.Atoi(q)
			if err != nil || n < 0 || n > 2 {
				return cfg, fmt.Errorf("%w: lastWillQos %q", client.ErrConfig, q)
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
		return def, fmt.Errorf("%w: %s %q", client.ErrConfig, key, v)
	}
	return b, nil
}

// PublishParams are the topic (header mqtt.topic, else msg.Address), the
// QoS (header mqtt.qos, else msg.QoS, else 0) and the retain flag (header
// mqtt.retain) of an MQTT publish of msg.
func PublishParams(msg client.Message) (topic string, qos byte, retain bool) {
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
