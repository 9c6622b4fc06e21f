package sshtunnel

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/ssh"

	"github.com/dittoconn/dittoconn/internal/client"
	"github.com/dittoconn/dittoconn/internal/model"
)

// Config tunes every tunnel (Ditto's ditto.connectivity.tunnel).
type Config struct {
	// HeartbeatInterval is how often a keep-alive request goes to the SSH
	// server; a tunnel whose server does not answer one within the interval
	// is closed (and its client reconnects through a new one). 0: none.
	HeartbeatInterval time.Duration
	// DialTimeout bounds opening one forwarded channel (the SSH server
	// connecting to the broker) when the client dials through the tunnel.
	DialTimeout time.Duration
}

// Defaults: Ditto's heartbeat-interval; a channel dial as long as a connect.
const (
	DefaultHeartbeatInterval = 30 * time.Second
	DefaultDialTimeout       = 10 * time.Second
)

// maxHandshake bounds connecting to the SSH server when the caller's
// context has no sooner deadline.
const maxHandshake = 30 * time.Second

// DefaultConfig is Ditto's tunnel configuration.
func DefaultConfig() Config {
	return Config{HeartbeatInterval: DefaultHeartbeatInterval, DialTimeout: DefaultDialTimeout}
}

// errKeyMismatch: the public key of public-key credentials is not the
// private key's; the server would refuse the signature, as it does for
// Ditto, which sends both.
var errKeyMismatch = errors.New("sshtunnel: the public key does not belong to the private key")

// forward is the local end of one tunnel: a loopback listener whose
// connections are forwarded over SSH to target (RFC 4254 section 7.2,
// "direct-tcpip"). It is bound before the SSH session exists so that the
// protocol's client can be built with its address; connections made
// before Start wait in the listener's backlog.
type forward struct {
	ln     net.Listener
	target string // broker host:port as the SSH server resolves it
	cfg    Config
	log    zerolog.Logger
	// control checks the SSH server's address against the blocked hosts
	// at every dial (nil: none).
	control func(network, address string, c syscall.RawConn) error

	mu      sync.Mutex
	ssh     *ssh.Client
	err     *Error        // first failure; nil while up or after Close
	closed  bool          // Close was called
	dead    chan struct{} // closed on the first failure or Close
	conns   map[net.Conn]struct{}
	started bool
	wg      sync.WaitGroup
}

// listen binds the local end of a tunnel to target.
func listen(target string, cfg Config, log zerolog.Logger) (*forward, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sshtunnel: local end of the tunnel: %w", err)
	}
	return &forward{ln: ln, target: target, cfg: cfg, log: log, dead: make(chan struct{}),
		conns: map[net.Conn]struct{}{}}, nil
}

// port is the local port of the forward.
func (f *forward) port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// start opens the SSH session described by t and starts forwarding, bounded
// by ctx. On error the forward is closed.
func (f *forward) start(ctx context.Context, t *model.SSHTunnel) error {
	cl, err := dial(ctx, t, f.control)
	if err != nil {
		f.close()
		return err
	}
	f.mu.Lock()
	if f.closed || f.started {
		f.mu.Unlock()
		_ = cl.Close()
		return errors.New("sshtunnel: tunnel closed")
	}
	f.ssh, f.started = cl, true
	f.mu.Unlock()
	f.wg.Add(2)
	go f.accept()
	go f.watch()
	if f.cfg.HeartbeatInterval > 0 {
		f.wg.Add(1)
		go f.heartbeat()
	}
	return nil
}

// dial connects and authenticates to the SSH server of t within ctx;
// control (may be nil) is the dialer's check of the address.
func dial(ctx context.Context, t *model.SSHTunnel, control func(network, address string, c syscall.RawConn) error) (*ssh.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, maxHandshake) // the caller's deadline when sooner
	defer cancel()
	addr, err := serverAddress(t.URI)
	if err != nil {
		return nil, &Error{Stage: stageConnect, Kind: "IllegalArgumentException", Msg: err.Error(), userIndicated: true, cause: err}
	}
	user, auth, err := credentials(t.Credentials)
	if err != nil {
		return nil, err
	}
	d := net.Dialer{KeepAlive: 15 * time.Second, Control: control} // Ditto's socket-keepalive
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, dialError(err)
	}
	// the handshake is bounded by ctx: its deadline on the socket, its
	// cancellation by closing the socket
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	c, chans, reqs, err := ssh.NewClientConn(conn, addr, &ssh.ClientConfig{
		User: user, Auth: auth, HostKeyCallback: hostKeyCallback(t.ValidateHost, t.KnownHosts),
	})
	if !stop() || err != nil {
		_ = conn.Close()
		if err == nil || ctx.Err() != nil {
			err = errors.Join(context.DeadlineExceeded, ctx.Err(), err)
		}
		return nil, handshakeError(err)
	}
	_ = conn.SetDeadline(time.Time{})
	return ssh.NewClient(c, chans, reqs), nil
}

