// Package connection is the connection grain: one event-sourced virtual actor
// per connection id, which answers Ditto's connectivity commands, keeps the
// connection's journal in Ditto's document format, and runs its broker
// clients.
//
// The grain is three parts, so that what a command means can be tested
// without brokers, stores or actors:
//
//   - entity (entity.go): the connection as its journal tells it. decide maps
//     (state, command) to a Ditto error or to events, the answer once they
//     are persisted and an action for the live side; apply moves the state
//     past an event. It does no I/O: validation, which may resolve host
//     names, comes in as a policy function, and the time as an argument.
//   - store wiring (grain.go, events.go): recovery from the latest snapshot
//     plus later events, appending decided events, a snapshot every N, and
//     after a delete a deleted-state snapshot and the removal of everything
//     below it (forget), so no secret of a deleted connection stays stored.
//   - supervisor (supervisor.go, status.go, live.go, probe.go, satellite.go):
//     the runners of the clients and their data plane, the satellites that
//     run clients 1…n-1 on other members, the commands waiting for clients,
//     the connection logs, and the answers computed from them (status,
//     metrics, logs, test).
//
// Receive wires the three; nothing about a command is kept between messages
// except in a waiter. Concurrency: all grain state is the actor goroutine's;
// each client runs in its own runner goroutine (runner.go) that shares
// nothing mutable with the grain and reports through the mailbox, and
// testConnection runs in a goroutine that answers the sender directly.
// Messages between members are pb.Command values typed in Go by one codec
// (wire.go): a member that receives an unknown protobuf type crashes.
package connection
