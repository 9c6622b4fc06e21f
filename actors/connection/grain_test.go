package connection

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clients"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/monitor"
	"github.com/dittoconn/dittoconn/persistence/bolt"
	pb "github.com/dittoconn/dittoconn/proto"
	"github.com/dittoconn/dittoconn/proto/ditto"
	"github.com/dittoconn/dittoconn/test/poll"
)

// fakeClient connects with connectErr, once gate (if any) is closed; it
// consumes nothing and reports the test connection's one target open.
type fakeClient struct {
	connectErr error
	gate       chan struct{}
	closed     *atomic.Int32
}

func (c *fakeClient) Connect(ctx context.Context) error {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return c.connectErr
}

func (c *fakeClient) Publish(context.Context, client.Message) error { return nil }
func (c *fakeClient) Status() []client.ResourceStatus {
	return []client.ResourceStatus{{Type: "target", Address: "out", Status: client.StatusOpen}}
}
func (c *fakeClient) Close(context.Context) error { c.closed.Add(1); return nil }

// grainHarness runs connection grains as plain actors over one bolt store.
type grainHarness struct {
	t          *testing.T
	sys        *actor.ActorSystem
	cfg        Config
	connects   atomic.Int32
	closes     atomic.Int32
	connectErr error         // set before the first connect
	gate       chan struct{} // set before the first connect
}

func newGrainHarness(t *testing.T) *grainHarness {
	t.Helper()
	store, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := &grainHarness{t: t, sys: actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))}
	runners := NewRunners(0)
	t.Cleanup(func() {
		runners.Stop(5 * time.Second)
		h.sys.Shutdown()
		_ = store.Close(context.Background())
	})
	// every type's validation rules, and a live (fake) client for mqtt only
	specs := clients.Specs()
	for typ, spec := range specs {
		spec.New = nil
		specs[typ] = spec
	}
	h.cfg = Config{Store: store, Instance: "i1", WriterID: "w", Runners: runners,
		Clients: specs.With(client.Registry{model.TypeMQTT: func(client.Env) (client.Client, error) {
			h.connects.Add(1)
			return &fakeClient{connectErr: h.connectErr, gate: h.gate, closed: &h.closes}, nil
		}})}
	// set one by one: they may be promoted from an embedded settings struct
	h.cfg.SnapshotThreshold = 3
	h.cfg.Validation = model.DefaultValidationConfig()
	h.cfg.defaults()
	return h
}

// spawn starts the grain of id, as the cluster would activate it.
func (h *grainHarness) spawn(id string) *actor.PID {
	cfg := h.cfg
	pol := newPolicy(&cfg)
	pid := h.sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &grain{cfg: &cfg, pol: pol} }))
	h.sys.Root.Send(pid, &cluster.ClusterInit{Identity: &cluster.ClusterIdentity{Identity: id, Kind: Kind}})
	return pid
}

func (h *grainHarness) ask(pid *actor.PID, typ, payload string, headers map[string]string) *pb.Reply {
	h.t.Helper()
	r, err := h.sys.Root.RequestFuture(pid, &pb.Command{Type: typ, EntityId: testID, Payload: []byte(payload), Headers: headers},
		5*time.Second).Result()
	if err != nil {
		h.t.Fatalf("%s: %v", typ, err)
	}
	return r.(*pb.Reply)
}

// field is one top-level field of a reply's JSON.
func field(t *testing.T, r *pb.Reply, key string) any {
	t.Helper()
	var body map[string]any
	if err := json.Unmarshal(r.Payload, &body); err != nil {
		t.Fatalf("payload %s: %v", r.Payload, err)
	}
	return body[key]
}

