package dataplane

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/internal/placeholder"
	"github.com/dittoconn/dittoconn/internal/protocol"
	"github.com/dittoconn/dittoconn/proto/ditto"
)

// Connection announcements (opened/closed) take Ditto's outbound way on the
// connection's own targets that subscribe to _/_/connections/announcements:
// no authorization check (Ditto's SignalFilter lets announcements through),
// then the target's payload mapping (the Ditto mapper writes the Ditto
// Protocol message, Normalized drops it, a JavaScript mapper sees it as any
// signal), address placeholders and header mapping. The client runner calls
// Announce synchronously with its own client, before the plane publishes
// anything else (opened) or after it stopped (closed), as Ditto's client
// actor sends them around its connected state.

// Announces reports whether some target subscribes to connection
// announcements.
func (p *Plane) Announces() bool {
	if p == nil {
		return false
	}
	return slices.ContainsFunc(p.targets, (*target).announces)
}

func (t *target) announces() bool {
	return slices.ContainsFunc(t.t.Topics, func(ft model.FilteredTopic) bool {
		return ft.Topic == model.TopicConnectionAnnouncements
	})
}

// announcementMessage is the Ditto Protocol message of the connection
// announcement kind (client.AnnouncementOpened/Closed) of connection id at
// at.
func announcementMessage(id, kind string, at time.Time) protocol.Message {
	value, _ := json.Marshal(map[string]string{kind + "At": ditto.FormatInstant(at)}) // strings: cannot fail
	return protocol.Message{Topic: "_/" + id + "/connections/announcements/" + kind,
		Headers: map[string]string{"content-type": "application/json"}, Path: "/", Value: value}
}

// Announce publishes the announcement kind through cl to every target that
// subscribes to announcements, each through its payload and header mapping;
// ctx bounds all publishes. Each step is counted on the target's address
// as for any signal; failures are counted and logged there.
func (p *Plane) Announce(ctx context.Context, cl client.Client, kind string, at time.Time) {
	if p == nil {
		return
	}
	msg := announcementMessage(p.id, kind, at)
	topic, _ := protocol.ParseTopic(msg.Topic)
	for _, t := range p.targets {
		if !t.announces() {
			continue
		}
		now := p.now()
		info := p.info(msg.Headers, msg.Value, &topic, now)
		t.st.c[monitor.Dispatched].RecordAt(true, now)
		t.st.l[monitor.Dispatched].Success(info)
		t.st.c[monitor.Filtered].RecordAt(true, now)
		t.st.l[monitor.Filtered].Success(info)
		vals := placeholder.ForMessage(&msg, p.id)
		vals.Time = now
		t.mapOut(msg, vals, info, now, nil, func(ext *protocol.External, address string, h map[string]string) {
			err := cl.Publish(ctx, client.Message{Address: address, Headers: h, Payload: payloadOf(ext), QoS: t.t.QoS})
			t.countPublished(info, err)
			if err != nil {
				p.log.Warn().Err(err).Str("address", address).Str("announcement", kind).Msg("announcement not sent")
			}
		})
	}
}
