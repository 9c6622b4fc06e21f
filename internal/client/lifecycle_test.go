package client

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/model"
)

// fakeProtocol opens fakeSessions; each hook, when set, runs inside the
// call it names.
type fakeProtocol struct {
	open  func(ctx context.Context, r *Reporter) error
	start func(ctx context.Context, r *Reporter) error

	mu       sync.Mutex
	sessions []*fakeSession
}

type fakeSession struct {
	p         *fakeProtocol
	r         *Reporter
	closes    int
	published []string
}

func (p *fakeProtocol) Open(ctx context.Context, r *Reporter) (Session, error) {
	s := &fakeSession{p: p, r: r}
	p.mu.Lock()
	p.sessions = append(p.sessions, s)
	p.mu.Unlock()
	if p.open != nil {
		return s, p.open(ctx, r)
	}
	return s, nil
}

func (s *fakeSession) Start(ctx context.Context) error {
	if s.p.start != nil {
		return s.p.start(ctx, s.r)
	}
	return nil
}

func (s *fakeSession) Publish(_ context.Context, msg Message) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.published = append(s.published, msg.Address)
	return nil
}

func (s *fakeSession) Close(context.Context) error {
	s.p.mu.Lock()
	defer s.p.mu.Unlock()
	s.closes++
	return nil
}

func (p *fakeProtocol) closes() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int
	for _, s := range p.sessions {
		out = append(out, s.closes)
	}
	return out
}

type events struct {
	mu    sync.Mutex
	kinds []EventKind
	errs  []error
}

func (e *events) add(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.kinds = append(e.kinds, ev.Kind)
	e.errs = append(e.errs, ev.Err)
}

func (e *events) get() []EventKind {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]EventKind(nil), e.kinds...)
}

func newTestLifecycle(t *testing.T, p Protocol, shape Shape) (*Lifecycle, *events) {
	ev := &events{}
	conn := &model.Connection{ID: "c", ConnectionType: "fake",
		Sources: []model.Source{{Addresses: []string{"a", "b"}, ConsumerCount: 2}},
		Targets: []model.Target{{Address: "t1"}, {Address: "t2"}}}
	l := NewLifecycle(Env{Connection: conn, Logger: zerolog.New(zerolog.NewTestWriter(t)), Events: ev.add},
		p, Options{Name: "fake", Shape: shape})
	return l, ev
}

func ctx1s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	t.Cleanup(cancel)
	return ctx
}

func statuses(l *Lifecycle) string {
	var b strings.Builder
	for _, e := range l.Status() {
		b.WriteString(e.Type + ":" + e.Address + "=" + string(e.Status) + "/" + e.Details + " ")
	}
	return strings.TrimSpace(b.String())
}

