package connection

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dittoconn/dittoconn/actors/model"
	"github.com/dittoconn/dittoconn/persistence"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

const (
	lifecycleActive  = "ACTIVE"
	lifecycleDeleted = "DELETED"
)

// deletedSnapshot is what Ditto stores as the snapshot of a deleted connection.
var deletedSnapshot = []byte(`{"__lifecycle":"DELETED"}`)

// storedEvent is the part of a journal event payload the grain reads back.
type storedEvent struct {
	Type       string          `json:"type"`
	Timestamp  string          `json:"_timestamp"`
	Connection json.RawMessage `json:"connection"`
}

// applySnapshot sets the entity from a snapshot's s2 document.
func (g *grain) applySnapshot(payload []byte) error {
	var head struct {
		Lifecycle string `json:"__lifecycle"`
	}
	if err := json.Unmarshal(payload, &head); err != nil {
		return err
	}
	if head.Lifecycle == lifecycleDeleted {
		g.conn, g.deleted = nil, true
		return nil
	}
	c, err := model.Parse(payload)
	if err != nil {
		return err
	}
	if c.Lifecycle == "" {
		c.Lifecycle = lifecycleActive
	}
	g.conn, g.deleted = c, false
	return nil
}

// applyStored applies one journal event during recovery.
func (g *grain) applyStored(ev persistence.Event) error {
	var se storedEvent
	if err := json.Unmarshal(ev.Payload, &se); err != nil {
		return err
	}
	if se.Type == "" {
		se.Type = ev.Manifest
	}
	switch se.Type {
	case ditto.EventConnectionCreated, ditto.EventConnectionModified:
		if len(se.Connection) == 0 {
			return errors.New("event without connection")
		}
		c, err := model.Parse(se.Connection)
		if err != nil {
			return err
		}
		if c.Lifecycle == "" {
			c.Lifecycle = lifecycleActive
		}
		g.conn, g.deleted = c, false
	case ditto.EventConnectionOpened:
		if g.conn != nil {
			g.conn.ConnectionStatus = "open"
		}
	case ditto.EventConnectionClosed:
		if g.conn != nil {
			g.conn.ConnectionStatus = "closed"
		}
	case ditto.EventConnectionDeleted:
		g.conn, g.deleted = nil, true
	case ditto.EventEmpty:
		// carries journal tags only
	default:
		return fmt.Errorf("unknown event type %q", se.Type)
	}
	return nil
}

// eventPayload builds the event JSON as Ditto stores it: type, _timestamp,
// revision, connectionId, [connection], __hh.
func (g *grain) eventPayload(eventType string, rev int64, now time.Time, conn *model.Connection) []byte {
	o := newObj().
		set("type", eventType).
		set("_timestamp", ditto.FormatInstant(now)).
		set("revision", rev).
		set("connectionId", g.id)
	if conn != nil {
		o.raw("connection", conn.JSON(true))
	}
	o.raw("__hh", []byte("{}"))
	return o.bytes()
}

// journalTags are the connection's tags plus always-alive and priority-0
// while its desired status is open; a deleted connection has none.
func journalTags(conn *model.Connection) []string {
	if conn == nil {
		return nil
	}
	tags := append([]string(nil), conn.Tags...)
	if conn.ConnectionStatus == "open" {
		tags = append(tags, "always-alive", "priority-0")
	}
	return tags
}

// persist appends one event for the state the grain moves to (next == nil:
// deleted) and, when due, a snapshot. The in-memory state changes only after
// the journal accepted the event.
func (g *grain) persist(cmd *pb.Command, eventType string, now time.Time, next *model.Connection, withConnection bool) error {
	ctx, cancel := g.storeCtx(cmd)
	defer cancel()
	rev := g.seq + 1
	var evConn *model.Connection
	if withConnection {
		evConn = next
	}
	ev := persistence.Event{
		PID:      g.pid,
		Seq:      rev,
		Manifest: eventType,
		Tags:     journalTags(next),
		Writer:   g.cfg.WriterID,
		Payload:  g.eventPayload(eventType, rev, now, evConn),
	}
	if err := g.cfg.Store.Append(ctx, ev); err != nil {
		return err
	}
	g.seq = rev
	g.conn, g.deleted, g.connJSON = next, next == nil, nil
	if g.seq-g.lastSnapshotSeq >= int64(g.cfg.SnapshotThreshold) {
		g.snapshot(ctx, now)
	}
	return nil
}

// snapshot saves the current entity; a failure only delays the next one.
func (g *grain) snapshot(ctx context.Context, now time.Time) {
	payload := deletedSnapshot
	if g.conn != nil {
		payload = g.conn.JSON(true)
	}
	err := g.cfg.Store.SaveSnapshot(ctx, persistence.Snapshot{
		PID: g.pid, Seq: g.seq, Timestamp: now.UnixMilli(), Payload: payload,
	})
	if err != nil {
		g.log.Warn().Err(err).Int64("seq", g.seq).Msg("snapshot failed")
		return
	}
	g.lastSnapshotSeq = g.seq
}
