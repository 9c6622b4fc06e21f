// Package blackbox is what the black-box test packages (test, test/cluster,
// test/live, test/durability, test/encryption) share: the TestMain that
// provides a MongoDB-wire server, fixtures and JSON assertions, the built
// binary as a process, local brokers of a test's own (Mosquitto, a cuttable
// TCP proxy, an MQTT publisher), the count of numbered messages arriving at
// a target, the field-encryption keys and checks, and a throw-away PKI. It
// is imported by tests only. The black-box tests are split into packages so
// that `go test ./...` runs them side by side (one package took 17 minutes
// alone); each test binary builds cmd/dittoconn once (BuildBinary).
package blackbox