// serverAddress is host:port of an ssh:// URI (port 22 when it has none).
func serverAddress(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return "", errors.New("the SSH server URI cannot be parsed")
	}
	if u.Hostname() == "" {
		return "", errors.New("the SSH server URI has no host")
	}
	port := u.Port()
	if port == "" {
		port = "22"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// credentials are the user and the one authentication method of cr, as
// Ditto allows one method per tunnel (password or public key).
func credentials(cr model.Credentials) (string, []ssh.AuthMethod, error) {
	user := ""
	if cr.Username != nil {
		user = *cr.Username
	}
	switch cr.Type {
	case "plain":
		pw := ""
		if cr.Password != nil {
			pw = *cr.Password
		}
		return user, []ssh.AuthMethod{ssh.Password(pw)}, nil
	case "public-key":
		signer, err := keySigner(cr.PrivateKey, cr.PublicKey)
		if err != nil {
			if errors.Is(err, errKeyMismatch) {
				return "", nil, handshakeError(err)
			}
			// Ditto: RuntimeException "... load key from ...", a user-indicated error
			return "", nil, &Error{Stage: stageAuth, Kind: "RuntimeException", Msg: "Could not load key from the credentials: " + err.Error(),
				userIndicated: true, cause: err}
		}
		return user, []ssh.AuthMethod{ssh.PublicKeys(signer)}, nil
	}
	return "", nil, &Error{Stage: stageAuth, Kind: "IllegalArgumentException", Msg: "Credentials type " + cr.Type + " cannot be used for an ssh tunnel",
		userIndicated: true}
}

// keySigner reads the PKCS #8 private key and checks that the X.509 public
// key belongs to it. Error texts never show key material.
func keySigner(privatePEM, publicPEM string) (ssh.Signer, error) {
	b, _ := pem.Decode([]byte(privatePEM))
	if b == nil {
		return nil, errors.New("the private key is not PEM")
	}
	key, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, errors.New("the private key is not PKCS #8")
	}
	signer, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("the private key cannot sign: %w", err)
	}
	pb, _ := pem.Decode([]byte(publicPEM))
	if pb == nil {
		return nil, errors.New("the public key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(pb.Bytes)
	if err != nil {
		return nil, errors.New("the public key is not X.509")
	}
	type equaler interface{ Equal(crypto.PublicKey) bool }
	if priv, ok := key.(crypto.Signer); !ok || !priv.Public().(equaler).Equal(pub) {
		return nil, errKeyMismatch
	}
	return signer, nil
}

// reach opens one channel to the target and closes it again, within ctx: a
// client that connects through the tunnel sees its local end accept at once
// (the listener is local), so this is what says the broker is reachable.
func (f *forward) reach(ctx context.Context) error {
	f.mu.Lock()
	cl := f.ssh
	f.mu.Unlock()
	c, err := cl.DialContext(ctx, "tcp", f.target)
	if err != nil {
		e := channelError(err)
		if ctx.Err() != nil {
			e.sentinel = client.ErrTimeout
		}
		return e
	}
	return c.Close()
}

// accept forwards every local connection until the listener closes.
func (f *forward) accept() {
	defer f.wg.Done()
	for {
		local, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.pipe(local)
	}
}

// pipe opens a channel to the target for local and copies both ways until
// either side ends. A refused channel fails the tunnel, as in Ditto.
func (f *forward) pipe(local net.Conn) {
	defer f.wg.Done()
	f.mu.Lock()
	cl := f.ssh
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), f.cfg.DialTimeout)
	remote, err := cl.DialContext(ctx, "tcp", f.target)
	cancel()
	if err != nil {
		// record before the client sees its connection end
		f.fail(channelError(err))
		_ = local.Close()
		return
	}
	if !f.track(local, remote) {
		return
	}
	done := make(chan struct{}, 2)
	cp := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go cp(remote, local)
	go cp(local, remote)
	<-done
	_ = local.Close()
	_ = remote.Close()
	<-done
	f.untrack(local, remote)
}

// track registers a forwarded pair so that a failure closes it; false (both
// closed) when the tunnel is already down.
func (f *forward) track(local, remote net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil || f.closed {
		_ = local.Close()
		_ = remote.Close()
		return false
	}
	f.conns[local], f.conns[remote] = struct{}{}, struct{}{}
	return true
}

func (f *forward) untrack(local, remote net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.conns, local)
	delete(f.conns, remote)
}

// watch fails the tunnel when the SSH connection ends.
func (f *forward) watch() {
	defer f.wg.Done()
	err := f.ssh.Wait()
	f.fail(&Error{Stage: stageClosed, cause: err})
}

