package monitor

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const zeroM = `{"PT1M":0,"PT1H":0,"PT24H":0,"lastMessageAt":null}`

func zeroType(name string) string {
	return fmt.Sprintf(`"%s":{"success":%s,"failure":%s}`, name, zeroM, zeroM)
}

func TestNoClientShapes(t *testing.T) {
	var s *MetricsSnapshot
	if got := string(s.ConnectionMetricsJSON()); got != `{"inbound":null,"outbound":null}` {
		t.Errorf("connectionMetrics %s", got)
	}
	if got := string(s.SourceMetricsJSON()); got != `{"addressMetrics":null}` {
		t.Errorf("sourceMetrics %s", got)
	}
	if got := string(s.TargetMetricsJSON()); got != `{"addressMetrics":null}` {
		t.Errorf("targetMetrics %s", got)
	}
	if s.ContainsFailures() {
		t.Error("containsFailures")
	}
	// A running client that has nothing registered answers the same.
	e := NewRegistry(Options{}).Snapshot()
	if got := string(e.ConnectionMetricsJSON()) + string(e.SourceMetricsJSON()); got != `{"inbound":null,"outbound":null}{"addressMetrics":null}` {
		t.Errorf("empty registry %s", got)
	}
}

func TestInitAndExactJSON(t *testing.T) {
	clk := newClock("2026-05-02T10:00:00Z")
	r := NewRegistry(Options{ConnectionID: "mqtt-1", Now: clk.Now})
	r.Init([]string{"devices/#"}, []string{"out/{{ thing:id }}"})
	clk.Advance(1500 * time.Millisecond)
	c := r.Inbound(Consumed, "devices/#")
	c.Success()
	c.Success()
	c.Success()
	s := r.Snapshot()

	consumed := `"consumed":{"success":{"PT1M":3,"PT1H":3,"PT24H":3,"lastMessageAt":"2026-05-02T10:00:01.500Z"},"failure":` + zeroM + `}`
	in := "{" + consumed + "," + strings.Join([]string{zeroType("mapped"), zeroType("dropped"), zeroType("enforced"),
		zeroType("acknowledged"), zeroType("throttled"), zeroType("other")}, ",") + "}"
	outTypes := "{" + strings.Join([]string{zeroType("dispatched"), zeroType("filtered"), zeroType("mapped"),
		zeroType("dropped"), zeroType("published"), zeroType("acknowledged"), zeroType("other")}, ",") + "}"

	if got, want := string(s.ConnectionMetricsJSON()), `{"inbound":`+in+`,"outbound":`+outTypes+`}`; got != want {
		t.Errorf("connectionMetrics\n got %s\nwant %s", got, want)
	}
	if got, want := string(s.SourceMetricsJSON()), `{"addressMetrics":{"devices/#":`+in+`}}`; got != want {
		t.Errorf("sourceMetrics\n got %s\nwant %s", got, want)
	}
	if got, want := string(s.TargetMetricsJSON()), `{"addressMetrics":{"out/{{ thing:id }}":`+outTypes+`,"_responses":`+outTypes+`}}`; got != want {
		t.Errorf("targetMetrics\n got %s\nwant %s", got, want)
	}
	if s.ContainsFailures() {
		t.Error("no failures expected")
	}
	if !json.Valid(s.ConnectionMetricsJSON()) || !json.Valid(s.TargetMetricsJSON()) {
		t.Error("invalid JSON")
	}
}

func TestOnlyTargetsGiveNullInbound(t *testing.T) {
	r := NewRegistry(Options{})
	r.Init(nil, []string{"t"})
	s := r.Snapshot()
	if got := string(s.ConnectionMetricsJSON()); !strings.HasPrefix(got, `{"inbound":null,"outbound":{"dispatched"`) {
		t.Errorf("got %s", got)
	}
	if got := string(s.SourceMetricsJSON()); got != `{"addressMetrics":null}` {
		t.Errorf("got %s", got)
	}
}

func counts(t *testing.T, r *Registry, d Direction, typ MetricType, addr string) Measurement {
	t.Helper()
	s := r.Snapshot()
	list := s.Sources
	if d == Outbound {
		list = s.Targets
	}
	i := indexOf(list, addr)
	if i < 0 {
		t.Fatalf("no address %q", addr)
	}
	return list[i].Metric[typ].Success
}

