package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func newTestLogs(clk *fakeClock, cfg LogConfig) *Logs {
	return NewLogs(LogOptions{ConnectionID: "mqtt-1", Config: cfg, Now: clk.Now})
}

func TestLogsSpecExample(t *testing.T) {
	clk := newClock("2026-05-02T09:15:03.121Z")
	l := newTestLogs(clk, LogConfig{})
	l.Enable()
	l.Connection().SuccessMsg(Info{}, "Connection successful")
	clk.Advance(66881 * time.Millisecond) // 09:16:10.002
	l.Source(Consumed, "devices/#").Success(Info{CorrelationID: "7c1f", EntityType: "thing", EntityID: "org.acme:dev-1"})

	s := l.Retrieve()
	want := `[{"correlationId":"<not-provided>","timestamp":"2026-05-02T09:15:03.121Z","category":"connection","type":"other",` +
		`"level":"success","message":"Connection successful"},` +
		`{"correlationId":"7c1f","timestamp":"2026-05-02T09:16:10.002Z","category":"source","type":"consumed",` +
		`"level":"success","message":"Received signal.","address":"devices/#","entityType":"thing","entityId":"org.acme:dev-1"}]`
	if got := string(s.ConnectionLogsJSON()); got != want {
		t.Errorf("connectionLogs\n got %s\nwant %s", got, want)
	}
	if got := string(s.EnabledSinceJSON()); got != `"2026-05-02T09:15:03.121Z"` {
		t.Errorf("enabledSince %s", got)
	}
	// retrieve extends: until = retrieval time + 1 h
	if got := string(s.EnabledUntilJSON()); got != `"2026-05-02T10:16:10.002Z"` {
		t.Errorf("enabledUntil %s", got)
	}
}

func TestLogsDisabledShape(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{})
	l.Source(Consumed, "a").Success(Info{}) // muted: nothing kept
	s := l.Retrieve()
	got := string(s.ConnectionLogsJSON()) + string(s.EnabledSinceJSON()) + string(s.EnabledUntilJSON())
	if got != "[]nullnull" {
		t.Errorf("got %s", got)
	}
	if got := string(MergeLogs(250000).ConnectionLogsJSON()); got != "[]" {
		t.Errorf("no clients %s", got)
	}
	l.Enable()
	if s := l.Retrieve(); len(s.Entries) != 0 {
		t.Errorf("entry logged while muted survived: %+v", s.Entries)
	}
}

func TestDefaultTexts(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{})
	l.Enable()
	cases := []struct {
		lg   *Logger
		do   func(*Logger)
		want string
	}{
		{l.Source(Mapped, "s"), func(lg *Logger) { lg.Success(Info{}) }, "Mapped incoming signal."},
		{l.Source(Mapped, "s"), func(lg *Logger) { lg.Failure(Info{}, "boom") }, "Ran into a failure when mapping incoming signal: boom"},
		{l.Source(Dropped, "s"), func(lg *Logger) { lg.Success(Info{}) }, "Payload mapping returned null, message is dropped."},
		{l.Target(Published, "t"), func(lg *Logger) { lg.Success(Info{}) }, "Successfully published signal."},
		{l.Target(Published, "t"), func(lg *Logger) { lg.Exception(Info{}, errors.New("EOF")) }, "Unexpected failure when publishing signal: EOF"},
		{l.Target(Filtered, "t"), func(lg *Logger) { lg.Failure(Info{}, "") }, "Failure while message was filtered: not specified"},
		{l.Response(Dispatched), func(lg *Logger) { lg.Success(Info{}) }, "Received response."},
		{l.Response(Dispatched), func(lg *Logger) { lg.Failure(Info{}, "x") }, "Response was not successful. This may be the case for when a thing could not be found or the authorization subject of the consuming source was not allowed to write a thing."},
		{l.Response(Filtered), func(lg *Logger) { lg.Success(Info{}) }, "Dropped response since requester did not require response via Header {1}"},
		{l.Source(Other, "s"), func(lg *Logger) { lg.Success(Info{}) }, "Message was other"},
	}
	for i, c := range cases {
		c.lg.clear()
		c.do(c.lg)
		var es []LogEntry
		es = c.lg.appendEntries(es)
		if len(es) != 1 || es[0].Message != c.want {
			t.Errorf("case %d: got %+v, want %q", i, es, c.want)
		}
	}
}

