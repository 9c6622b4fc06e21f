package blackbox

import (
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/dittoconn/dittoconn/test/poll"
)

// TCPProxy forwards loopback connections to a broker. Down drops every
// forwarded connection and refuses new ones, as a stopped broker would; Up
// listens again on the same port.
type TCPProxy struct {
	t       *testing.T
	backend string
	Port    int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// StartProxy forwards a fresh loopback port to backend until the test ends.
func StartProxy(t *testing.T, backend string) *TCPProxy {
	t.Helper()
	p := &TCPProxy{t: t, backend: backend, conns: map[net.Conn]struct{}{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy listen: %v", err)
	}
	p.Port = ln.Addr().(*net.TCPAddr).Port
	p.serve(ln)
	t.Cleanup(func() { p.Down(); p.wg.Wait() })
	return p
}

// Addr is the proxy's host:port.
func (p *TCPProxy) Addr() string { return fmt.Sprintf("127.0.0.1:%d", p.Port) }

func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.DialTimeout("tcp", p.backend, 5*time.Second)
			if err != nil {
				_ = in.Close()
				continue
			}
			p.mu.Lock()
			if p.ln != ln { // went down meanwhile
				p.mu.Unlock()
				_ = in.Close()
				_ = out.Close()
				continue
			}
			p.conns[in], p.conns[out] = struct{}{}, struct{}{}
			p.mu.Unlock()
			p.wg.Add(2)
			go p.pipe(out, in)
			go p.pipe(in, out)
		}
	}()
}

func (p *TCPProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Down closes the listener and every forwarded connection.
func (p *TCPProxy) Down() {
	p.mu.Lock()
	ln := p.ln
	p.ln = nil
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
	}
	for c := range conns {
		_ = c.Close()
	}
}

// Up listens on the same port again.
func (p *TCPProxy) Up() {
	p.t.Helper()
	var ln net.Listener
	poll.Until(p.t, 10*time.Second, "proxy listening again on "+p.Addr(), func() bool {
		var err error
		ln, err = net.Listen("tcp", p.Addr())
		return err == nil
	})
	p.serve(ln)
}
