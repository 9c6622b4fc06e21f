// Package cluster holds dittoconn's multi-node black-box tests: every test
// starts its own etcd and several dittoconn binaries as processes sharing one
// database (FerretDB on PostgreSQL, ferretpg_test.go) and talks to them over
// HTTP only: membership, routing of commands, failover, the migration
// singleton, mutual TLS between members, the clients of one connection
// spread over members. It is a package of its own so that `go test ./...`
// runs it beside the other black-box packages: these tests mostly wait for
// processes, leases and failovers. Shared helpers live in test/blackbox.
package cluster
