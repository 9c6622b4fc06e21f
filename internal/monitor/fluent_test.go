package monitor

import (
	"errors"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fluent/fluent-logger-golang/fluent"
	"github.com/tinylib/msgp/msgp"
)

// forwardRecord is one event received over the forward protocol.
type forwardRecord struct {
	tag    string
	time   time.Time
	record map[string]any
}

// forwardReceiver is a minimal Fluentd forward-protocol input: it decodes
// Message mode ([tag, time, record, option]) and Forward mode ([tag,
// [[time, record]…], option]) and answers chunk options with an ack.
type forwardReceiver struct {
	ln      net.Listener
	mu      sync.Mutex
	records []forwardRecord
	got     chan struct{}
}

func startReceiver(t *testing.T) *forwardReceiver {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &forwardReceiver{ln: ln, got: make(chan struct{}, 1000)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go r.serve(t, c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return r
}

func (r *forwardReceiver) port() int { return r.ln.Addr().(*net.TCPAddr).Port }

func eventTime(v any) time.Time {
	switch x := v.(type) {
	case *fluent.EventTime:
		return time.Time(*x).UTC()
	case int64:
		return time.Unix(x, 0).UTC()
	case uint64:
		return time.Unix(int64(x), 0).UTC()
	}
	return time.Time{}
}

func (r *forwardReceiver) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	rd := msgp.NewReader(c)
	w := msgp.NewWriter(c)
	for {
		v, err := rd.ReadIntf()
		if err != nil {
			if !errors.Is(err, io.EOF) && !strings.Contains(err.Error(), "closed") {
				t.Logf("receiver: %v", err)
			}
			return
		}
		msg, ok := v.([]any)
		if !ok || len(msg) < 2 {
			t.Errorf("receiver: not a forward message: %#v", v)
			return
		}
		tag, _ := msg[0].(string)
		var option map[string]any
		if entries, ok := msg[1].([]any); ok { // Forward mode
			for _, e := range entries {
				pair := e.([]any)
				r.add(forwardRecord{tag, eventTime(pair[0]), pair[1].(map[string]any)})
			}
			if len(msg) > 2 {
				option, _ = msg[2].(map[string]any)
			}
		} else { // Message mode
			r.add(forwardRecord{tag, eventTime(msg[1]), msg[2].(map[string]any)})
			if len(msg) > 3 {
				option, _ = msg[3].(map[string]any)
			}
		}
		if chunk, ok := option["chunk"].(string); ok {
			_ = w.WriteMapHeader(1)
			_ = w.WriteString("ack")
			_ = w.WriteString(chunk)
			_ = w.Flush()
		}
	}
}

func (r *forwardReceiver) add(rec forwardRecord) {
	r.mu.Lock()
	r.records = append(r.records, rec)
	r.mu.Unlock()
	r.got <- struct{}{}
}

func (r *forwardReceiver) wait(t *testing.T, n int) []forwardRecord {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		if len(r.records) >= n {
			out := append([]forwardRecord(nil), r.records...)
			r.mu.Unlock()
			return out
		}
		r.mu.Unlock()
		select {
		case <-r.got:
		case <-deadline:
			t.Fatalf("received %d of %d records", len(r.records), n)
		}
	}
}

func TestFluentPublishingToForwardReceiver(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run("ack="+strconv.FormatBool(ack), func(t *testing.T) {
			recv := startReceiver(t)
			cfg := DefaultFluentConfig()
			cfg.Enabled = true
			cfg.Host, cfg.Port = "127.0.0.1", recv.port()
			cfg.AckResponseMode = ack
			cfg.AdditionalLogContext = map[string]string{"env": "test"}
			pub, err := NewFluentPublisher(cfg, "connectivity-0")
			if err != nil {
				t.Fatal(err)
			}
			defer pub.Close()

			clk := newClock("2026-05-02T09:16:10.002003004Z")
			l := NewLogs(LogOptions{ConnectionID: "mqtt-1", Now: clk.Now, Publisher: pub})
			// muted: published all the same (Ditto never mutes the publisher)
			l.Source(Consumed, "devices/#").Success(Info{CorrelationID: "7c1f", EntityType: "thing",
				EntityID: "org.acme:dev-1", Headers: map[string]string{"a": "b"}, Payload: "p"})
			l.Connection().FailureMsg(Info{}, "Connection failed due to: refused")

			recs := recv.wait(t, 2)
			first := recs[0]
			if first.tag != "connection:mqtt-1" {
				t.Errorf("tag %q", first.tag)
			}
			if !first.time.Equal(clk.Now()) {
				t.Errorf("event time %v, want %v (nanoseconds kept)", first.time, clk.Now())
			}
			want := map[string]string{"connectionId": "mqtt-1", "level": "success", "category": "source",
				"type": "consumed", "correlationId": "7c1f", "address": "devices/#", "entityType": "thing",
				"entityId": "org.acme:dev-1", "message": "Received signal.", "instanceId": "connectivity-0", "env": "test"}
			checkRecord(t, first.record, want)
			second := recs[1].record
			if _, ok := second["correlationId"]; ok {
				t.Errorf("default correlation id published: %v", second)
			}
			checkRecord(t, second, map[string]string{"connectionId": "mqtt-1", "level": "failure",
				"category": "connection", "type": "other", "message": "Connection failed due to: refused",
				"instanceId": "connectivity-0", "env": "test"})
		})
	}
}

