package dataplane

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/internal/bus"
	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/monitor"
)

// boundedClient has its own request bound and reports the time each
// publish was given.
type boundedClient struct {
	bound time.Duration
	given chan time.Duration
}

func (b *boundedClient) Connect(context.Context) error { return nil }
func (b *boundedClient) Publish(ctx context.Context, _ client.Message) error {
	d, _ := ctx.Deadline()
	b.given <- time.Until(d)
	return nil
}
func (b *boundedClient) RequestTimeout() time.Duration   { return b.bound }
func (b *boundedClient) Status() []client.ResourceStatus { return nil }
func (b *boundedClient) Close(context.Context) error     { return nil }

// TestHTTPPushRequestTimeoutBoundsThePublish: a client with its own request
// bound (HTTP push's request-timeout, 60 s in Ditto) gets that bound for a
// publish, not the plane's shorter PublishTimeout.
func TestHTTPPushRequestTimeoutBoundsThePublish(t *testing.T) {
	b := bus.NewLocal()
	src, _ := start(t, b, strings.Replace(sourceConn, `"enforcement":{"input":"{{ header:device-id }}","filters":["{{ thing:id }}"]}`, `"qos":0`, 1))
	tgt, err := New(parse(t, `{"id":"tgt","connectionType":"http-push","connectionStatus":"open","uri":"http://h:80",
 "targets":[{"address":"POST:/out","authorizationContext":["a:b"],"topics":["_/_/things/twin/events"]}]}`),
		Config{Bus: b, Logs: monitor.NewLogs(monitor.LogOptions{ConnectionID: "tgt"}), Workers: 1, PublishTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	bc := &boundedClient{bound: time.Minute, given: make(chan time.Duration, 1)}
	tgt.Connected(0, bc)
	t.Cleanup(func() { tgt.Close(); tgt.Wait() })
	src.Inbound(0)(client.Message{Address: "q", Payload: []byte(
		`{"topic":"org.acme/dev/things/twin/events/modified","headers":{"correlation-id":"1"},"path":"/attributes/n","value":1}`)})
	select {
	case d := <-bc.given:
		if d < 50*time.Second || d > time.Minute {
			t.Fatalf("publish given %v, want the client's 1m0s", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing published")
	}
}
