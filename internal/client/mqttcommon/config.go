package mqttcommon

import (
	"fmt"
	"strconv"
	"strings"
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
	// ReconnectForRedelivery: after a message was settled with Redeliver
	// (its PUBACK withheld), the consuming client reconnects after
	// ReconnectForRedeliveryDelay so that the broker redelivers it from the
	// persistent session.
	ReconnectForRedelivery      bool
	ReconnectForRedeliveryDelay time.Duration
	// SessionExpiry is how long an MQTT 5 broker keeps the session of a
	// client that connected without a clean session (MQTT 3.1.1 sessions
	// never expire).
	SessionExpiry time.Duration
}

// Defaults are the service-wide defaults of the specificConfig settings,
// from Ditto's environment variables with Ditto's defaults
// (connectivity.conf, ditto.connectivity.mqtt).
type Defaults struct {
	CleanSession                bool          // CONNECTIVITY_MQTT_CLEAN_SESSION, false
	ReconnectForRedelivery      bool          // CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY, false
	ReconnectForRedeliveryDelay time.Duration // CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY_DELAY, 10s
	SessionExpiry               time.Duration // CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL, 60s
	SeparatePublisherClient     bool          // CONNECTIVITY_MQTT_SEPARATE_PUBLISHER_CLIENT, false
}

// minRedeliveryDelay is the least reconnectForRedeliveryDelay, as in Ditto
// (a shorter one is raised to it).
const minRedeliveryDelay = time.Second

// ReadDefaults reads the Defaults from getenv (client.Getenv in production);
// a value that does not parse is an error naming the variable.
func ReadDefaults(getenv func(string) string) (Defaults, error) {
	d := Defaults{ReconnectForRedeliveryDelay: 10 * time.Second, SessionExpiry: 60 * time.Second}
	for _, b := range []struct {
		env string
		dst *bool
	}{
		{"CONNECTIVITY_MQTT_CLEAN_SESSION", &d.CleanSession},
		{"CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY", &d.ReconnectForRedelivery},
		{"CONNECTIVITY_MQTT_SEPARATE_PUBLISHER_CLIENT", &d.SeparatePublisherClient},
	} {
		if v := strings.TrimSpace(getenv(b.env)); v != "" {
			x, err := strconv.ParseBool(v)
			if err != nil {
				return d, fmt.Errorf("%w: %s=%q is not a boolean", client.ErrConfig, b.env, v)
			}
			*b.dst = x
		}
	}
	for _, t := range []struct {
		env string
		dst *time.Duration
	}{
		{"CONNECTIVITY_MQTT_RECONNECT_FOR_REDELIVERY_DELAY", &d.ReconnectForRedeliveryDelay},
		{"CONNECTIVITY_MQTT_SESSION_EXPIRY_INTERVAL", &d.SessionExpiry},
	} {
		if v := getenv(t.env); v != "" {
			x, ok := model.ParseHoconDuration(v)
			if !ok || x < 0 {
				return d, fmt.Errorf("%w: %s=%q is not a duration", client.ErrConfig, t.env, v)
			}
			*t.dst = x
		}
	}
	return d, nil
}

// Will is the last-will message.
type Will struct {
	Topic   string
	QoS     byte
	Retain  bool
	Message string
}

// ParseConfig reads the specificConfig of an MQTT 3.1.1 or MQTT 5
// connection with Ditto's defaults: client id = connection id, keep-alive
// 60 s, and the service-wide Defaults from the environment (persistent
// session, no reconnect for redelivery, …).
func ParseConfig(c *model.Connection) (Config, error) {
	d, err := ReadDefaults(client.Getenv)
	if err != nil {
		return Config{}, err
	}
	return parseConfig(c, d)
}

// KeepAliveSeconds reads specificConfig keepAlive as Ditto does, for the
// validation and the clients alike: a Typesafe duration (a bare number is
// milliseconds, so "60" is 60 ms) whose whole seconds, rounded down as
// java.time.Duration.getSeconds does, go into CONNECT ("60" gives 0: no
// keep-alive). ok is false when the text is no duration.
func KeepAliveSeconds(v string) (secs int64, ok bool) {
	d, ok := model.ParseHoconDuration(v)
	if !ok {
		return 0, false
	}
	secs = int64(d / time.Second)
	if d < 0 && d%time.Second != 0 {
		secs-- // floor, as getSeconds
	}
	return secs, true
}

func parseConfig(c *model.Connection, d Defaults) (Config, error) {
	sc := c.SpecificConfig
	cfg := Config{ClientID: c.ID, CleanSession: d.CleanSession, KeepAlive: 60 * time.Second,
		ReconnectForRedeliveryDelay: d.ReconnectForRedeliveryDelay, SessionExpiry: d.SessionExpiry}
	if v := sc["clientId"]; v != "" {
		cfg.ClientID = v
	}
	cfg.PublisherID = sc["publisherId"]
	var err error
	if cfg.SeparatePublisherClient, err = boolOf(sc, "separatePublisherClient", d.SeparatePublisherClient); err != nil {
		return cfg, err
	}
	if cfg.CleanSession, err = boolOf(sc, "cleanSession", d.CleanSession); err != nil {
		return cfg, err
	}
	if cfg.ReconnectForRedelivery, err = boolOf(sc, "reconnectForRedelivery", d.ReconnectForRedelivery); err != nil {
		return cfg, err
	}
	if v := sc["reconnectForRedeliveryDelay"]; v != "" {
		dur, ok := model.ParseHoconDuration(v)
		if !ok {
			return cfg, fmt.Errorf("%w: reconnectForRedeliveryDelay %q", client.ErrConfig, v)
		}
		cfg.ReconnectForRedeliveryDelay = dur
	}
	cfg.ReconnectForRedeliveryDelay = max(cfg.ReconnectForRedeliveryDelay, minRedeliveryDelay)
	if v := sc["keepAlive"]; v != "" {
		secs, ok := KeepAliveSeconds(v)
		if !ok || secs < 0 || secs > 65535 {
			return cfg, fmt.Errorf("%w: keepAlive %q", client.ErrConfig, v)
		}
		cfg.KeepAlive = time.Duration(secs) * time.Second
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

// Match reports whether topic matches the MQTT topic filter. A shared
// subscription's filter ("$share/<group>/<filter>", MQTT 5 §4.8.2) matches
// as its <filter>: the broker delivers the publication's own topic.
func Match(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if _, f, ok := strings.Cut(rest, "/"); ok {
			filter = f
		}
	}
	fs, ts := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, f := range fs {
		switch {
		case f == "#":
			return true
		case i >= len(ts):
			return false
		case f != "+" && f != ts[i]:
			return false
		}
	}
	return len(fs) == len(ts)
}
