// Package test holds dittoconn's black-box tests of the management plane:
// each starts the service (in-process through test/kit, or the built binary)
// and talks to it only as Ditto or an operator would, over HTTP: the APIs,
// the CLI, start-up, security, bounds on load and memory, the architecture
// rules. The multi-node tests are in test/cluster, the tests of open
// connections on real brokers in test/live, those of restarts, crashes and
// outages in test/durability and those of secrets at rest in
// test/encryption, so that `go test ./...` runs them side by side; what they
// share is in test/blackbox. It has no code of its own outside the tests.
package test