func TestWindowRollover(t *testing.T) {
	// Aligned to a full hour so that slot boundaries are easy to reason about.
	clk := newClock("2026-05-02T10:00:00Z")
	r := NewRegistry(Options{Now: clk.Now})
	c := r.Outbound(Published, "out")
	c.Success() // 10:00:00

	check := func(label string, m1, h1, d1 int64) {
		t.Helper()
		m := counts(t, r, Outbound, Published, "out")
		if m.PT1M != m1 || m.PT1H != h1 || m.PT24H != d1 {
			t.Errorf("%s (%s): got PT1M=%d PT1H=%d PT24H=%d, want %d %d %d", label,
				clk.Now().Format(time.TimeOnly), m.PT1M, m.PT1H, m.PT24H, m1, h1, d1)
		}
	}
	check("start", 1, 1, 1)
	clk.Advance(59*time.Second + 999*time.Millisecond)
	check("last ms of the minute", 1, 1, 1)
	clk.Advance(time.Millisecond) // 10:01:00: the 10 s slot of 10:00:00 has left PT1M
	check("one minute later", 0, 1, 1)

	c.Success() // 10:01:00
	clk.Advance(5 * time.Second)
	c.Success() // 10:01:05, same 10 s slot
	clk.Advance(5 * time.Second)
	c.Success() // 10:01:10, next slot
	check("three more", 3, 4, 4)
	clk.Advance(55 * time.Second) // 10:02:05: slot 10:01:00-10 gone, slot 10:01:10-20 still in
	check("slot by slot", 1, 4, 4)

	clk.Advance(57*time.Minute + 55*time.Second) // 10:60:00 = 11:00:00
	check("one hour", 0, 3, 4)
	clk.Advance(time.Minute + 10*time.Second) // 11:01:10: 1 min slot 10:01 gone
	check("hour slots", 0, 0, 4)

	clk.Advance(22*time.Hour + 58*time.Minute + 50*time.Second) // next day 10:00:00
	check("one day", 0, 0, 0)

	// A ring slot reused after a full cycle starts from zero.
	c.Success()
	check("reused", 1, 1, 1)
}

func TestManyIntervalsInRing(t *testing.T) {
	clk := newClock("2026-05-02T00:00:00Z")
	r := NewRegistry(Options{Now: clk.Now})
	c := r.Inbound(Mapped, "a")
	// one message every 10 s for 2 hours
	for i := 0; i < 720; i++ {
		c.Success()
		clk.Advance(10 * time.Second)
	}
	clk.Advance(-10 * time.Second) // now = time of the last message
	m := counts(t, r, Inbound, Mapped, "a")
	if m.PT1M != 6 || m.PT1H != 360 || m.PT24H != 720 {
		t.Errorf("got %+v", m)
	}
}

func TestResetKeepsLastMessageAt(t *testing.T) {
	clk := newClock("2026-05-02T10:00:00.25Z")
	r := NewRegistry(Options{Now: clk.Now})
	r.Inbound(Consumed, "a").Failure()
	r.Inbound(Consumed, "a").Success()
	r.Reset()
	s := r.Snapshot()
	m := s.Sources[0].Metric[Consumed]
	if m.Success.PT1M != 0 || m.Failure.PT24H != 0 {
		t.Errorf("counts not cleared: %+v", m)
	}
	if ditto := m.Success.LastMessageAt.Format(time.RFC3339Nano); ditto != "2026-05-02T10:00:00.25Z" {
		t.Errorf("lastMessageAt %s", ditto)
	}
	if s.ContainsFailures() {
		t.Error("failures after reset")
	}
	if r.Inbound(Consumed, "a").Total(false) != 1 {
		t.Error("totals are not reset")
	}
	// counting continues after a reset
	r.Inbound(Consumed, "a").Success()
	if got := counts(t, r, Inbound, Consumed, "a").PT1M; got != 1 {
		t.Errorf("after reset %d", got)
	}
}

func TestMergeTwoClients(t *testing.T) {
	clk1 := newClock("2026-05-02T10:00:00Z")
	clk2 := newClock("2026-05-02T10:00:02Z")
	a := NewRegistry(Options{Now: clk1.Now})
	b := NewRegistry(Options{Now: clk2.Now})
	a.Init([]string{"s1"}, []string{"t1"})
	b.Init([]string{"s1", "s2"}, []string{"t1"})
	a.Inbound(Consumed, "s1").Success()
	a.Inbound(Consumed, "s1").Success()
	b.Inbound(Consumed, "s1").Success()
	b.Inbound(Consumed, "s2").Failure()
	a.Response(Dispatched).Success()

	m := MergeMetrics(a.Snapshot(), nil, b.Snapshot())
	if len(m.Sources) != 2 || m.Sources[0].Address != "s1" || m.Sources[1].Address != "s2" {
		t.Fatalf("sources %+v", m.Sources)
	}
	s1 := m.Sources[0].Metric[Consumed].Success
	if s1.PT1M != 3 || s1.LastMessageAt.Format(time.RFC3339) != "2026-05-02T10:00:02Z" {
		t.Errorf("s1 %+v", s1)
	}
	in := m.Inbound()[Consumed]
	if in.Success.PT24H != 3 || in.Failure.PT24H != 1 {
		t.Errorf("inbound %+v", in)
	}
	if !m.ContainsFailures() {
		t.Error("containsFailures")
	}
	if got := m.Outbound()[Dispatched].Success.PT1H; got != 1 {
		t.Errorf("responses dispatched %d", got)
	}
	if MergeMetrics(nil, nil) != nil {
		t.Error("merge of nothing")
	}
	// merging does not change the inputs
	if a.Snapshot().Sources[0].Metric[Consumed].Success.PT1M != 2 {
		t.Error("input changed")
	}
}