func checkRecord(t *testing.T, got map[string]any, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("record has %d fields, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %#v, want %q", k, got[k], v)
		}
	}
}

func TestFluentLevelsTagAndHeaders(t *testing.T) {
	recv := startReceiver(t)
	cfg := DefaultFluentConfig()
	cfg.Host, cfg.Port = "127.0.0.1", recv.port()
	cfg.LogLevels = []LogLevel{LevelFailure}
	cfg.LogTag = "ditto.connections"
	cfg.LogHeadersAndPayload = true
	pub, err := NewFluentPublisher(cfg, "")
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	l := NewLogs(LogOptions{ConnectionID: "c", Publisher: pub})
	l.Enable()
	info := Info{Headers: map[string]string{"k": "v"}, Payload: "body"}
	l.Target(Published, "t").Success(info) // level filtered out
	l.Target(Mapped, "t").Failure(info, "bad")
	recs := recv.wait(t, 1)
	time.Sleep(100 * time.Millisecond)
	if len(recv.wait(t, 1)) != 1 {
		t.Error("success published despite logLevels=failure")
	}
	if recs[0].tag != "ditto.connections" {
		t.Errorf("tag %q", recs[0].tag)
	}
	// the publisher appends headers/payload by its own setting, even for a
	// type whose in-memory entries do not carry them
	if got := recs[0].record["message"]; got != "Ran into a failure when mapping outgoing signal: bad - Message headers: [k=v] - Message payload: body" {
		t.Errorf("message %q", got)
	}
	if _, ok := recs[0].record["instanceId"]; ok {
		t.Error("empty instance id published")
	}
	// in memory the mapped entry has no suffix
	if e := l.Retrieve().Entries; len(e) != 2 || strings.Contains(e[1].Message, "headers") {
		t.Errorf("in-memory %+v", e)
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"CONNECTIVITY_LOGGER_PUBLISHER_ENABLED":                                                 "true",
		"CONNECTIVITY_LOGGER_PUBLISHER_LOG_LEVELS":                                              "failure",
		"CONNECTIVITY_LOGGER_PUBLISHER_LOG_TAG":                                                 "tag",
		"CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_HOST":                                            "fluent-bit",
		"CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_PORT":                                            "24225",
		"CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_CONNECTION_TIMEOUT":                              "10s",
		"CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_WAIT_UNTIL_ALL_BUFFER_FLUSHED_DURATION_ON_CLOSE": "1500",
		"CONNECTIVITY_LOGGER_LOG_DURATION":                                                      "1d",
		"CONNECTIVITY_LOGGER_SUCCESS_CAPACITY":                                                  "20",
	}
	get := func(k string) string { return env[k] }
	f, err := FluentConfigFromEnv(get)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Enabled || len(f.LogLevels) != 1 || f.LogLevels[0] != LevelFailure || f.LogTag != "tag" ||
		f.Host != "fluent-bit" || f.Port != 24225 || f.ConnectionTimeout != 10*time.Second ||
		f.WaitUntilAllBufferFlushedDurationOnClose != 1500*time.Millisecond || f.ReadTimeout != 5*time.Second {
		t.Errorf("fluent config %+v", f)
	}
	l, err := LogConfigFromEnv(get)
	if err != nil || l.LogDuration != 24*time.Hour || l.SuccessCapacity != 20 || l.FailureCapacity != 10 ||
		l.MaxLogSizeBytes != 250000 {
		t.Errorf("log config %+v %v", l, err)
	}
	env["CONNECTIVITY_LOGGER_PUBLISHER_FLUENCY_PORT"] = "x"
	if _, err := FluentConfigFromEnv(get); err == nil {
		t.Error("bad port accepted")
	}
	d := DefaultFluentConfig()
	if d.Enabled || d.Host != "localhost" || d.Port != 24224 || d.MaxBufferSize != 64<<20 || d.SenderMaxRetryCount != 7 {
		t.Errorf("defaults %+v", d)
	}
}

// TestFluentBitIfInstalled sends entries to a real Fluent Bit when one is on
// PATH (Debian does not package it; set FLUENT_BIT to its binary otherwise).
func TestFluentBitIfInstalled(t *testing.T) {
	bin := os.Getenv("FLUENT_BIT")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("fluent-bit"); err != nil {
			t.Skip("fluent-bit not installed")
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	cmd := exec.Command(bin, "-i", "forward", "-p", "listen=127.0.0.1", "-p", "port="+strconv.Itoa(port),
		"-o", "stdout", "-p", "format=json_lines", "-m", "*", "-f", "1")
	var out strings.Builder
	var mu sync.Mutex
	cmd.Stdout = writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return out.Write(p) })
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()

	cfg := DefaultFluentConfig()
	cfg.Host, cfg.Port = "127.0.0.1", port
	pub, err := NewFluentPublisher(cfg, "connectivity-0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewLogs(LogOptions{ConnectionID: "fb-1", Publisher: pub})
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		l.Connection().SuccessMsg(Info{}, "Connection successful")
		time.Sleep(500 * time.Millisecond)
		mu.Lock()
		s := out.String()
		mu.Unlock()
		if strings.Contains(s, `"connectionId":"fb-1"`) && strings.Contains(s, `"message":"Connection successful"`) {
			_ = pub.Close()
			return
		}
	}
	t.Fatalf("fluent-bit printed no record: %s", out.String())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
