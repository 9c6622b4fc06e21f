package actors

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// countingCreds counts the handshakes handed on to it.
type countingCreds struct {
	credentials.TransportCredentials
	n *atomic.Int32
}

func (c countingCreds) ServerHandshake(conn net.Conn) (net.Conn, credentials.AuthInfo, error) {
	c.n.Add(1)
	return c.TransportCredentials.ServerHandshake(conn)
}

// TestServeBarrier: the barrier returns once the server accepts; its probe
// never reaches the wrapped credentials (grpc builds no transport for it),
// while a member's connection is handed on and served.
func TestServeBarrier(t *testing.T) {
	var n atomic.Int32
	b := newServeBarrier(countingCreds{insecure.NewCredentials(), &n})
	s := grpc.NewServer(grpc.Creds(b))
	healthpb.RegisterHealthServer(s, health.NewServer())
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	if err := b.wait(lis.Addr().String(), barrierTimeout); err != nil {
		t.Fatal(err)
	}
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health check through the barrier's credentials = %v, %v", resp, err)
	}
	_ = cc.Close()
	s.Stop() // waits for every accepted connection's goroutine
	if got := n.Load(); got != 1 {
		t.Errorf("handshakes handed on = %d, want 1 (the client's, not the probe's)", got)
	}
	if err := b.wait(lis.Addr().String(), barrierTimeout); err != nil {
		t.Errorf("a second wait after the server was reached = %v", err)
	}
}

// TestServeBarrierNoServer: with nothing listening the barrier fails
// instead of blocking the start.
func TestServeBarrierNoServer(t *testing.T) {
	addr, err := reserveAddr("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if err := newServeBarrier(insecure.NewCredentials()).wait(addr.String(), time.Second); err == nil {
		t.Fatal("wait on a closed port succeeded")
	}
	if err := newServeBarrier(insecure.NewCredentials()).wait("nonhost", time.Second); err == nil {
		t.Fatal("wait on an address without a port succeeded")
	}
}
