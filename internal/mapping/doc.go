// Package mapping holds dittoconn's payload mapping engines: the Ditto
// connectivity service's message mappers (Ditto, JavaScript, Normalized,
// RawMessage, ConnectionStatus, ImplicitThingCreation,
// UpdateTwinWithLiveResponse, CloudEvents), configured from a connection's
// mappingDefinitions and combined into one chain per source and target.
//
// The package is pure, no grains and no I/O, with one exception: a
// JavaScript mapping's require() reads CommonJS modules from the configured
// commonJsModulePath (jsrequire.go). The JavaScript engine's helper
// libraries (dcodeIO.Long, dcodeIO.ByteBuffer) are dittoconn's own code,
// evaluated into a runtime only when a mapping asks for them.
//
// Inbound, a chain turns one protocol.External into Ditto Protocol
// messages; outbound, one protocol.Message into external messages. Every
// mapper of a chain sees the same input (Ditto runs them side by side, not
// as a pipe) and each one's result or error is reported separately so that
// the caller can count and log it.
//
// Mappers are safe for concurrent use. A JavaScript mapper holds a pool of
// goja runtimes, up to the connection's processorPoolSize (clamped to
// Config.MaxPoolSize, Ditto's max-pool-size): a runtime runs one script at
// a time, so callers mapping at once take runtimes of their own instead of
// queueing behind one lock, as Ditto's mapping processors each have a
// scope of their own. Runtimes beyond the first are built when all built
// ones are busy; each costs the first one's evaluation (milliseconds) and
// heap, and holds its own script state (a script's global variables are
// per runtime, as they are per processor in Ditto). Whether callers map at
// once is the data plane's choice (its mapping stage keeps per-source
// order).
package mapping
