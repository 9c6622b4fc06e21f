package connection

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// TestAnswersGolden runs one connection through every command and holds
// each answer (status, revision, body) and each journal document to the
// bytes in testdata/answers.golden, which were recorded before the grain was
// split into entity and supervisor. UPDATE_GOLDEN=1 records them again.
func TestAnswersGolden(t *testing.T) {
	const golden = "testdata/answers.golden"
	h := newGrainHarness(t)
	now := time.Date(2026, 5, 2, 10, 0, 0, 0, time.UTC)
	h.cfg.Now = func() time.Time { return now }
	h.cfg.Clients = h.cfg.Clients.With(client.Registry{model.TypeMQTT5: h.cfg.Clients[model.TypeMQTT].New})
	// The journal as written: the delete removes it from the store afterwards.
	rec := &appendRecorder{Store: h.cfg.Store}
	h.cfg.Store = rec
	var b strings.Builder
	g := h.spawn(testID)
	two := strings.Replace(connJSON("mqtt-5", "closed"), `"tags"`, `"clientCount":2,"tags"`, 1)
	for _, c := range []struct{ typ, payload string }{
		{ditto.CreateConnection, withConnection(two)},
		{ditto.RetrieveConnection, ""},
		{ditto.RetrieveConnection, `{"selectedFields":"id,tags"}`},
		{ditto.SudoRetrieveConnectionTags, ""},
		{ditto.RetrieveConnectionStatus, ""},
		{ditto.RetrieveConnectionMetrics, ""},
		{ditto.EnableConnectionLogs, ""},
		{ditto.OpenConnection, ""},
		{ditto.RetrieveConnectionStatus, ""},
		{ditto.RetrieveConnectionMetrics, ""},
		{ditto.RetrieveConnectionLogs, ""},
		{ditto.ResetConnectionMetrics, ""},
		{ditto.ModifyConnection, withConnection(connJSON("amqp-091", "closed"))},
		{ditto.ModifyConnection, withConnection(connJSON("mqtt-5", "open"))},
		{ditto.RetrieveConnectionStatus, ""},
		{ditto.ModifyConnection, withConnection(connJSON("mqtt-5", "closed"))},
		{ditto.RetrieveConnectionStatus, ""},
		{ditto.CloseConnection, ""},
		{ditto.ResetConnectionLogs, ""},
		{ditto.TestConnection, withConnection(connJSON("mqtt", "open"))},
		{ditto.CreateConnection, withConnection(connJSON("mqtt", "closed"))},
		{ditto.DeleteConnection, ""},
		{ditto.RetrieveConnection, ""},
		{ditto.TestConnection, withConnection(strings.Replace(connJSON("amqp-091", "open"), "tcp://broker:1883", "amqp://127.0.0.1:1", 1))},
		{ditto.ModifyConnection, `{"connection":{}}`},
		{"connectivity.commands:nope", ""},
	} {
		r := h.ask(g, c.typ, c.payload, nil)
		fmt.Fprintf(&b, "%s kind=%v status=%d headers=%v\n%s\n", c.typ, r.Kind, r.Status, r.Headers, r.Payload)
	}
	for _, ev := range rec.events {
		fmt.Fprintf(&b, "event %d %s %v %s\n", ev.Seq, ev.Manifest, ev.Tags, ev.Payload)
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Split(b.String(), "\n")
	for i, line := range strings.Split(string(want), "\n") {
		if i >= len(got) || got[i] != line {
			g := ""
			if i < len(got) {
				g = got[i]
			}
			t.Fatalf("%s line %d:\n got %s\nwant %s", golden, i+1, g, line)
		}
	}
	if len(got) != len(strings.Split(string(want), "\n")) {
		t.Fatalf("%d lines, %s has %d", len(got), golden, len(strings.Split(string(want), "\n")))
	}
}

// appendRecorder keeps what the grain appended (the grain's goroutine is
// the only writer, and the test reads after the last answer).
type appendRecorder struct {
	Store
	events []persistence.Event
}

func (r *appendRecorder) Append(ctx context.Context, ev persistence.Event) error {
	if err := r.Store.Append(ctx, ev); err != nil {
		return err
	}
	r.events = append(r.events, ev)
	return nil
}
