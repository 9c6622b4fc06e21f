// Package encryption holds dittoconn's black-box tests of secrets at rest:
// the field encryption on both engines, its migration singleton (key
// rotation, dry run, abort and resume, a SIGKILL in the middle of a run),
// and what a delete leaves in the store. It is a package of its own so that
// `go test ./...` runs it beside the other black-box packages: its tests
// migrate a thousand connections and are among the longest. Shared helpers
// live in test/blackbox.
package encryption
