package bridge

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/protocol"
)

// peer is a scripted WebSocket server standing in for Ditto's gateway: each
// test drives the sockets it accepts. (The faithful emulator is test/dittoemu.)
type peer struct {
	t        *testing.T
	srv      *httptest.Server
	conns    chan *peerConn
	refuse   atomic.Int32 // status the upgrade is refused with; 0 accepts
	autoAck  atomic.Bool  // answer START-SEND-… with its :ACK
	noPong   atomic.Bool  // swallow pings
	upgrades atomic.Int32
}

type peerConn struct {
	ws   *websocket.Conn
	hdr  http.Header
	in   chan string // text frames received
	wmu  sync.Mutex
	gone chan struct{}
}

const wait = 5 * time.Second

func newPeer(t *testing.T) *peer { return newPeerWith(t, false) }

func newPeerWith(t *testing.T, useTLS bool) *peer {
	p := &peer{t: t, conns: make(chan *peerConn, 64)}
	up := websocket.Upgrader{}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ws/2" {
			http.NotFound(w, r)
			return
		}
		p.upgrades.Add(1)
		if code := p.refuse.Load(); code != 0 {
			w.WriteHeader(int(code))
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		pc := &peerConn{ws: ws, hdr: r.Header.Clone(), in: make(chan string, 1024), gone: make(chan struct{})}
		if p.noPong.Load() {
			ws.SetPingHandler(func(string) error { return nil })
		}
		go func() {
			defer close(pc.gone)
			for {
				_, data, err := ws.ReadMessage()
				if err != nil {
					return
				}
				text := string(data)
				if p.autoAck.Load() && strings.HasPrefix(text, "START-SEND-") {
					name, _, _ := strings.Cut(text, "?")
					pc.send(name + ":ACK")
				}
				select {
				case pc.in <- text:
				default:
				}
			}
		}()
		p.conns <- pc
	}))
	// refused TLS handshakes are part of the tests, not news
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if useTLS {
		p.srv.StartTLS()
	} else {
		p.srv.Start()
	}
	t.Cleanup(p.srv.Close)
	return p
}

func (p *peer) url() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") + "/ws/2" }

// next is the next socket the bridge opens.
func (p *peer) next() *peerConn {
	p.t.Helper()
	select {
	case c := <-p.conns:
		p.t.Cleanup(func() { c.ws.Close() })
		return c
	case <-time.After(wait):
		p.t.Fatal("no WebSocket upgrade from the bridge")
		return nil
	}
}

// none asserts that no further socket opens within d.
func (p *peer) none(d time.Duration) {
	p.t.Helper()
	select {
	case c := <-p.conns:
		p.t.Fatalf("unexpected upgrade with %v", c.hdr)
	case <-time.After(d):
	}
}

func (c *peerConn) send(text string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(wait))
	_ = c.ws.WriteMessage(websocket.TextMessage, []byte(text))
}

func (c *peerConn) sendMsg(m *protocol.Message) { c.send(string(protocol.Encode(m))) }

// recv is the next text frame from the bridge.
func (c *peerConn) recv(t *testing.T) string {
	t.Helper()
	select {
	case s := <-c.in:
		return s
	case <-time.After(wait):
		t.Fatal("no frame from the bridge")
		return ""
	}
}

// recvMsg is the next Ditto Protocol message from the bridge, skipping
// control texts.
func (c *peerConn) recvMsg(t *testing.T) *protocol.Message {
	t.Helper()
	for {
		s := c.recv(t)
		if !strings.HasPrefix(s, "{") {
			continue
		}
		m, err := protocol.Decode([]byte(s))
		if err != nil {
			t.Fatalf("bridge sent %q: %v", s, err)
		}
		return m
	}
}

// waitGone waits for the bridge to close the socket.
func (c *peerConn) waitGone(t *testing.T) {
	t.Helper()
	select {
	case <-c.gone:
	case <-time.After(wait):
		t.Fatal("socket still open")
	}
}

// testConfig is a Config with fast timings for the peer.
func testConfig(p *peer) Config {
	return Config{URI: p.url(), ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
		PingInterval: time.Hour, Logger: zerolog.Nop()}
}

// answers collects the answers of Send.
type answers struct{ ch chan *protocol.Message }

func newAnswers() *answers { return &answers{ch: make(chan *protocol.Message, 64)} }

func (a *answers) fn(m *protocol.Message) { a.ch <- m }

func (a *answers) next(t *testing.T) *protocol.Message {
	t.Helper()
	select {
	case m := <-a.ch:
		return m
	case <-time.After(wait + MaxTimeout):
		t.Fatal("no answer")
		return nil
	}
}

func (a *answers) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-a.ch:
		t.Fatalf("unexpected answer %s", protocol.Encode(m))
	case <-time.After(d):
	}
}