func TestHeadersAndPayload(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{})
	l.Enable()
	info := Info{Headers: map[string]string{"mqtt.topic": "d/1", "content-type": "application/json"}, Payload: `{"a":1}`}
	l.Source(Consumed, "d/#").Success(info)
	l.Source(Mapped, "d/#").Success(info) // mapped does not log headers
	info.Headers["connectivity-debug-log"] = "OFF"
	l.Target(Published, "t").Success(info)
	got := []string{}
	for _, e := range l.Retrieve().Entries {
		got = append(got, e.Message)
	}
	want := []string{
		`Received signal. - Message headers: [content-type=application/json, mqtt.topic=d/1] - Message payload: {"a":1}`,
		`Mapped incoming signal.`,
		`Successfully published signal. - Message header keys: [connectivity-debug-log, content-type, mqtt.topic]`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestLoggerCapacities(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{SuccessCapacity: 10, FailureCapacity: 3})
	l.Enable()
	src := l.Source(Consumed, "a")
	other := l.Source(Consumed, "b") // another address is another logger with its own capacity
	for i := 0; i < 25; i++ {
		clk.Advance(time.Millisecond)
		src.SuccessMsg(Info{}, fmt.Sprintf("s%d", i))
		src.FailureMsg(Info{}, fmt.Sprintf("f%d", i))
		other.SuccessMsg(Info{}, fmt.Sprintf("o%d", i))
	}
	var s, f, o []string
	for _, e := range l.Retrieve().Entries {
		switch {
		case e.Address == "b":
			o = append(o, e.Message)
		case e.Level == LevelFailure:
			f = append(f, e.Message)
		default:
			s = append(s, e.Message)
		}
	}
	if len(s) != 10 || s[0] != "s15" || s[9] != "s24" {
		t.Errorf("successes %v", s)
	}
	if len(f) != 3 || f[0] != "f22" {
		t.Errorf("failures %v", f)
	}
	if len(o) != 10 {
		t.Errorf("other logger %v", o)
	}
}

func TestSizeCapKeepsNewestInOrder(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{})
	l.Enable()
	var lens []int
	for i := 0; i < 6; i++ {
		clk.Advance(time.Second)
		lg := l.Target(Published, fmt.Sprintf("t%d", i))
		lg.SuccessMsg(Info{}, fmt.Sprintf("m%d ü😀", i)) // non-ASCII: Java counts UTF-16 units
		e := lg.appendEntries(nil)[0]
		lens = append(lens, javaLength(e.AppendJSON(nil)))
	}
	// room for exactly the newest three
	maxBytes := lens[3] + lens[4] + lens[5]
	all := l.Retrieve().Entries
	got := MergeLogs(maxBytes, LogsSnapshot{Entries: all[:3]}, LogsSnapshot{Entries: all[3:]})
	var msgs []string
	for _, e := range got.Entries {
		msgs = append(msgs, e.Message[:2])
	}
	if strings.Join(msgs, ",") != "m3,m4,m5" {
		t.Errorf("kept %v", msgs)
	}
	if got := MergeLogs(maxBytes-1, LogsSnapshot{Entries: all}); len(got.Entries) != 2 {
		t.Errorf("one byte less keeps %d", len(got.Entries))
	}
	// byte lengths would differ: 'ü' is 2 bytes in UTF-8 and 1 unit in UTF-16, '😀' 4 and 2
	e := all[0]
	if b := e.AppendJSON(nil); len(b)-javaLength(b) != 3 {
		t.Errorf("utf-16 length %d vs %d", javaLength(b), len(b))
	}
}

func TestMergeLogsTimesFromFirstAndOrder(t *testing.T) {
	clk1 := newClock("2026-05-02T09:00:00Z")
	clk2 := newClock("2026-05-02T09:30:00Z")
	a, b := newTestLogs(clk1, LogConfig{}), newTestLogs(clk2, LogConfig{})
	a.Enable()
	b.Enable()
	a.Connection().SuccessMsg(Info{}, "a1")
	b.Connection().SuccessMsg(Info{}, "b1")
	clk1.Advance(time.Hour)
	a.Connection().SuccessMsg(Info{}, "a2")
	m := MergeLogs(250000, a.Retrieve(), b.Retrieve())
	var msgs []string
	for _, e := range m.Entries {
		msgs = append(msgs, e.Message)
	}
	if strings.Join(msgs, ",") != "a1,b1,a2" {
		t.Errorf("order %v", msgs)
	}
	if m.EnabledSince.Format(time.RFC3339) != "2026-05-02T09:00:00Z" {
		t.Errorf("since %v", m.EnabledSince)
	}
}

