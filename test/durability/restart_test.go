package durability

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/persistence"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// TestRestartKeepsEverything: 100 connections, some modified, some deleted;
// stop; start on the same store: every retrieve and the id listing are exact.
func TestRestartKeepsEverything(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			open := eng.Open(t)
			n := kit.Start(t, open(), kit.Options{SnapshotThreshold: 3})
			const total = 100
			want := map[string][]byte{} // id → retrieve body before the restart
			var live []string
			for i := 0; i < total; i++ {
				id := fmt.Sprintf("restart-%03d", i)
				r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.MQTTConnection(id, "closed", fmt.Sprintf("group-%d", i%3))))
				if r == nil || r.Status != 201 {
					t.Fatalf("create %s: %+v", id, r)
				}
				switch {
				case i%10 == 0:
					if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id)); r.Status != 204 {
						t.Fatalf("delete %s: %d %s", id, r.Status, r.Payload)
					}
					continue
				case i%4 == 0:
					c := blackbox.MQTTConnection(id, "closed", "modified")
					c["name"] = "modified " + id
					for k := 0; k < 4; k++ { // crosses the snapshot threshold
						if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.ModifyConnection, "connection", c)); r.Status != 204 {
							t.Fatalf("modify %s: %d %s", id, r.Status, r.Payload)
						}
					}
				}
				live = append(live, id)
			}
			for _, id := range live {
				r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "id,name,_revision,_created,_modified,connectionStatus,tags,uri,sources,targets"))
				want[id] = r.Payload
			}
			idsBefore := n.Send(t, blackbox.IDsPath, nil, blackbox.Cmd(ditto.RetrieveAllConnectionIDs)).Payload
			byTag := n.Send(t, blackbox.IDsPath, nil, blackbox.Cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "modified")).Payload
			n.Stop()

			n2 := kit.Start(t, open(), kit.Options{SnapshotThreshold: 3})
			for _, id := range live {
				r := n2.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "id,name,_revision,_created,_modified,connectionStatus,tags,uri,sources,targets"))
				if string(r.Payload) != string(want[id]) {
					t.Errorf("%s after restart:\n got %s\nwant %s", id, r.Payload, want[id])
				}
			}
			for i := 0; i < total; i += 10 {
				id := fmt.Sprintf("restart-%03d", i)
				if r := n2.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id)); r.Status != 404 {
					t.Errorf("deleted %s answers %d", id, r.Status)
				}
			}
			var got struct {
				ConnectionIDs []string `json:"connectionIds"`
			}
			after := n2.Send(t, blackbox.IDsPath, nil, blackbox.Cmd(ditto.RetrieveAllConnectionIDs)).Payload
			if string(after) != string(idsBefore) {
				t.Errorf("id listing changed:\n got %s\nwant %s", after, idsBefore)
			}
			if err := json.Unmarshal(after, &got); err != nil || !slices.Equal(got.ConnectionIDs, live) {
				t.Errorf("ids = %v, want %v (%v)", got.ConnectionIDs, live, err)
			}
			if tagAfter := n2.Send(t, blackbox.IDsPath, nil, blackbox.Cmd(ditto.SudoRetrieveConnectionIDsTag, "tag", "modified")).Payload; string(tagAfter) != string(byTag) {
				t.Errorf("by tag changed: %s vs %s", tagAfter, byTag)
			}
		})
	}
}

