// Package test holds dittoconn's black-box tests: each starts the service
// (in-process through test/kit, or the built binary) and talks to it only as
// Ditto or an operator would, over HTTP and the real brokers. It has no code
// of its own outside the tests.
package test
