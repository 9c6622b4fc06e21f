package live

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/blackbox"
	"github.com/dittoconn/dittoconn/test/kit"
	"github.com/dittoconn/dittoconn/test/poll"
)

// recorder keeps what fake clients did, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	fail   error // Connect returns it while set
}

func (r *recorder) add(e string) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *recorder) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) setFail(err error) {
	r.mu.Lock()
	r.fail = err
	r.mu.Unlock()
}

func (r *recorder) reset() {
	r.mu.Lock()
	r.events = nil
	r.mu.Unlock()
}

// fakeClient is a Client that records its calls; each instance is named by
// the connection's name, so old and new configurations can be told apart.
type fakeClient struct {
	rec  *recorder
	name string
	conn *model.Connection
}

func (f *fakeClient) Connect(context.Context) error {
	f.rec.mu.Lock()
	err := f.rec.fail
	f.rec.mu.Unlock()
	if err != nil {
		f.rec.add("connect-failed " + f.name)
		return err
	}
	time.Sleep(20 * time.Millisecond) // a connect takes a while
	f.rec.add("connect " + f.name)
	return nil
}

func (f *fakeClient) Publish(_ context.Context, m client.Message) error {
	kind := "?"
	for _, k := range []string{"opened", "closed"} {
		if strings.Contains(string(m.Payload), "/announcements/"+k) {
			kind = k
		}
	}
	f.rec.add("announce-" + kind + " " + f.name)
	return nil
}

func (f *fakeClient) Status() []client.ResourceStatus {
	now := time.Now()
	st := append([]client.ResourceStatus{client.ClientEntry(now)}, client.SourceEntries(f.conn, now, true)...)
	return append(st, client.TargetEntries(f.conn, now)...)
}

func (f *fakeClient) Close(context.Context) error {
	time.Sleep(20 * time.Millisecond)
	f.rec.add("close " + f.name)
	return nil
}

// TestLiveCommandOrder checks the order of actions per command (spec §4.3)
// with fake clients: create-open replies before connecting, open replies
// after connecting, close and delete announce before disconnecting and reply
// after, modify of an open connection closes the old client before the new
// one connects and replies after that.
func TestLiveCommandOrder(t *testing.T) {
	rec := &recorder{}
	reg := client.Registry{model.TypeMQTT: func(env client.Env) (client.Client, error) {
		name := ""
		if env.Connection.Name != nil {
			name = *env.Connection.Name
		}
		return &fakeClient{rec: rec, name: name, conn: env.Connection}, nil
	}}
	n := kit.Start(t, kit.Bolt().Open(t)(), kit.Options{Clients: reg})
	id := "order-1"
	conn := func(name, status string) map[string]any {
		c := mqttLive("mqtt", id, status, "tcp://127.0.0.1:1")
		c["name"] = name
		return c
	}
	send := func(c map[string]any, want int) {
		t.Helper()
		r := n.Send(t, blackbox.Shard, nil, c)
		if r == nil || int(r.Status) != want {
			t.Fatalf("%s: %v", c["type"], r)
		}
		rec.add(fmt.Sprintf("reply %s", strings.TrimPrefix(c["type"].(string), "connectivity.commands:")))
	}
	expect := func(want ...string) {
		t.Helper()
		if got := rec.list(); !slices.Equal(got, want) {
			t.Fatalf("actions %q\nwant    %q", got, want)
		}
		rec.reset()
	}

	// create with status open: 201 first, then connect and announce
	send(blackbox.Cmd(ditto.CreateConnection, "connection", conn("v1", "open")), http.StatusCreated)
	poll.Until(t, 5*time.Second, "connected", func() bool { return len(rec.list()) == 3 })
	expect("reply createConnection", "connect v1", "announce-opened v1")

	// modify an open connection: old announces closed and closes, new connects, then the reply
	send(blackbox.Cmd(ditto.ModifyConnection, "connection", conn("v2", "open")), http.StatusNoContent)
	expect("announce-closed v1", "close v1", "connect v2", "announce-opened v2", "reply modifyConnection")

	// close: closed announcement, disconnect, reply
	send(blackbox.Cmd(ditto.CloseConnection, "connectionId", id), http.StatusOK)
	expect("announce-closed v2", "close v2", "reply closeConnection")

	// open: connect, opened announcement, reply
	send(blackbox.Cmd(ditto.OpenConnection, "connectionId", id), http.StatusOK)
	expect("connect v2", "announce-opened v2", "reply openConnection")

	// delete: closed announcement, disconnect, reply
	send(blackbox.Cmd(ditto.DeleteConnection, "connectionId", id), http.StatusNoContent)
	expect("announce-closed v2", "close v2", "reply deleteConnection")

	// open that fails: the error is the reply, the desired status stays open
	// and the client keeps retrying until the broker accepts it
	rec.setFail(fmt.Errorf("%w: bad password", client.ErrUnauthorized))
	send(blackbox.Cmd(ditto.CreateConnection, "connection", conn("v3", "closed")), http.StatusCreated)
	send(blackbox.Cmd(ditto.OpenConnection, "connectionId", id), http.StatusUnauthorized)
	poll.Until(t, 5*time.Second, "retries", func() bool {
		return strings.Count(strings.Join(rec.list(), ","), "connect-failed") >= 3
	})
	m := waitLive(t, n, id, "failed", "ongoing", 5*time.Second)
	blackbox.WantField(t, m, "open", "connectionStatus")
	wantEntries(t, m, "sourceStatus", `[{"type":"source","client":"<unknown>","status":"failed","statusDetails":"The source failed to report its status within the timeout."}]`)
	wantEntries(t, m, "targetStatus", `[{"type":"target","client":"<unknown>","status":"failed","statusDetails":"The target failed to report its status within the timeout."}]`)
	rec.setFail(nil)
	defer func() {
		if t.Failed() {
			t.Logf("actions: %q", rec.list())
		}
	}()
	waitLive(t, n, id, "open", "succeeded", 5*time.Second)
}