func TestContainsFailuresOutbound(t *testing.T) {
	r := NewRegistry(Options{})
	r.Init([]string{"s"}, []string{"t"})
	if r.Snapshot().ContainsFailures() {
		t.Fatal("fresh registry has failures")
	}
	r.Outbound(Published, "t").Failure()
	if !r.Snapshot().ContainsFailures() {
		t.Error("outbound failure not seen")
	}
}

func TestThrottledDetection(t *testing.T) {
	clk := newClock("2026-05-02T10:00:00Z")
	r := NewRegistry(Options{Now: clk.Now, ThrottlingLimit: 2})
	r.Init([]string{"q"}, nil)
	c := r.Inbound(Consumed, "q")
	for i := 0; i < 4; i++ { // the 3rd and 4th exceed the limit in this 10 s slot
		c.Success()
	}
	th := func() Measurement { return r.Snapshot().Sources[0].Metric[Throttled].Failure }
	if m := th(); m.PT1M != 1 || m.PT1H != 1 || m.PT24H != 1 {
		t.Errorf("throttled %+v", m)
	}
	clk.Advance(2 * time.Minute)
	if m := th(); m.PT1M != 0 || m.PT1H != 1 {
		t.Errorf("two minutes later %+v", m)
	}
	for i := 0; i < 3; i++ {
		c.Success()
	}
	clk.Advance(30 * time.Second)
	if m := th(); m.PT1M != 1 || m.PT1H != 2 || m.PT24H != 2 {
		t.Errorf("second throttled minute %+v", m)
	}
	clk.Advance(time.Hour)
	if m := th(); m.PT1M != 0 || m.PT1H != 0 || m.PT24H != 2 {
		t.Errorf("an hour later %+v", m)
	}
}

func TestConcurrentCounting(t *testing.T) {
	r := NewRegistry(Options{})
	r.Init([]string{"s"}, []string{"t"})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.Inbound(Consumed, "s")
			for i := 0; i < 1000; i++ {
				c.Success()
				r.Outbound(Published, fmt.Sprintf("t%d", i%3)).Failure()
			}
		}()
	}
	for i := 0; i < 20; i++ {
		_ = r.Snapshot().ConnectionMetricsJSON()
	}
	r.Reset()
	wg.Wait()
	if got := r.Inbound(Consumed, "s").Total(true); got != 8000 {
		t.Errorf("total %d", got)
	}
}

func TestCountingDoesNotAllocate(t *testing.T) {
	r := NewRegistry(Options{ThrottlingLimit: 1})
	r.Init([]string{"s"}, []string{"t"})
	c := r.Inbound(Consumed, "s")
	if n := testing.AllocsPerRun(1000, c.Success); n != 0 {
		t.Errorf("Counter.Success allocates %v", n)
	}
	if n := testing.AllocsPerRun(1000, func() { r.Outbound(Published, "t").Failure() }); n != 0 {
		t.Errorf("lookup + Failure allocates %v", n)
	}
}

func BenchmarkCounterSuccess(b *testing.B) {
	r := NewRegistry(Options{})
	c := r.Inbound(Consumed, "s")
	b.ReportAllocs()
	for b.Loop() {
		c.Success()
	}
}

func BenchmarkLookupAndCount(b *testing.B) {
	r := NewRegistry(Options{})
	r.Init([]string{"devices/#"}, []string{"out/{{ thing:id }}"})
	b.ReportAllocs()
	for b.Loop() {
		r.Outbound(Published, "out/{{ thing:id }}").Success()
	}
}

func BenchmarkCounterParallel(b *testing.B) {
	r := NewRegistry(Options{})
	c := r.Inbound(Consumed, "s")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			c.Success()
		}
	})
}
