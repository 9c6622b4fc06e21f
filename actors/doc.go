// Package actors starts the actor system (a proto.actor cluster; one member
// with a self-only provider by default), registers the connection grain kind
// and the root actors, and routes piggyback commands to them by actor path:
// it implements the gateway's Dispatcher.
//
// Concurrency: member starts within one process run one at a time, each
// waiting until its gRPC server accepts a loopback probe (a few
// milliseconds), because protoactor writes grpc's global logger on every
// start (see startMu); a start stuck joining the cluster therefore delays
// any other start in the same process.
package actors
