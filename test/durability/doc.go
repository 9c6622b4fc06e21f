// Package durability holds dittoconn's black-box tests of what survives and
// what is kept at rest: restarts, SIGKILL crashes (also in the middle of an
// encryption migration), store outages, the field encryption and its
// migration, and what a delete leaves in the store, on both engines (the
// service in-process through test/kit, or the built binary). It is a package
// of its own so that `go test ./...` runs it beside the other black-box
// packages: its tests are the longest. Shared helpers live in test/blackbox.
package durability
