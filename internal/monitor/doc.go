// Package monitor holds the connection metrics and connection logs of
// Ditto's connectivity service (spec: piggyback-protocol §2.5, §2.6;
// connection model §5.1) for the data plane to feed and the connection
// grain to answer from.
//
// Client goroutines count with Counter.Success/Failure (no allocation, one
// uncontended mutex) and log with Logger.Success/Failure (nothing happens
// while logging is muted unless a Fluent publisher is attached, as in Ditto,
// where publishing is never muted). The grain takes snapshots
// (Registry.Snapshot, Logs.Retrieve), merges the snapshots of several
// clients (MergeMetrics, MergeLogs) and writes them with the *JSON methods,
// which produce Ditto's exact shapes, including the "no client running" ones
// (a nil *MetricsSnapshot, an empty LogsSnapshot).
//
// Time windows are ring buffers per counter, advanced lazily on increment and
// read; there is no goroutine per counter. The clock is injectable
// (Options.Now, LogConfig.Now) so tests can drive bucket rollover.
package monitor
