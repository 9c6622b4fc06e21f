package connection

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/ojson"
	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// The entity's journal format: events and snapshots as Ditto stores them.

// deletedSnapshot is what Ditto stores as the snapshot of a deleted connection.
var deletedSnapshot = []byte(`{"__lifecycle":"DELETED"}`)

// eventJSON is what the entity reads of a journal event's payload.
type eventJSON struct {
	Type       string          `json:"type"`
	Connection json.RawMessage `json:"connection"` // created and modified
}

// decodeSnapshot reads a snapshot's s2 document (nil: deleted).
func decodeSnapshot(payload []byte) (*model.Connection, error) {
	var head struct {
		Lifecycle string `json:"__lifecycle"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return nil, err
	}
	if head.Lifecycle == model.LifecycleDeleted {
		return nil, nil
	}
	c, err := model.Parse(payload)
	if err != nil {
		return nil, err
	}
	if c.Lifecycle == "" {
		c.Lifecycle = model.LifecycleActive
	}
	return c, nil
}

// encodeSnapshot is the snapshot document of c (nil: deleted).
func encodeSnapshot(c *model.Connection) []byte {
	if c == nil {
		return deletedSnapshot
	}
	return c.JSON(true)
}

// decodeEvent reads one journal event.
func decodeEvent(ev persistence.Event) (event, error) {
	var se eventJSON
	if err := json.Unmarshal(ev.Payload, &se); err != nil {
		return event{}, err
	}
	if se.Type == "" {
		se.Type = ev.Manifest
	}
	out := event{typ: se.Type, rev: ev.Seq}
	switch se.Type {
	case ditto.EventConnectionCreated, ditto.EventConnectionModified:
		if len(se.Connection) == 0 {
			return event{}, errors.New("event without connection")
		}
		c, err := model.Parse(se.Connection)
		if err != nil {
			return event{}, err
		}
		if c.Lifecycle == "" {
			c.Lifecycle = model.LifecycleActive
		}
		out.conn = c
	case ditto.EventConnectionOpened, ditto.EventConnectionClosed, ditto.EventConnectionDeleted, ditto.EventEmpty:
	default:
		return event{}, fmt.Errorf("unknown event type %q", se.Type)
	}
	return out, nil
}

// encodeEvent builds the journal event of ev for the connection id, whose
// state after ev is next.
func encodeEvent(pid, id, writer string, ev event, next *model.Connection) persistence.Event {
	return persistence.Event{
		PID:      pid,
		Seq:      ev.rev,
		Manifest: ev.typ,
		Tags:     journalTags(next),
		Writer:   writer,
		Payload:  eventPayload(id, ev),
	}
}

// eventPayload is the event JSON as Ditto stores it.
func eventPayload(id string, ev event) []byte {
	p := ojson.NewObject()
	p.Set("type", str(ev.typ))
	p.Set("_timestamp", str(ditto.FormatInstant(ev.at)))
	p.Set("revision", num(ev.rev))
	p.Set("connectionId", str(id))
	if ev.conn != nil {
		p.Set("connection", raw(ev.conn.JSON(true))) // created and modified
	}
	p.Set("__hh", json.RawMessage("{}"))
	return ojson.GoJSON.Marshal(p)
}

// journalTags are the connection's tags plus always-alive and priority-0
// while its desired status is open; a deleted connection has none.
func journalTags(conn *model.Connection) []string {
	if conn == nil {
		return nil
	}
	tags := append([]string(nil), conn.Tags...)
	if desired(conn) == client.StatusOpen {
		tags = append(tags, AlwaysAliveTag, priorityTag)
	}
	return tags
}
