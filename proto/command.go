package pb

import (
	"context"
	"time"

	"github.com/dittoconn/dittoconn/proto/ditto"
)

// The helpers below are written by hand beside the generated code: every
// sender and receiver of a Command reads its deadline and its
// response-required header the same way.

// SetDeadlineFrom records ctx's deadline in the command so that a receiver on
// another goroutine or node stops when the caller stops waiting. A deadline
// the command already carries (set by an earlier hop) is kept.
func (c *Command) SetDeadlineFrom(ctx context.Context) {
	if dl, ok := ctx.Deadline(); ok && c.DeadlineUnixNano == 0 {
		c.DeadlineUnixNano = dl.UnixNano()
	}
}

// Context returns a context that ends at the command's deadline, or after
// fallback when the command carries none.
func (c *Command) Context(fallback time.Duration) (context.Context, context.CancelFunc) {
	if c.GetDeadlineUnixNano() > 0 {
		return context.WithDeadline(context.Background(), time.Unix(0, c.DeadlineUnixNano))
	}
	return context.WithTimeout(context.Background(), fallback)
}

// Within returns timeout, or the time left before the command's deadline when
// that is shorter (zero or negative once it has passed).
func (c *Command) Within(timeout time.Duration) time.Duration {
	if c.GetDeadlineUnixNano() > 0 {
		return min(timeout, time.Until(time.Unix(0, c.DeadlineUnixNano)))
	}
	return timeout
}

// AnswerWithin is Within, less a margin (a fifth of the time left, at most
// 500 ms) when the command's deadline is the shorter: work bounded by it ends
// while the caller still waits for the answer it produces.
func (c *Command) AnswerWithin(timeout time.Duration) time.Duration {
	if c.GetDeadlineUnixNano() > 0 {
		left := time.Until(time.Unix(0, c.DeadlineUnixNano))
		return min(timeout, left-min(left/5, 500*time.Millisecond))
	}
	return timeout
}

// ResponseRequired is false when the caller sent response-required: false;
// Ditto then sends no answer at all, so the receiver replies NO_ANSWER.
func (c *Command) ResponseRequired() bool {
	return c.GetHeaders()[ditto.HeaderResponseRequired] != "false"
}

// Answer returns r, or NO_ANSWER when the caller asked for no response.
func (c *Command) Answer(r *Reply) *Reply {
	if !c.ResponseRequired() {
		return &Reply{Kind: Reply_NO_ANSWER}
	}
	return r
}
