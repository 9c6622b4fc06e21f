package pb

import (
	"context"
	"testing"
	"time"
)

func TestSetDeadlineFrom(t *testing.T) {
	dl := time.Now().Add(time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), dl)
	defer cancel()

	c := &Command{}
	c.SetDeadlineFrom(context.Background())
	if c.DeadlineUnixNano != 0 {
		t.Fatalf("no deadline in ctx set %d", c.DeadlineUnixNano)
	}
	c.SetDeadlineFrom(ctx)
	if c.DeadlineUnixNano != dl.UnixNano() {
		t.Fatalf("deadline = %d, want %d", c.DeadlineUnixNano, dl.UnixNano())
	}
	earlier := &Command{DeadlineUnixNano: 42}
	earlier.SetDeadlineFrom(ctx)
	if earlier.DeadlineUnixNano != 42 {
		t.Fatalf("an earlier hop's deadline was replaced: %d", earlier.DeadlineUnixNano)
	}
}

func TestContext(t *testing.T) {
	dl := time.Now().Add(time.Hour)
	ctx, cancel := (&Command{DeadlineUnixNano: dl.UnixNano()}).Context(time.Second)
	defer cancel()
	if got, ok := ctx.Deadline(); !ok || !got.Equal(time.Unix(0, dl.UnixNano())) {
		t.Fatalf("deadline = %v %v, want the command's %v", got, ok, dl)
	}

	before := time.Now()
	ctx, cancel = (&Command{}).Context(time.Minute)
	defer cancel()
	got, ok := ctx.Deadline()
	if !ok || got.Before(before.Add(time.Minute)) || got.After(time.Now().Add(time.Minute)) {
		t.Fatalf("deadline = %v %v, want the fallback a minute from now", got, ok)
	}
}

func TestWithin(t *testing.T) {
	if got := (&Command{}).Within(time.Second); got != time.Second {
		t.Fatalf("no deadline: %v, want 1s", got)
	}
	far := &Command{DeadlineUnixNano: time.Now().Add(time.Hour).UnixNano()}
	if got := far.Within(time.Second); got != time.Second {
		t.Fatalf("far deadline: %v, want 1s", got)
	}
	near := &Command{DeadlineUnixNano: time.Now().Add(time.Second).UnixNano()}
	if got := near.Within(time.Hour); got <= 0 || got > time.Second {
		t.Fatalf("near deadline: %v, want at most 1s", got)
	}
	past := &Command{DeadlineUnixNano: time.Now().Add(-time.Second).UnixNano()}
	if got := past.Within(time.Hour); got > 0 {
		t.Fatalf("past deadline: %v, want <= 0", got)
	}
}

// TestAnswerWithin: a deadline shorter than the timeout leaves the caller
// a margin (a fifth, at most 500 ms); otherwise the timeout holds.
func TestAnswerWithin(t *testing.T) {
	if got := (&Command{}).AnswerWithin(time.Second); got != time.Second {
		t.Fatalf("no deadline: %v, want 1s", got)
	}
	far := &Command{DeadlineUnixNano: time.Now().Add(time.Hour).UnixNano()}
	if got := far.AnswerWithin(time.Second); got != time.Second {
		t.Fatalf("far deadline: %v, want 1s", got)
	}
	near := &Command{DeadlineUnixNano: time.Now().Add(time.Second).UnixNano()}
	if got := near.AnswerWithin(time.Hour); got <= 700*time.Millisecond || got > 800*time.Millisecond {
		t.Fatalf("deadline in 1s: %v, want a fifth less", got)
	}
	later := &Command{DeadlineUnixNano: time.Now().Add(10 * time.Second).UnixNano()}
	if got := later.AnswerWithin(time.Hour); got <= 9*time.Second || got > 9500*time.Millisecond {
		t.Fatalf("deadline in 10s: %v, want 500 ms less", got)
	}
}

func TestAnswer(t *testing.T) {
	ok := &Reply{Kind: Reply_RESPONSE, Status: 200}
	for _, tt := range []struct {
		headers map[string]string
		want    Reply_Kind
	}{
		{nil, Reply_RESPONSE},
		{map[string]string{"response-required": "true"}, Reply_RESPONSE},
		{map[string]string{"response-required": "FALSE"}, Reply_RESPONSE},
		{map[string]string{"response-required": "false"}, Reply_NO_ANSWER},
	} {
		c := &Command{Headers: tt.headers}
		if got := c.Answer(ok).GetKind(); got != tt.want {
			t.Errorf("headers %v: kind %v, want %v", tt.headers, got, tt.want)
		}
		if c.ResponseRequired() != (tt.want == Reply_RESPONSE) {
			t.Errorf("headers %v: ResponseRequired = %v", tt.headers, c.ResponseRequired())
		}
	}
	var nilCmd *Command
	if !nilCmd.ResponseRequired() {
		t.Error("a nil command requires a response")
	}
}
