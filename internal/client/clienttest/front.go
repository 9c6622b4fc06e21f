package clienttest

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

// Proxy forwards TCP connections to a broker; Cut closes its port and every
// connection, so that clients see the network fail, and Back opens the
// same port again.
type Proxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	l     net.Listener
	conns []net.Conn
}

var _ Front = (*Proxy)(nil)

// NewProxy starts a proxy to target, stopped with t.
func NewProxy(t *testing.T, target string) *Proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, addr: l.Addr().String()}
	p.serve(l)
	t.Cleanup(p.Cut)
	return p
}

// Address is where clients connect.
func (p *Proxy) Address() string { return p.addr }

func (p *Proxy) serve(l net.Listener) {
	p.mu.Lock()
	p.l = l
	p.mu.Unlock()
	go func() {
		for {
			in, err := l.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			if p.l != l { // cut meanwhile
				p.mu.Unlock()
				_, _ = in.Close(), out.Close()
				return
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(out, in); _ = out.Close() }()
			go func() { _, _ = io.Copy(in, out); _ = in.Close() }()
		}
	}()
}

// Cut drops every connection and closes the port.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		_ = p.l.Close()
		p.l = nil
	}
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// Back opens the port again.
func (p *Proxy) Back() {
	p.t.Helper()
	var l net.Listener
	poll.Check(p.t, 5*time.Second, func() (err error) {
		l, err = net.Listen("tcp", p.addr)
		return err
	})
	p.serve(l)
}

// CutListener wraps a broker's own listener (an in-process broker that
// advertises its address, as Kafka does, cannot sit behind a proxy): Cut
// drops every accepted connection and closes new ones at once until Back.
type CutListener struct {
	net.Listener

	mu    sync.Mutex
	down  bool
	conns []net.Conn
}

var _ Front = (*CutListener)(nil)

// Accept hands over connections while the listener is not cut.
func (l *CutListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		l.mu.Lock()
		if l.down {
			l.mu.Unlock()
			_ = c.Close()
			continue
		}
		l.conns = append(l.conns, c)
		l.mu.Unlock()
		return c, nil
	}
}

// Address is the broker's address.
func (l *CutListener) Address() string { return l.Listener.Addr().String() }

// Cut drops every connection and refuses new ones.
func (l *CutListener) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = true
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

// Back accepts connections again.
func (l *CutListener) Back() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.down = false
}
