// Package bridge is dittoconn's production client of Eclipse Ditto's gateway
// WebSocket (/ws/2): the way a connection's sources send twin and live
// signals to Ditto and its targets receive what Ditto publishes, when
// dittoconn runs beside a real Ditto.
//
// # Why a WebSocket
//
// Ditto's own connectivity service reaches things and policies through
// Pekko cluster sharding and receives signals through Pekko
// distributed-data pub/sub: internal protocols, not a contract, and a
// cluster Ditto's hardening guide keeps private. The gateway's public
// entry points are /api/2 (HTTP), SSE and /ws/2, and only the WebSocket
// carries everything a connection needs: twin and live commands and their
// responses, twin and live events, live messages, policy announcements,
// and acknowledgements both ways (requested by a source, issued by a
// target). HTTP and SSE can neither issue acknowledgements nor carry live
// signals.
//
// # Sessions
//
// Ditto fixes a session's authorization context at the upgrade, so a Link
// (one per connection) keeps one session per target (the target's subjects
// as x-ditto-pre-authenticated, or a bearer token; the target's
// declared-acks; its START-SEND-… subscriptions, each awaited by Ditto's
// ":ACK" and sent again after every reconnect) and sends a source's signals
// on a session with the source's subjects: a target's when one has them,
// else a command-only session from a small LRU pool. Every upgrade carries
// x-correlation-id = the connection id: the gateway makes it the session's
// origin and does not deliver the connection's own signals back to it.
//
// # Goroutines
//
// Per session:
//   - run: dials (with a deadline; backoff with jitter between attempts),
//     subscribes, pings every PingInterval (two missed pongs end the
//     socket), refreshes a JWT in place, and on a drop answers the
//     session's unanswered commands with 503 before dialling again;
//   - reader (one per socket, the only reader): never blocks on anything
//     but the socket. ":ACK"s mark subscriptions confirmed; answers go to
//     their command's answer function, called on the reader (Send: it must
//     not block; the data plane's only queues the settlement of the
//     consumed message and publishes a reply on a goroutine); signals go
//     to a bounded queue (200, as Ditto's own per-session buffer) and are
//     dropped and counted when it is full, which Ditto's at-most-once
//     pub/sub allows;
//   - delivery (targets only): calls the target's deliver for each queued
//     signal; it may block briefly without stalling the socket.
//
// Writers (Send, Reply, the run goroutine) share the socket under a mutex,
// each write with a deadline. A pending command holds a timer. Close stops
// every goroutine and waits for them.
//
// # What a session costs
//
// An idle target session (one subscription) holds three goroutines, the
// socket's read and write buffers, the 200-slot delivery queue and a few
// maps: BenchmarkIdleSessionMemory measures about 44 KB per session in one
// process with the test server's side of each socket included, 1.8 times
// a bare gorilla client socket with its reader goroutine (about 24 KB on
// the same terms). Ditto's gateway admits about 4096 sessions per instance;
// budget sessions per connection accordingly.
//
// # Failure
//
// Reconnects back off from ReconnectMin doubling to ReconnectMax with equal
// jitter, back to ReconnectMin after a socket stayed up a minute. 401 or
// 403 on the upgrade (and an identity provider refusing the client
// credentials) is "misconfigured", retried at ReconnectMax; so is a
// subscription or declared label Ditto refuses (an error answer carrying the
// connection id or no correlation id). A socket whose subscriptions are
// neither confirmed nor refused within 30 s is dialled again. The bridge
// never retransmits a command: at-least-once comes from the broker, which
// redelivers what was answered 408 or 503.
package bridge