// The supervisor answers open once the client connected and close once it
// stopped, and the status follows the client.
func TestGrainOpenCloseWaitForClients(t *testing.T) {
	h := newGrainHarness(t)
	g := h.spawn(testID)
	if r := h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "closed")), nil); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Payload)
	}
	if r := h.ask(g, ditto.RetrieveConnectionStatus, "", nil); field(t, r, "liveStatus") != "closed" {
		t.Fatalf("status before open: %s", r.Payload)
	}
	r := h.ask(g, ditto.OpenConnection, "", nil)
	if r.Status != 200 || h.connects.Load() != 1 || r.Headers[ditto.HeaderEntityRevision] != "2" {
		t.Fatalf("open: %d %s, %d connects, headers %v", r.Status, r.Payload, h.connects.Load(), r.Headers)
	}
	r = h.ask(g, ditto.RetrieveConnectionStatus, "", nil)
	if field(t, r, "liveStatus") != "open" || field(t, r, "recoveryStatus") != "succeeded" || field(t, r, "connectionStatus") != "open" {
		t.Fatalf("status after open: %s", r.Payload)
	}
	r = h.ask(g, ditto.CloseConnection, "", nil)
	if r.Status != 200 || h.closes.Load() != 1 {
		t.Fatalf("close: %d %s, %d closes", r.Status, r.Payload, h.closes.Load())
	}
	r = h.ask(g, ditto.RetrieveConnectionStatus, "", nil)
	if field(t, r, "liveStatus") != "closed" || field(t, r, "connectionStatus") != "closed" {
		t.Fatalf("status after close: %s", r.Payload)
	}
}

// A client the broker refuses answers open with Ditto's 401; the desired
// status stays open.
func TestGrainOpenUnauthorized(t *testing.T) {
	h := newGrainHarness(t)
	h.connectErr = client.ErrUnauthorized
	g := h.spawn(testID)
	h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "closed")), nil)
	r := h.ask(g, ditto.OpenConnection, "", nil)
	if r.Status != 401 || field(t, r, "error") != ditto.CodeConnectionUnauthorized {
		t.Fatalf("open: %d %s", r.Status, r.Payload)
	}
	r = h.ask(g, ditto.RetrieveConnection, "", nil)
	if c, _ := field(t, r, "connection").(map[string]any); c["connectionStatus"] != "open" {
		t.Errorf("after a failed open: %s", r.Payload)
	}
	// a command that wants no answer gets none, also when it waits
	r = h.ask(g, ditto.CloseConnection, "", map[string]string{ditto.HeaderResponseRequired: "false"})
	if r.Kind != pb.Reply_NO_ANSWER {
		t.Errorf("close without response required: %+v", r)
	}
}

// Deleting a running connection answers once its client stopped; a new
// activation recovers the journal (through a snapshot) and reopens a
// desired-open connection.
func TestGrainDeleteAndRecover(t *testing.T) {
	h := newGrainHarness(t)
	g := h.spawn(testID)
	h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "open")), nil)
	h.ask(g, ditto.ModifyConnection, withConnection(connJSON("mqtt", "open")), nil) // waits for the new client
	if n := h.connects.Load(); n != 2 {
		t.Fatalf("%d connects after create and modify, want 2", n)
	}
	h.sys.Root.Stop(g)

	// revision 2 of 3 events' threshold: recovered from the journal
	g = h.spawn(testID)
	r := h.ask(g, ditto.RetrieveConnection, "", nil)
	if r.Status != 200 || r.Headers[ditto.HeaderEntityRevision] != "2" {
		t.Fatalf("recovered retrieve: %d %v %s", r.Status, r.Headers, r.Payload)
	}
	poll.Until(t, 5*time.Second, "the recovered desired-open connection reconnects", func() bool { return h.connects.Load() == 3 })
	h.ask(g, ditto.OpenConnection, "", nil)       // revision 3: snapshot
	r = h.ask(g, ditto.DeleteConnection, "", nil) // revision 4
	if r.Status != 204 || r.Headers[ditto.HeaderEntityRevision] != "4" || h.closes.Load() < 2 {
		t.Fatalf("delete: %d %v, %d closes", r.Status, r.Headers, h.closes.Load())
	}
	h.sys.Root.Stop(g)

	g = h.spawn(testID)
	if r := h.ask(g, ditto.RetrieveConnection, "", nil); r.Status != 404 || field(t, r, "error") != ditto.CodeConnectionNotFound {
		t.Fatalf("retrieve after delete: %d %s", r.Status, r.Payload)
	}
	if r := h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "closed")), nil); r.Headers[ditto.HeaderEntityRevision] != "5" {
		t.Errorf("re-create at revision %v, want 5", r.Headers)
	}
}