func TestLifecycleEntriesFollowTheState(t *testing.T) {
	p := &fakeProtocol{}
	l, ev := newTestLifecycle(t, p, PerAddress)
	want := "client:=closed/[DISCONNECTED] connection is closed " +
		"source:a=closed/Consumer stopped. source:b=closed/Consumer stopped. " +
		"source:a=closed/Consumer stopped. source:b=closed/Consumer stopped. " +
		"target:t1=closed/Producer stopped. target:t2=closed/Producer stopped."
	if got := statuses(l); got != want {
		t.Fatalf("before Connect:\n%s\nwant\n%s", got, want)
	}
	if err := l.Connect(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	want = "client:=open/CONNECTED source:a=open/Consumer started. source:b=open/Consumer started. " +
		"source:a=open/Consumer started. source:b=open/Consumer started. " +
		"target:t1=open/Producer started. target:t2=open/Producer started."
	if got := statuses(l); got != want {
		t.Fatalf("connected:\n%s\nwant\n%s", got, want)
	}
	if st := l.Status(); st[0].RecoveryStatus != "succeeded" || st[1].RecoveryStatus != "" {
		t.Fatalf("recovery status: %+v", st[:2])
	}
	if err := l.Close(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	if got := ev.get(); len(got) != 2 || got[0] != Connected || got[1] != Disconnected {
		t.Fatalf("events %v", got)
	}
	if c := p.closes(); len(c) != 1 || c[0] != 1 {
		t.Fatalf("session closes %v, want [1]", c)
	}
}

func TestLifecyclePerSourceShape(t *testing.T) {
	l, _ := newTestLifecycle(t, &fakeProtocol{}, PerSource)
	var got []string
	for _, e := range l.Status() {
		if e.Type == "source" {
			got = append(got, e.Address)
		}
	}
	if strings.Join(got, " ") != "a;b a;b" {
		t.Fatalf("source entries %q, want one per consumer with the addresses joined", got)
	}
}

func TestLifecycleConnectFails(t *testing.T) {
	refused := errors.New("fake: refused")
	p := &fakeProtocol{open: func(context.Context, *Reporter) error { return refused }}
	l, ev := newTestLifecycle(t, p, PerAddress)
	if err := l.Connect(ctx1s(t)); !errors.Is(err, refused) {
		t.Fatalf("Connect: %v", err)
	}
	for _, e := range l.Status() {
		if e.Status != StatusFailed || e.Details != refused.Error() {
			t.Fatalf("after a failed connect: %+v", e)
		}
	}
	if c := p.closes(); len(c) != 1 || c[0] != 1 {
		t.Fatalf("the half-open session was closed %v times, want once", c)
	}
	if len(ev.get()) != 0 {
		t.Fatalf("events after a failed connect: %v", ev.get())
	}
	if err := l.Publish(ctx1s(t), Message{Address: "t1"}); err == nil {
		t.Fatal("Publish after a failed connect succeeded")
	}
	if err := l.Connect(ctx1s(t)); err == nil || !strings.Contains(err.Error(), "before") {
		t.Fatalf("a second Connect: %v", err)
	}
}

func TestLifecycleLost(t *testing.T) {
	var rep *Reporter
	p := &fakeProtocol{start: func(_ context.Context, r *Reporter) error { rep = r; return nil }}
	l, ev := newTestLifecycle(t, p, PerAddress)
	if err := l.Connect(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	cause := errors.New("fake: socket closed")
	rep.Lost(cause)
	rep.Lost(errors.New("fake: again")) // only the first counts
	for _, e := range l.Status() {
		if e.Status != StatusFailed || e.Details != "connection lost: fake: socket closed" {
			t.Fatalf("after the loss: %+v", e)
		}
	}
	if got := ev.get(); len(got) != 2 || got[1] != ConnectionLost || ev.errs[1] != cause {
		t.Fatalf("events %v %v", got, ev.errs)
	}
	if err := l.Publish(ctx1s(t), Message{Address: "t1"}); err == nil {
		t.Fatal("Publish after the loss succeeded")
	}
	if err := l.Close(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	if c := p.closes(); len(c) != 1 || c[0] != 1 {
		t.Fatalf("session closes %v: the loss and Close close it once", c)
	}
}

// A loss reported while connecting shows once the client is open: connected,
// then lost at once.
func TestLifecycleLostWhileConnecting(t *testing.T) {
	p := &fakeProtocol{start: func(_ context.Context, r *Reporter) error {
		r.Lost(errors.New("fake: gone during subscribe"))
		return nil
	}}
	l, ev := newTestLifecycle(t, p, PerAddress)
	if err := l.Connect(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	if got := ev.get(); len(got) != 2 || got[0] != Connected || got[1] != ConnectionLost {
		t.Fatalf("events %v", got)
	}
	if st := l.Status(); st[0].Status != StatusFailed {
		t.Fatalf("client entry %+v", st[0])
	}
}

// Publish works from Start on (a consumer may answer what it consumed
// while the client connects) and targets set while connecting survive the
// move to open.
func TestLifecyclePublishWhileStartingAndTargets(t *testing.T) {
	var l *Lifecycle
	p := &fakeProtocol{
		open: func(_ context.Context, r *Reporter) error {
			r.Target("t2", StatusFailed, "fake: no such target")
			return nil
		},
		start: func(ctx context.Context, _ *Reporter) error { return l.Publish(ctx, Message{Address: "t1"}) },
	}
	l, _ = newTestLifecycle(t, p, PerAddress)
	if err := l.Connect(ctx1s(t)); err != nil {
		t.Fatalf("Connect (publishing from Start): %v", err)
	}
	st := l.Status()
	if tg := st[len(st)-1]; tg.Address != "t2" || tg.Status != StatusFailed || tg.Details != "fake: no such target" {
		t.Fatalf("target t2: %+v", tg)
	}
	if tg := st[len(st)-2]; tg.Status != StatusOpen {
		t.Fatalf("target t1: %+v", tg)
	}
	p.sessions[0].r.Target("t2", StatusOpen, DetailsProducerStarted)
	if tg := l.Status()[len(st)-1]; tg.Status != StatusOpen {
		t.Fatalf("target t2 after a good publish: %+v", tg)
	}
}

// Close during Connect ends the attempt; the session is closed once and
// Connect reports the client closed.
func TestLifecycleCloseWhileConnecting(t *testing.T) {
	started := make(chan struct{})
	p := &fakeProtocol{start: func(ctx context.Context, _ *Reporter) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}}
	l, ev := newTestLifecycle(t, p, PerAddress)
	errc := make(chan error, 1)
	go func() { errc <- l.Connect(context.Background()) }()
	<-started
	if err := l.Close(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Connect: %v", err)
	}
	if c := p.closes(); len(c) != 1 || c[0] != 1 {
		t.Fatalf("session closes %v, want [1]", c)
	}
	for _, e := range l.Status() {
		if e.Status != StatusClosed {
			t.Fatalf("after Close: %+v", e)
		}
	}
	if got := ev.get(); len(got) != 1 || got[0] != Disconnected {
		t.Fatalf("events %v", got)
	}
}

// TestTargetWithPlaceholdersIsUnknownProducersStartedOnDemand: as Ditto's
// publishers do for every protocol, an open target whose address holds
// placeholders reports unknown "Producers for targets with placeholders are
// started on-demand."; a fixed target reports open, and both close alike.
func TestTargetWithPlaceholdersIsUnknownProducersStartedOnDemand(t *testing.T) {
	conn := &model.Connection{ID: "c", ConnectionType: "fake",
		Targets: []model.Target{{Address: "out/fixed"}, {Address: "out/{{ thing:id }}"}}}
	l := NewLifecycle(Env{Connection: conn, Logger: zerolog.New(zerolog.NewTestWriter(t))}, &fakeProtocol{}, Options{Name: "fake"})
	if err := l.Connect(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	want := "client:=open/CONNECTED target:out/fixed=open/Producer started. " +
		"target:out/{{ thing:id }}=unknown/Producers for targets with placeholders are started on-demand."
	if got := statuses(l); got != want {
		t.Fatalf("connected:\n%s\nwant\n%s", got, want)
	}
	if err := l.Close(ctx1s(t)); err != nil {
		t.Fatal(err)
	}
	want = "client:=closed/[DISCONNECTED] connection is closed target:out/fixed=closed/Producer stopped. " +
		"target:out/{{ thing:id }}=closed/Producer stopped."
	if got := statuses(l); got != want {
		t.Fatalf("closed:\n%s\nwant\n%s", got, want)
	}
	entries := TargetEntries(conn, time.Now())
	if entries[0].Status != StatusOpen || entries[1].Status != StatusUnknown || entries[1].Details != DetailsProducerOnDemand {
		t.Fatalf("TargetEntries: %+v", entries)
	}
}