// heartbeat sends keep-alive requests; one unanswered within the interval
// fails the tunnel.
func (f *forward) heartbeat() {
	defer f.wg.Done()
	every := f.cfg.HeartbeatInterval
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-f.dead:
			return
		case <-t.C:
		}
		answered := make(chan error, 1)
		go func() {
			_, _, err := f.ssh.SendRequest("keepalive@openssh.com", true, nil)
			answered <- err
		}()
		timer := time.NewTimer(every)
		select {
		case <-f.dead:
			timer.Stop()
			return
		case err := <-answered:
			timer.Stop()
			if err != nil {
				f.fail(&Error{Stage: stageClosed, cause: err})
				return
			}
		case <-timer.C:
			f.fail(&Error{Stage: stageKeepAlive, Kind: "SshException", sentinel: client.ErrUnreachable,
				Msg: fmt.Sprintf("No answer to the keep-alive request within <%s>", every), cause: errors.New("keep-alive timed out")})
			return
		}
	}
}

// fail records the tunnel's first failure and tears it down.
func (f *forward) fail(e *Error) {
	f.mu.Lock()
	if f.err != nil || f.closed {
		f.mu.Unlock()
		return
	}
	f.err = e
	f.mu.Unlock()
	f.log.Info().Str("cause", e.Error()).Msg("ssh tunnel failed")
	f.teardown()
}

// drainTimeout bounds how long close lets forwarded connections finish.
const drainTimeout = 2 * time.Second

// close tears the tunnel down without a failure; it returns once every
// goroutine of the tunnel ended. The client closed its connections first:
// what it wrote last (an MQTT PUBACK, a DISCONNECT) may still be on its way
// through a forward, so the forwards get drainTimeout to finish before the
// SSH connection goes; closing it at once lost such a PUBACK and the broker
// delivered a settled message again.
func (f *forward) close() {
	f.mu.Lock()
	already := f.closed
	f.closed = true
	f.mu.Unlock()
	if !already {
		_ = f.ln.Close() // no new forwards
		for deadline := time.Now().Add(drainTimeout); time.Now().Before(deadline) && f.forwarding(); {
			time.Sleep(5 * time.Millisecond)
		}
		f.teardown()
	}
	f.wg.Wait()
}

// forwarding reports whether a forwarded connection is still open.
func (f *forward) forwarding() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.conns) > 0
}

func (f *forward) teardown() {
	f.mu.Lock()
	select {
	case <-f.dead:
		f.mu.Unlock()
		return
	default:
		close(f.dead)
	}
	cl, conns := f.ssh, make([]net.Conn, 0, len(f.conns))
	for c := range f.conns {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	_ = f.ln.Close()
	if cl != nil {
		_ = cl.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
}

// failure is the tunnel's first failure, nil while it is up or after Close.
func (f *forward) failure() *Error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// down is closed once the tunnel failed or was closed.
func (f *forward) down() <-chan struct{} { return f.dead }

// rewrite is uri with its host and port replaced by the local end of the
// tunnel, everything else (scheme, user-info, path, query) kept, as Ditto's
// SshTunnelState.getURI does.
func rewrite(uri string, port int) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return "", errors.New("sshtunnel: the connection URI has no host")
	}
	u.Host = net.JoinHostPort("127.0.0.1", fmt.Sprint(port))
	return u.String(), nil
}

// defaultPorts are the ports of the schemes a connection URI may leave
// without one.
var defaultPorts = map[string]string{"tcp": "1883", "ssl": "8883", "ws": "80", "wss": "443", "amqp": "5672",
	"amqps": "5671", "http": "80", "https": "443"}

// target is host:port of the connection URI: where the SSH server connects.
func target(uri string) (string, error) {
	u, err := url.Parse(uri)
	if err != nil || u.Hostname() == "" {
		return "", errors.New("sshtunnel: the connection URI has no host")
	}
	port := u.Port()
	if port == "" {
		port = defaultPorts[u.Scheme]
	}
	if port == "" {
		return "", errors.New("sshtunnel: the connection URI has no port")
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// Check opens an SSH session for t and a channel through it to addr, then
// closes both, within ctx: testConnection's reachability check of a
// connection type without a live client. control (may be nil) checks the
// SSH server's address when dialled.
func Check(ctx context.Context, t *model.SSHTunnel, addr string, control func(network, address string, c syscall.RawConn) error) error {
	cl, err := dial(ctx, t, control)
	if err != nil {
		return err
	}
	defer func() { _ = cl.Close() }()
	c, err := cl.DialContext(ctx, "tcp", addr)
	if err != nil {
		return channelError(err)
	}
	return c.Close()
}
