// Package actors starts the actor system (a proto.actor cluster; one member
// with a self-only provider by default), registers the connection grain kind
// and the root actors, and routes piggyback commands to them by actor path:
// it implements the gateway's Dispatcher.
package actors
