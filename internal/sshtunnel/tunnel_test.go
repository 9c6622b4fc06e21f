package sshtunnel

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
	"github.com/dittoconn/dittoconn/internal/sshtunnel/sshdtest"
)

// echoServer answers every line with itself; it stops with t.
func echoServer(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); _ = c.Close() }()
		}
	}()
	return l.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func testLogger(t *testing.T) zerolog.Logger { return zerolog.New(zerolog.NewTestWriter(t)) }

// openForward starts a tunnel of tun to target and returns it, closed with t.
func openForward(t *testing.T, tun *model.SSHTunnel, target string) (*forward, error) {
	t.Helper()
	f, err := listen(target, DefaultConfig(), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.close)
	return f, f.start(ctxFor(t, 10*time.Second), tun)
}

func echoThrough(t *testing.T, port int, line string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintln(c, line); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || strings.TrimSpace(got) != line {
		t.Fatalf("echo through the tunnel: %q, %v", got, err)
	}
}

func TestIntegrationTunnelForwards(t *testing.T) {
	s := sshdtest.Start(t)
	echo := echoServer(t)
	for _, tc := range []struct {
		name string
		tun  func() *model.SSHTunnel
	}{
		{"password, SHA256 fingerprint", func() *model.SSHTunnel { return s.Tunnel("plain") }},
		{"public key, MD5 fingerprint", func() *model.SSHTunnel {
			tun := s.Tunnel("public-key")
			tun.KnownHosts = []string{"SHA512:AAAA", s.MD5}
			return tun
		}},
		{"no host validation", func() *model.SSHTunnel {
			tun := s.Tunnel("plain")
			tun.ValidateHost, tun.KnownHosts = false, nil
			return tun
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := openForward(t, tc.tun(), echo)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			echoThrough(t, f.port(), "one")
			echoThrough(t, f.port(), "two") // a second forwarded connection
			if e := f.failure(); e != nil {
				t.Fatalf("failure after forwarding: %v", e)
			}
		})
	}
}

// wantError checks a tunnel failure against Ditto's wording and status.
func wantError(t *testing.T, err error, text string, status client.Status, sentinel error) *Error {
	t.Helper()
	var te *Error
	if !errors.As(err, &te) {
		t.Fatalf("error %v (%T) is not a tunnel error", err, err)
	}
	if err.Error() != text {
		t.Fatalf("error text %q, want %q", err.Error(), text)
	}
	if te.Status() != status {
		t.Fatalf("tunnel status %s, want %s", te.Status(), status)
	}
	if !errors.Is(err, sentinel) || !errors.Is(err, client.ErrConfig) {
		t.Fatalf("%v does not wrap %v and ErrConfig", err, sentinel)
	}
	return te
}

func TestIntegrationTunnelRefusals(t *testing.T) {
	s := sshdtest.Start(t)
	echo := echoServer(t)
	t.Run("wrong password", func(t *testing.T) {
		tun := s.Tunnel("plain")
		bad := "wrong-" + s.Password
		tun.Credentials.Password = &bad
		_, err := openForward(t, tun, echo)
		te := wantError(t, err, "Failed to authenticate at SSH server - cause <SshException>: No more authentication methods available.",
			client.StatusMisconfigured, client.ErrUnauthorized)
		if strings.Contains(err.Error(), bad) || strings.Contains(fmt.Sprint(errors.Unwrap(te.cause)), bad) {
			t.Fatal("the error shows the password")
		}
		if te.Description() != "Cause: No more authentication methods available" {
			t.Fatalf("description %q", te.Description())
		}
	})
	t.Run("key pair of another key", func(t *testing.T) {
		other := sshdtest.Start(t) // same user, a different key pair
		tun := s.Tunnel("public-key")
		tun.Credentials.PublicKey = other.PublicKeyPEM
		_, err := openForward(t, tun, echo)
		wantError(t, err, "Failed to authenticate at SSH server - cause <SshException>: No more authentication methods available.",
			client.StatusMisconfigured, client.ErrUnauthorized)
	})
	t.Run("wrong host key", func(t *testing.T) {
		tun := s.Tunnel("plain")
		tun.KnownHosts = []string{"SHA256:MEULjymCqsBH6TkmQzKmA+G2qd+AJwarKwr84vUsQ+Y"}
		_, err := openForward(t, tun, echo)
		wantError(t, err, "Failed to authenticate at SSH server - cause <SshException>: Server key did not validate.",
			client.StatusFailed, client.ErrUnauthorized)
	})
	t.Run("unreachable ssh server", func(t *testing.T) {
		tun := s.Tunnel("plain")
		tun.URI = "ssh://" + closedPort(t)
		_, err := openForward(t, tun, echo)
		te := wantError(t, err, "Failed to connect to ssh server - cause <ConnectException>: Connection refused.",
			client.StatusMisconfigured, client.ErrUnreachable)
		if d := te.StatusDetails(); d != "SSH tunnel failed - cause <ConnectException>: Connection refused." {
			t.Fatalf("status details %q", d)
		}
	})
	t.Run("ssh server that never answers", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = l.Close() })
		var mu sync.Mutex
		var held []net.Conn
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}
		}()
		t.Cleanup(func() {
			mu.Lock()
			defer mu.Unlock()
			for _, c := range held {
				_ = c.Close()
			}
		})
		tun := s.Tunnel("plain")
		tun.URI = "ssh://" + l.Addr().String()
		f, err := listen(echo, DefaultConfig(), testLogger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		err = f.start(ctx, tun)
		wantError(t, err, "Failed to authenticate at SSH server - cause <SshException>: SSH handshake timed out.",
			client.StatusFailed, client.ErrTimeout)
	})
	t.Run("broker refused behind the tunnel", func(t *testing.T) {
		f, err := openForward(t, s.Tunnel("plain"), closedPort(t))
		if err != nil {
			t.Fatalf("open: %v", err)
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", f.port()), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Close() }()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read through a refused channel succeeded")
		}
		wantError(t, f.failure(), "Opening SSH channel failed with exception - cause <SshChannelOpenException>: Connection refused.",
			client.StatusMisconfigured, client.ErrUnreachable)
	})
}

// Check is testConnection's reachability check for types without a live
// client: a channel to the endpoint through the tunnel.
func TestIntegrationCheck(t *testing.T) {
	s := sshdtest.Start(t)
	if err := Check(ctxFor(t, 10*time.Second), s.Tunnel("public-key"), echoServer(t), nil); err != nil {
		t.Fatalf("Check of a reachable endpoint: %v", err)
	}
	wantError(t, Check(ctxFor(t, 10*time.Second), s.Tunnel("public-key"), closedPort(t), nil),
		"Opening SSH channel failed with exception - cause <SshChannelOpenException>: Connection refused.",
		client.StatusMisconfigured, client.ErrUnreachable)
	tun := s.Tunnel("public-key")
	tun.URI = "ssh://" + closedPort(t)
	wantError(t, Check(ctxFor(t, 10*time.Second), tun, echoServer(t), nil),
		"Failed to connect to ssh server - cause <ConnectException>: Connection refused.",
		client.StatusMisconfigured, client.ErrUnreachable)
}
