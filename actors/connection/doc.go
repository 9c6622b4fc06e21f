// Package connection is the connection grain: one event-sourced virtual actor
// per connection id. It turns Ditto's connectivity commands into events
// (connectionCreated/Modified/Opened/Closed/Deleted), persists them through
// the persistence contract as Ditto's journal documents, snapshots every N
// events, and recovers from the latest snapshot plus later events when it is
// activated again.
package connection
