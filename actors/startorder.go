package actors

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc/credentials"
)

// Why member starts are serialised (tests start several services in one
// process; production runs one per process):
//
// protoactor's remote.Start calls grpclog.SetLoggerV2 on every start, a
// plain write of grpc's global logger, and then runs grpc.Server.Serve on
// a new goroutine, which reads that global once before its accept loop
// (channelz.Info "ListenSocket created", grpc server.go). The next member's
// start in the same process writes the global again; nothing orders that
// write after the earlier Serve goroutine's read, so -race reports it
// (whenever the read is still in the detector's shadow memory). Neither
// library can be changed here, and the write cannot be avoided.
//
// The fix gives the read a happens-before edge to every later start:
//   - startMu: member starts (and their barriers) run one at a time.
//   - serveBarrier: before startMu is released, the new member's own
//     server accepts a probe connection. grpc hands each accepted
//     connection to a goroutine that the Serve goroutine starts after its
//     read; that goroutine calls the server credentials' ServerHandshake,
//     which closes reached (and the probe's own channel). Receiving from
//     either orders the Serve goroutine's read before the unlock, hence
//     before the next start's write. The probe is answered with credentials.ErrConnDispatched, on
//     which grpc neither logs nor builds a transport, so the probe leaves
//     no goroutine behind that would read the logger later.
//
// What this does not cover: logging of live inter-member gRPC connections
// (several cluster members dialling each other within one process) that
// happens while another member starts. Those reads have no edge to a
// later start but through the socket I/O the race detector models.
var startMu sync.Mutex

// barrierTimeout bounds the probe: a member whose own server does not
// take a loopback connection within it is not serving.
const barrierTimeout = 5 * time.Second

// serveBarrier wraps the remote server's transport credentials to learn
// that the gRPC server's accept loop runs (see startMu). One per member.
type serveBarrier struct {
	credentials.TransportCredentials
	reached chan struct{}
	once    *sync.Once

	mu     *sync.Mutex
	probes map[string]chan struct{} // by local address: closed on arrival
}

func newServeBarrier(inner credentials.TransportCredentials) *serveBarrier {
	return &serveBarrier{TransportCredentials: inner, reached: make(chan struct{}), once: &sync.Once{},
		mu: &sync.Mutex{}, probes: map[string]chan struct{}{}}
}

// ServerHandshake runs on the goroutine grpc starts per accepted
// connection; probes are kept from grpc, all else is handed on.
func (b *serveBarrier) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	b.once.Do(func() { close(b.reached) })
	b.mu.Lock()
	arrived, probe := b.probes[c.RemoteAddr().String()]
	delete(b.probes, c.RemoteAddr().String()) // the port may serve a member later
	b.mu.Unlock()
	if probe {
		close(arrived)
		_ = c.Close()
		return nil, nil, credentials.ErrConnDispatched
	}
	return b.TransportCredentials.ServerHandshake(c)
}

// Clone keeps the barrier: grpc may clone the credentials it was given.
func (b *serveBarrier) Clone() credentials.TransportCredentials {
	c := *b
	c.TransportCredentials = b.TransportCredentials.Clone()
	return &c
}

// wait connects to the member's own server at address and returns once a
// connection has reached ServerHandshake (or with an error after timeout).
func (b *serveBarrier) wait(address string, timeout time.Duration) error {
	select {
	case <-b.reached:
		return nil
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("actors: member address %q: %w", address, err)
	}
	// The probe's local address is fixed before dialling, so that the
	// server can tell it from a member's connection as soon as it arrives.
	local, err := reserveAddr(host)
	if err != nil {
		return fmt.Errorf("actors: probe own gRPC server at %s: %w", address, err)
	}
	arrived := make(chan struct{})
	b.mu.Lock()
	b.probes[local.String()] = arrived
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		delete(b.probes, local.String())
		b.mu.Unlock()
	}()
	conn, err := (&net.Dialer{LocalAddr: local}).DialContext(ctx, "tcp", address)
	if err != nil {
		return fmt.Errorf("actors: probe own gRPC server at %s: %w", address, err)
	}
	defer conn.Close()
	// Waiting for the probe itself, not just reached: a probe still on
	// its way when wait returned would become a transport.
	select {
	case <-arrived:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("actors: own gRPC server at %s took no connection within %v", address, timeout)
	}
}

// reserveAddr returns a free local TCP address on host (one of this
// host's addresses: the member listens on it).
func reserveAddr(host string) (*net.TCPAddr, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		return nil, err
	}
	addr := l.Addr().(*net.TCPAddr)
	if err := l.Close(); err != nil {
		return nil, err
	}
	return addr, nil
}