// A command waiting for clients that a later configuration replaced is
// answered as succeeded once the old clients are gone; the later command
// waits for its own clients.
func TestGrainSupersededWaiter(t *testing.T) {
	h := newGrainHarness(t)
	h.gate = make(chan struct{})
	g := h.spawn(testID)
	h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "closed")), nil)
	open := h.sys.Root.RequestFuture(g, &pb.Command{Type: ditto.OpenConnection, EntityId: testID}, 5*time.Second)
	poll.Until(t, 5*time.Second, "open starts connecting", func() bool { return h.connects.Load() == 1 })
	modify := h.sys.Root.RequestFuture(g, &pb.Command{Type: ditto.ModifyConnection, EntityId: testID,
		Payload: []byte(withConnection(connJSON("mqtt", "open")))}, 5*time.Second)
	r, err := open.Result()
	if err != nil || r.(*pb.Reply).Status != 200 || field(t, r.(*pb.Reply), "type") != "connectivity.responses:openConnection" {
		t.Fatalf("superseded open: %v, %v", r, err)
	}
	poll.Until(t, 5*time.Second, "the new client connects", func() bool { return h.connects.Load() == 2 })
	close(h.gate)
	r, err = modify.Result()
	if err != nil || r.(*pb.Reply).Status != 204 || r.(*pb.Reply).Headers[ditto.HeaderEntityRevision] != "3" {
		t.Fatalf("modify: %v, %v", r, err)
	}
}

// Opening a type without live clients only changes the desired status: the
// answer comes at once and the status shows the closed client entry.
func TestGrainOpenWithoutClients(t *testing.T) {
	h := newGrainHarness(t)
	g := h.spawn(testID)
	amqp := strings.Replace(connJSON("amqp-091", "closed"), "tcp://broker:1883", "amqp://broker:5672", 1)
	if r := h.ask(g, ditto.CreateConnection, withConnection(amqp), nil); r.Status != 201 {
		t.Fatalf("create: %d %s", r.Status, r.Payload)
	}
	if r := h.ask(g, ditto.OpenConnection, "", nil); r.Status != 200 {
		t.Fatalf("open: %d %s", r.Status, r.Payload)
	}
	r := h.ask(g, ditto.RetrieveConnectionStatus, "", nil)
	if field(t, r, "connectionStatus") != "open" || field(t, r, "liveStatus") != "closed" || h.connects.Load() != 0 {
		t.Errorf("status %s after %d connects", r.Payload, h.connects.Load())
	}
}

// seriesOf counts the exported series that carry id in any label.
func seriesOf(t *testing.T, c *monitor.Collector, id string) int {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range families {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == id {
					n++
				}
			}
		}
	}
	return n
}

// Deleting a connection drops its Prometheus series: deleted ids must not
// grow the export with churn.
func TestGrainDeleteDropsSeries(t *testing.T) {
	for _, running := range []bool{true, false} {
		h := newGrainHarness(t)
		h.cfg.Collector = monitor.NewCollector()
		g := h.spawn(testID)
		h.ask(g, ditto.CreateConnection, withConnection(connJSON("mqtt", "closed")), nil)
		if r := h.ask(g, ditto.OpenConnection, "", nil); r.Status != 200 {
			t.Fatalf("open: %d %s", r.Status, r.Payload)
		}
		if !running {
			h.ask(g, ditto.CloseConnection, "", nil)
		}
		if n := seriesOf(t, h.cfg.Collector, testID); n == 0 {
			t.Fatalf("running=%v: no series of the connection before the delete", running)
		}
		if r := h.ask(g, ditto.DeleteConnection, "", nil); r.Status != 204 {
			t.Fatalf("delete: %d %s", r.Status, r.Payload)
		}
		// the stopping client's last report must not bring a series back
		h.ask(g, ditto.RetrieveConnection, "", nil)
		if n := seriesOf(t, h.cfg.Collector, testID); n != 0 {
			t.Errorf("running=%v: %d series of the deleted connection", running, n)
		}
	}
}
