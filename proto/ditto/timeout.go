package ditto

import "time"

// DefaultAskTimeout is how long Ditto waits for an answer when a command
// carries no timeout header (and the deadline of commands this service
// sends without one). It lives here because the gateway and the actors both
// need it and neither may import the other.
const DefaultAskTimeout = 10 * time.Second
