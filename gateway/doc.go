// Package gateway is dittoconn's HTTP edge, standing where Ditto's gateway
// reaches the connectivity service: POST /devops/piggyback (Ditto's
// piggyback commands, answered in Ditto's envelope and error JSON),
// /api/2/connections (package connections), /health and, when configured,
// /metrics. It turns each request into one command for a Dispatcher (the
// actor system) and waits for the reply, never past the command's timeout.
//
// Concurrency: every request runs on net/http's goroutine and holds it, and
// its body (at most Config.BodyLimit bytes), until the actor answers or the
// timeout passes. Limits bound the time a slow client may take and can cap
// the requests in flight per client address.
package gateway