func TestEnableExtendExpireReset(t *testing.T) {
	clk := newClock("2026-05-02T09:00:00Z")
	l := newTestLogs(clk, LogConfig{LogDuration: time.Hour})
	if !l.CheckExpired(clk.Now()) {
		t.Error("never enabled counts as expired")
	}
	l.Enable()
	l.Connection().SuccessMsg(Info{}, "Connection successful")

	clk.Advance(50 * time.Minute)
	s := l.Retrieve() // extends until to 10:50
	if s.EnabledUntil.Format(time.TimeOnly) != "10:50:00" || s.EnabledSince.Format(time.TimeOnly) != "09:00:00" {
		t.Errorf("after retrieve %v %v", s.EnabledSince, s.EnabledUntil)
	}
	// the grain's retrieve: re-enable first, as Ditto's CPA re-broadcasts the enable
	l.Enable()
	s = l.Retrieve()
	if s.EnabledSince.Format(time.TimeOnly) != "09:50:00" || len(s.Entries) != 1 {
		t.Errorf("re-enabled retrieve %v %d", s.EnabledSince, len(s.Entries))
	}

	clk.Advance(59 * time.Minute)
	if l.CheckExpired(clk.Now()) {
		t.Error("expired too early")
	}
	l.Reset()
	s = l.Retrieve()
	if len(s.Entries) != 1 || s.Entries[0].Message != ResetLogsMessage || s.Entries[0].Category != CategoryConnection {
		t.Errorf("after reset %+v", s.Entries)
	}

	clk.Advance(time.Hour + time.Millisecond)
	if !l.CheckExpired(clk.Now()) {
		t.Fatal("not expired")
	}
	if l.Enabled() {
		t.Error("still enabled")
	}
	l.Connection().SuccessMsg(Info{}, "muted")
	l.Reset() // reset while muted records nothing
	if s := l.Retrieve(); len(s.Entries) != 0 || !s.EnabledSince.IsZero() {
		t.Errorf("after expiry %+v", s)
	}
	l.Enable()
	if s := l.Retrieve(); len(s.Entries) != 0 {
		t.Errorf("entries survived expiry: %+v", s.Entries)
	}
	l.Connection().SuccessMsg(Info{}, "x")
	l.Disable()
	if l.Enabled() || len(l.Connection().appendEntries(nil)) != 0 {
		t.Error("disable keeps entries")
	}
}

func TestLogEntryJSONEscaping(t *testing.T) {
	e := LogEntry{CorrelationID: "c", Timestamp: time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC), Category: CategoryTarget,
		Type: Published, Level: LevelFailure, Message: "a \"b\" <c> & \\ \n\x01", Address: "x"}
	got := string(e.AppendJSON(nil))
	want := `{"correlationId":"c","timestamp":"2026-05-02T09:00:00Z","category":"target","type":"published","level":"failure","message":"a \"b\" <c> & \\ \n\u0001","address":"x"}`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
	var back map[string]any
	if err := json.Unmarshal([]byte(got), &back); err != nil || back["message"] != e.Message {
		t.Errorf("round trip %v %v", err, back)
	}
}

// TestLogEntryInvalidUTF8: a message that is not UTF-8 (a broker's payload
// quoted in a failure) is written as Ditto's Java strings hold it, with
// U+FFFD for the bad bytes, so the answer is valid JSON; U+2028 stays as is.
func TestLogEntryInvalidUTF8(t *testing.T) {
	e := LogEntry{CorrelationID: "c", Timestamp: time.Date(2026, 5, 2, 9, 0, 0, 0, time.UTC), Category: CategoryTarget,
		Type: Published, Level: LevelFailure, Message: "a\xffb\u2028"}
	got := string(e.AppendJSON(nil))
	want := `{"correlationId":"c","timestamp":"2026-05-02T09:00:00Z","category":"target","type":"published","level":"failure","message":"a\ufffdb` + "\u2028" + `"}`
	if got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestMutedLoggingDoesNotAllocate(t *testing.T) {
	l := NewLogs(LogOptions{})
	lg := l.Source(Consumed, "a")
	info := Info{CorrelationID: "c", Headers: map[string]string{"a": "b"}}
	if n := testing.AllocsPerRun(1000, func() { lg.Success(info); lg.Failure(info, "x") }); n != 0 {
		t.Errorf("muted logging allocates %v", n)
	}
}

func TestConcurrentLogging(t *testing.T) {
	l := NewLogs(LogOptions{})
	l.Enable()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				l.Source(Consumed, fmt.Sprint(i%5)).Success(Info{})
				if i%100 == 0 {
					l.Reset()
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		_ = l.Retrieve().ConnectionLogsJSON()
	}
	wg.Wait()
	if n := len(l.Retrieve().Entries); n > 5*10+1 {
		t.Errorf("%d entries", n)
	}
}
