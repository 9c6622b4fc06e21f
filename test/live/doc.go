// Package live holds dittoconn's black-box tests of open connections on real
// brokers (Mosquitto, RabbitMQ with AMQP 0.9.1 and 1.0, Kafka in-process,
// HTTP push servers of the test's own): the live clients connecting,
// reconnecting and reporting status, and the data plane through them —
// mapping, routing, metrics, logs, order and poison payloads. The service
// runs in-process through test/kit. It is a package of its own so that
// `go test ./...` runs it beside the other black-box packages; shared
// helpers live in test/blackbox.
package live
