package live

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// leanMQTT is a device simulator for benchmarks: an MQTT 3.1.1 client that
// does only QoS 1 publish and subscribe, with its writes buffered and
// flushed when it would otherwise wait, so that the benchmark's own
// devices cost about what the baseline's WebSocket client costs (paho
// spends a goroutine hand-over and a write syscall per packet). Not a
// general client: no reconnect, no QoS 2, no TLS.
type leanMQTT struct {
	conn    net.Conn
	mu      sync.Mutex // w
	w       *bufio.Writer
	nextID  uint16
	slots   chan struct{} // one per unacknowledged PUBLISH
	subAck  chan struct{}
	onMsg   func(topic string, payload []byte)
	readErr chan error
}

// dialLean connects to uri (tcp://host:port) as clientID with a clean
// session; window bounds its unacknowledged publishes.
func dialLean(t *testing.T, uri, clientID string, window int, onMsg func(topic string, payload []byte)) *leanMQTT {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.DialTimeout("tcp", u.Host, 10*time.Second)
	if err != nil {
		t.Fatalf("lean MQTT client: %v", err)
	}
	c := &leanMQTT{conn: conn, w: bufio.NewWriterSize(conn, 64<<10), slots: make(chan struct{}, window),
		subAck: make(chan struct{}, 1), onMsg: onMsg, readErr: make(chan error, 1)}
	var p []byte
	p = appendString(p, "MQTT")
	p = append(p, 4, 0x02, 0, 60) // level 3.1.1, clean session, keep-alive 60 s
	p = appendString(p, clientID)
	c.packet(0x10, p)
	c.flush()
	r := bufio.NewReaderSize(conn, 64<<10)
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, body, err := readPacket(r)
	if err != nil || typ != 0x20 || len(body) != 2 || body[1] != 0 {
		t.Fatalf("lean MQTT client: CONNACK %x %x %v", typ, body, err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	go c.read(r)
	t.Cleanup(func() {
		c.mu.Lock()
		_, _ = c.w.Write([]byte{0xe0, 0}) // DISCONNECT
		_ = c.w.Flush()
		c.mu.Unlock()
		_ = conn.Close()
	})
	return c
}

func appendString(b []byte, s string) []byte {
	return append(binary.BigEndian.AppendUint16(b, uint16(len(s))), s...)
}

// packet buffers one packet; the caller holds no lock.
func (c *leanMQTT) packet(header byte, body []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.w.WriteByte(header)
	n := len(body)
	for {
		b := byte(n % 128)
		if n /= 128; n > 0 {
			b |= 0x80
		}
		c.w.WriteByte(b)
		if n == 0 {
			break
		}
	}
	c.w.Write(body)
}

func (c *leanMQTT) flush() {
	c.mu.Lock()
	_ = c.w.Flush()
	c.mu.Unlock()
}

// Subscribe subscribes to filter at QoS 1 and waits for the SUBACK.
func (c *leanMQTT) Subscribe(t *testing.T, filter string) {
	t.Helper()
	p := binary.BigEndian.AppendUint16(nil, 1)
	p = append(appendString(p, filter), 1)
	c.packet(0x82, p)
	c.flush()
	select {
	case <-c.subAck:
	case err := <-c.readErr:
		t.Fatalf("lean MQTT subscribe: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("lean MQTT subscribe: no SUBACK")
	}
}

// Publish buffers a QoS 1 PUBLISH, flushing first when the window is full.
func (c *leanMQTT) Publish(topic string, payload []byte) {
	select {
	case c.slots <- struct{}{}:
	default:
		c.flush()
		c.slots <- struct{}{}
	}
	c.nextID++
	if c.nextID == 0 {
		c.nextID = 1
	}
	p := appendString(make([]byte, 0, len(topic)+len(payload)+4), topic)
	p = binary.BigEndian.AppendUint16(p, c.nextID)
	c.packet(0x32, append(p, payload...))
}

// WaitAcked flushes and waits until every publish is acknowledged.
func (c *leanMQTT) WaitAcked(t *testing.T, within time.Duration) {
	t.Helper()
	c.flush()
	deadline := time.After(within)
	for range cap(c.slots) {
		select {
		case c.slots <- struct{}{}:
		case err := <-c.readErr:
			t.Fatalf("lean MQTT client: %v", err)
		case <-deadline:
			t.Fatalf("lean MQTT client: publishes unacknowledged after %v", within)
		}
	}
	for range cap(c.slots) {
		<-c.slots
	}
}

func (c *leanMQTT) read(r *bufio.Reader) {
	for {
		typ, body, err := readPacket(r)
		if err != nil {
			c.readErr <- err
			return
		}
		switch typ & 0xf0 {
		case 0x40: // PUBACK
			<-c.slots
		case 0x90: // SUBACK
			c.subAck <- struct{}{}
		case 0x30: // PUBLISH
			if len(body) < 2 {
				c.readErr <- fmt.Errorf("short PUBLISH")
				return
			}
			n := int(binary.BigEndian.Uint16(body))
			topic, rest := string(body[2:2+n]), body[2+n:]
			if qos := (typ >> 1) & 3; qos > 0 {
				c.packet(0x40, rest[:2:2])
				rest = rest[2:]
			}
			c.onMsg(topic, rest)
			if r.Buffered() == 0 { // nothing more to read now: send the PUBACKs
				c.flush()
			}
		}
	}
}

// readPacket reads one MQTT packet: its first byte and its body.
func readPacket(r *bufio.Reader) (byte, []byte, error) {
	typ, err := r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mult := 0, 1
	for {
		b, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mult
		if b&0x80 == 0 {
			break
		}
		mult *= 128
	}
	body := make([]byte, n)
	_, err = io.ReadFull(r, body)
	return typ, body, err
}
