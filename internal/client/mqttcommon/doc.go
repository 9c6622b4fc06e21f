// Package mqttcommon is what MQTT 3.1.1 (internal/client/mqtt) and MQTT 5
// (internal/client/mqtt5) share and neither may import from the other:
// Ditto's validation rules of both types, the client settings read from
// specificConfig with Ditto's defaults, and the topic, QoS and retain flag
// of a publish. It holds no state; everything in it is safe for concurrent
// use.
package mqttcommon
