// Package mosquitto is the conformance harness of the MQTT clients (3.1.1
// and 5) against the Mosquitto broker of the tests, which takes any login.
package mosquitto

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/client/clienttest"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Addr is where the tests expect Mosquitto.
const Addr = "127.0.0.1:1883"

var seq atomic.Int64

// unique is a name no other test or run uses (MQTT client ids and topics).
func unique(kind string) string {
	return fmt.Sprintf("dittoconn-%s-%d-%d", kind, time.Now().UnixNano(), seq.Add(1))
}

// peer is a plain MQTT 3.1.1 client that publishes to the client's sources
// and listens on its targets (MQTT 5 clients share topics with it).
func peer(t *testing.T) paho.Client {
	t.Helper()
	pc := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + Addr).SetClientID(unique("peer")))
	if tok := pc.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("peer connect: %v", tok.Error())
	}
	t.Cleanup(func() { pc.Disconnect(100) })
	return pc
}

// Harness returns the harness of an MQTT connection type.
func Harness(spec client.Spec) func(t *testing.T) *clienttest.Harness {
	return func(t *testing.T) *clienttest.Harness {
		var pc paho.Client
		peerOnce := func() paho.Client {
			if pc == nil {
				pc = peer(t)
			}
			return pc
		}
		return &clienttest.Harness{
			Factory: spec.New,
			Broker:  Addr,
			Connection: func(addr string, sources []model.Source, targets []model.Target) *model.Connection {
				return &model.Connection{ID: unique("conn"), ConnectionType: spec.Type, ConnectionStatus: "open",
					URI: "tcp://" + addr, Sources: sources, Targets: targets, ClientCount: 1}
			},
			Addresses: func(*testing.T) (string, string) {
				base := "dittoconn/test/" + unique("topic")
				return base + "/in", base + "/out"
			},
			Send: func(t *testing.T, source string, payload []byte) {
				if tok := peerOnce().Publish(source, 1, false, payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("peer publish: %v", tok.Error())
				}
			},
			Listen: func(t *testing.T, target string) func() [][]byte {
				var mu sync.Mutex
				var got [][]byte
				tok := peerOnce().Subscribe(target, 1, func(_ paho.Client, m paho.Message) {
					mu.Lock()
					defer mu.Unlock()
					got = append(got, m.Payload())
				})
				if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("peer subscribe: %v", tok.Error())
				}
				return func() [][]byte {
					mu.Lock()
					defer mu.Unlock()
					return append([][]byte(nil), got...)
				}
			},
			// MQTT redelivers only to a reconnecting persistent session.
			Redelivery: func(c *model.Connection) {
				if c.SpecificConfig == nil {
					c.SpecificConfig = map[string]string{}
				}
				c.SpecificConfig["cleanSession"] = "false"
				c.SpecificConfig["reconnectForRedelivery"] = "true"
				c.SpecificConfig["reconnectForRedeliveryDelay"] = "1s"
			},
			Shape: spec.Shape,
		}
	}
}

// SeparatePublisher checks separatePublisherClient with publisherId: the
// client publishes over a second connection with that client id. A peer
// taking over the id ends that connection (the broker drops the older of
// two sessions with one id), which the client reports as a loss.
func SeparatePublisher(t *testing.T, spec client.Spec) {
	clienttest.NeedBroker(t, Addr)
	base := "dittoconn/test/" + unique("topic")
	pid := unique("publisher")
	conn := &model.Connection{ID: unique("conn"), ConnectionType: spec.Type, ConnectionStatus: "open",
		URI: "tcp://" + Addr, ClientCount: 1,
		Sources:        []model.Source{{Addresses: []string{base + "/in"}, ConsumerCount: 1}},
		Targets:        []model.Target{{Address: base + "/out"}},
		SpecificConfig: map[string]string{"separatePublisherClient": "true", "publisherId": pid, "cleanSession": "true"}}
	c, rec := clienttest.NewClient(t, spec.New, conn)
	if err := c.Connect(clienttest.Context(t, 10*time.Second)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	qos := 1
	if err := c.Publish(clienttest.Context(t, 5*time.Second), client.Message{Address: base + "/out", QoS: &qos, Payload: []byte("x")}); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	if rec.Count(client.ConnectionLost) != 0 {
		t.Fatal("lost before the takeover")
	}
	thief := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + Addr).SetClientID(pid))
	if tok := thief.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("takeover connect: %v", tok.Error())
	}
	t.Cleanup(func() { thief.Disconnect(100) })
	rec.WaitEvent(t, client.ConnectionLost, 10*time.Second)
}

// KeepAliveOnTheWire checks that specificConfig keepAlive reaches the
// broker as Ditto reads it (a Typesafe duration, a bare number being
// milliseconds, whole seconds rounded down): a listener reads the keep-alive
// field of each CONNECT the client sends. It needs no broker.
func KeepAliveOnTheWire(t *testing.T, spec client.Spec) {
	for _, tc := range []struct {
		value string // "" = not configured
		want  uint16
	}{
		{"", 60},      // Ditto's default
		{"60", 0},     // 60 ms: no keep-alive, as in Ditto
		{"60s", 60},   //
		{"90000", 90}, // 90000 ms
		{"1500ms", 1}, // rounded down
		{"2 minutes", 120},
	} {
		t.Run("keepAlive="+tc.value, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			got := make(chan uint16, 1)
			go func() {
				c, err := l.Accept()
				if err != nil {
					return
				}
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(10 * time.Second))
				if ka, err := connectKeepAlive(bufio.NewReader(c)); err == nil {
					got <- ka
				} else {
					t.Errorf("reading CONNECT: %v", err)
				}
			}()
			sc := map[string]string{}
			if tc.value != "" {
				sc["keepAlive"] = tc.value
			}
			conn := &model.Connection{ID: unique("conn"), ConnectionType: spec.Type, ConnectionStatus: "open",
				URI: "tcp://" + l.Addr().String(), ClientCount: 1, SpecificConfig: sc,
				Targets: []model.Target{{Address: "dittoconn/test/keepalive"}}}
			c, _ := clienttest.NewClient(t, spec.New, conn)
			// the listener never answers CONNACK: Connect fails once it closes
			_ = c.Connect(clienttest.Context(t, 10*time.Second))
			select {
			case ka := <-got:
				if ka != tc.want {
					t.Errorf("keepAlive %q: CONNECT keep-alive %d s, want %d s", tc.value, ka, tc.want)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no CONNECT in 10 s")
			}
		})
	}
}

// connectKeepAlive reads an MQTT CONNECT packet (3.1.1 or 5) up to its
// keep-alive field: fixed header, variable-length remaining length,
// protocol name, level, flags, then the 2-byte keep-alive.
func connectKeepAlive(r *bufio.Reader) (uint16, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, err
	}
	if typ>>4 != 1 {
		return 0, fmt.Errorf("packet type %d, want CONNECT (1)", typ>>4)
	}
	for i := 0; ; i++ { // remaining length: at most 4 bytes
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if b&0x80 == 0 {
			break
		}
		if i == 3 {
			return 0, fmt.Errorf("malformed remaining length")
		}
	}
	var head [2]byte
	if _, err := io.ReadFull(r, head[:]); err != nil {
		return 0, err
	}
	// protocol name, level, connect flags, keep-alive
	rest := make([]byte, int(binary.BigEndian.Uint16(head[:]))+2+2)
	if _, err := io.ReadFull(r, rest); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(rest[len(rest)-2:]), nil
}
