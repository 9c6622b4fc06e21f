package monitor

import (
	"reflect"
	"testing"
	"time"
)

// recordingPublisher keeps what Publish gets; with wants set it is a
// DetailsWanter answering wants(e).
type recordingPublisher struct {
	details []string
}

func (p *recordingPublisher) Publish(_ string, _ *LogEntry, details string) {
	p.details = append(p.details, details)
}

type choosyPublisher struct {
	recordingPublisher
	wants func(e *LogEntry) bool
}

func (p *choosyPublisher) WantsDetails(e *LogEntry) bool { return p.wants(e) }

// TestPublisherDetailsOnlyWhenWanted: a publisher without WantsDetails gets
// the details of every entry with a message; one with it gets them only
// where it says so, and the in-memory entries keep theirs either way.
func TestPublisherDetailsOnlyWhenWanted(t *testing.T) {
	info := Info{Headers: map[string]string{"k": "v"}, Payload: "body"}
	const suffix = " - Message headers: [k=v] - Message payload: body"
	log := func(p Publisher) []LogEntry {
		l := NewLogs(LogOptions{ConnectionID: "c", Now: newClock("2026-05-02T09:00:00Z").Now, Publisher: p})
		l.Enable()
		l.Target(Published, "t").Success(info)
		l.Target(Published, "t").Failure(info, "bad")
		l.Target(Mapped, "t").Success(info) // mapped keeps no details in memory
		l.Target(Mapped, "t").Success(Info{})
		return l.Retrieve().Entries
	}
	every := &recordingPublisher{}
	allEntries := log(every)
	if want := []string{suffix, suffix, suffix, ""}; !reflect.DeepEqual(every.details, want) {
		t.Errorf("without WantsDetails: %q, want %q", every.details, want)
	}
	failures := &choosyPublisher{wants: func(e *LogEntry) bool { return e.Level == LevelFailure }}
	someEntries := log(failures)
	if want := []string{"", suffix, "", ""}; !reflect.DeepEqual(failures.details, want) {
		t.Errorf("with WantsDetails: %q, want %q", failures.details, want)
	}
	none := &choosyPublisher{wants: func(*LogEntry) bool { return false }}
	noEntries := log(none)
	if want := []string{"", "", "", ""}; !reflect.DeepEqual(none.details, want) {
		t.Errorf("wanting none: %q, want %q", none.details, want)
	}
	if !reflect.DeepEqual(allEntries, someEntries) || !reflect.DeepEqual(allEntries, noEntries) {
		t.Errorf("in-memory entries differ:\n%+v\n%+v\n%+v", allEntries, someEntries, noEntries)
	}
	if len(allEntries) != 4 || allEntries[0].Message != "Successfully published signal."+suffix {
		t.Errorf("in-memory %+v", allEntries)
	}
}

// TestFluentWantsDetailsChangesNothing: whenever the Fluent publisher says it
// does not want an entry's details, it either drops the entry or publishes
// the same record without them.
func TestFluentWantsDetailsChangesNothing(t *testing.T) {
	for _, hp := range []bool{false, true} {
		for _, levels := range [][]LogLevel{nil, {LevelSuccess}, {LevelFailure}, {LevelSuccess, LevelFailure}} {
			cfg := DefaultFluentConfig()
			cfg.Host, cfg.Port = "127.0.0.1", 1 // never written to
			cfg.LogHeadersAndPayload, cfg.LogLevels = hp, levels
			p, err := NewFluentPublisher(cfg, "i")
			if err != nil {
				t.Fatal(err)
			}
			for _, level := range []LogLevel{LevelSuccess, LevelFailure, LevelFailure + 1} {
				e := &LogEntry{CorrelationID: "x", Timestamp: time.Unix(1, 0), Category: CategoryTarget,
					Type: Published, Level: level, Message: "m", Address: "a"}
				want := hp && level <= LevelFailure && p.levels[level]
				if got := p.WantsDetails(e); got != want {
					t.Errorf("hp %v levels %v level %d: wants %v", hp, levels, level, got)
				}
				if !want && p.publishes(level) &&
					!reflect.DeepEqual(p.Record("c", e, " - details"), p.Record("c", e, "")) {
					t.Errorf("hp %v levels %v level %d: details would have been published", hp, levels, level)
				}
			}
			_ = p.Close()
		}
	}
}

var benchInfo = Info{CorrelationID: "dev-1#42", EntityType: "thing", EntityID: "org.acme:dev-1",
	Headers: map[string]string{"correlation-id": "dev-1#42", "content-type": "application/json",
		"mqtt.topic": "org.acme/dev-1/commands", "mqtt.qos": "1", "mqtt.retain": "false",
		"requested-acks": `["twin-persisted"]`, "response-required": "true", "timeout": "10s"},
	PayloadBytes: []byte(`{"topic":"org.acme/dev-1/things/twin/commands/modify","path":"/features/t/properties/v","value":21.5}`)}

// BenchmarkLogWithPublisher: one message logged with logging enabled and a
// publisher attached that does not read the details (the Fluent publisher
// without logHeadersAndPayload, Ditto's default). "every" is a publisher
// without WantsDetails, which is given the details as every publisher was
// before; "wanted" says it does not want them. Published keeps the details
// in memory, mapped does not.
func BenchmarkLogWithPublisher(b *testing.B) {
	for _, typ := range []LogType{Published, Mapped} {
		for _, c := range []struct {
			name string
			pub  Publisher
		}{
			{"every", &discardPublisher{}},
			{"wanted", &discardChoosyPublisher{}},
		} {
			b.Run(typ.String()+"/"+c.name, func(b *testing.B) {
				l := NewLogs(LogOptions{ConnectionID: "c", Publisher: c.pub})
				l.Enable()
				lg := l.Target(typ, "t")
				b.ReportAllocs()
				for b.Loop() {
					lg.Success(benchInfo)
				}
			})
		}
	}
}

type discardPublisher struct{ n int }

func (p *discardPublisher) Publish(_ string, _ *LogEntry, details string) { p.n += len(details) }

type discardChoosyPublisher struct{ discardPublisher }

func (*discardChoosyPublisher) WantsDetails(*LogEntry) bool { return false }