// TestSnapshotsAndPassivation: a snapshot every N events, an idle closed
// grain passivates and comes back intact from snapshot + later events.
func TestSnapshotsAndPassivation(t *testing.T) {
	for _, eng := range blackbox.Engines() {
		t.Run(eng.Name, func(t *testing.T) {
			store := eng.Open(t)()
			n := kit.Start(t, store, kit.Options{SnapshotThreshold: 10, PassivateAfter: 200 * time.Millisecond})
			id := "snap-1"
			if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.MQTTConnection(id, "closed"))); r.Status != 201 {
				t.Fatalf("create: %d %s", r.Status, r.Payload)
			}
			for i := 0; i < 12; i++ { // 13 events, the last a close: one snapshot at 10
				typ := ditto.OpenConnection
				if i%2 == 1 {
					typ = ditto.CloseConnection
				}
				if r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(typ, "connectionId", id)); r.Status != 200 {
					t.Fatalf("%s: %d %s", typ, r.Status, r.Payload)
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			snap, err := store.LatestSnapshot(ctx, "connection:"+id)
			if err != nil {
				t.Fatalf("latest snapshot: %v", err)
			}
			if snap.Seq != 10 {
				t.Errorf("snapshot at seq %d, want 10", snap.Seq)
			}
			var s2 map[string]any
			_ = json.Unmarshal(snap.Payload, &s2)
			blackbox.WantField(t, s2, "ACTIVE", "__lifecycle")
			blackbox.WantField(t, s2, id, "id")
			if hs, _ := store.HighestSeq(ctx, "connection:"+id); hs != 13 {
				t.Errorf("highest seq %d, want 13", hs)
			}
			// the last command was close → desired closed → passivates
			poll.Until(t, 5*time.Second, "grain passivated", func() bool { return n.Sys.ActivatedGrains() == 0 })
			r := n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.RetrieveConnection, "connectionId", id, "selectedFields", "id,connectionStatus,_revision"))
			if string(r.Payload) != `{"type":"connectivity.responses:retrieveConnection","status":200,"connection":{"id":"snap-1","connectionStatus":"closed","_revision":1}}` {
				t.Errorf("after passivation: %s", r.Payload)
			}
			if r.Headers[ditto.HeaderEntityRevision] != "13" {
				t.Errorf("entity-revision = %q, want 13", r.Headers[ditto.HeaderEntityRevision])
			}
		})
	}
}

// TestJournalDocumentsAreDittos reads the stored events back through the
// contract and checks the event payloads as Ditto writes them; the deleted
// event, which the delete's cleanup removes, as it was appended.
func TestJournalDocumentsAreDittos(t *testing.T) {
	store := &appendLog{Store: kit.Bolt().Open(t)()}
	n := kit.Start(t, store, kit.Options{})
	id := "doc-1"
	n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CreateConnection, "connection", blackbox.MQTTConnection(id, "open", "prod")))
	n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.CloseConnection, "connectionId", id))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var evs []persistence.Event
	if err := store.Replay(ctx, "connection:"+id, 1, func(ev persistence.Event) error { evs = append(evs, ev); return nil }); err != nil {
		t.Fatal(err)
	}
	n.Send(t, blackbox.Shard, nil, blackbox.Cmd(ditto.DeleteConnection, "connectionId", id))
	if len(evs) != 2 || len(store.appended()) != 3 {
		t.Fatalf("%d events stored, %d appended", len(evs), len(store.appended()))
	}
	evs = append(evs, store.appended()[2])
	wantManifests := []string{ditto.EventConnectionCreated, ditto.EventConnectionClosed, ditto.EventConnectionDeleted}
	wantTags := [][]string{{"prod", "always-alive", "priority-0"}, {"prod"}, nil}
	for i, ev := range evs {
		if ev.Manifest != wantManifests[i] || ev.Seq != int64(i+1) {
			t.Errorf("event %d: %s seq %d", i, ev.Manifest, ev.Seq)
		}
		if !slices.Equal(ev.Tags, wantTags[i]) {
			t.Errorf("event %d tags %v, want %v", i, ev.Tags, wantTags[i])
		}
		p := blackbox.Decode(t, ev.Payload)
		blackbox.WantField(t, p, wantManifests[i], "type")
		blackbox.WantField(t, p, i+1, "revision")
		blackbox.WantField(t, p, id, "connectionId")
		blackbox.WantField(t, p, map[string]any{}, "__hh")
		if _, err := ditto.ParseInstant(p["_timestamp"].(string)); err != nil {
			t.Errorf("_timestamp %v: %v", p["_timestamp"], err)
		}
	}
	created := blackbox.Decode(t, evs[0].Payload)
	blackbox.WantField(t, created, "ACTIVE", "connection", "__lifecycle")
	blackbox.WantField(t, created, 1, "connection", "_revision")
	if created["connection"].(map[string]any)["_created"] == nil {
		t.Errorf("created event lacks _created: %s", evs[0].Payload)
	}
	keys := orderedKeys(t, evs[0].Payload)
	if !slices.Equal(keys, []string{"type", "_timestamp", "revision", "connectionId", "connection", "__hh"}) {
		t.Errorf("event key order %v", keys)
	}
}

func orderedKeys(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	var keys []string
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// appendLog keeps every event appended through it.
type appendLog struct {
	persistence.Store
	mu  sync.Mutex
	evs []persistence.Event
}

func (l *appendLog) Append(ctx context.Context, ev persistence.Event) error {
	if err := l.Store.Append(ctx, ev); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.evs = append(l.evs, ev)
	return nil
}

func (l *appendLog) appended() []persistence.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.evs)
}
