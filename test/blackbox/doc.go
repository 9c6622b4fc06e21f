// Package blackbox is what the black-box test packages (test, test/cluster,
// test/live) share: the TestMain that provides a MongoDB-wire server,
// fixtures and JSON assertions, the built binary as a process, local brokers
// of a test's own (Mosquitto, a cuttable TCP proxy, an MQTT publisher), the
// field-encryption keys and checks, and a throw-away PKI. It is imported by
// tests only; the test packages are split so that `go test ./...` runs them
// in parallel, and each test binary builds cmd/dittoconn once (BuildBinary).
package blackbox
