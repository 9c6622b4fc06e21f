// Package durability holds dittoconn's black-box tests of what survives:
// restarts on the same store, SIGKILL crashes under load, and store outages,
// on both engines (the service in-process through test/kit, or the built
// binary). It is a package of its own so that `go test ./...` runs it beside
// the other black-box packages: its tests are among the longest. Shared
// helpers live in test/blackbox.
package durability
