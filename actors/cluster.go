package actors

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/remote"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/dittoconn/dittoconn/actors/connection"
)

// ClusterConfig makes this member one of several dittoconn nodes that find
// each other through etcd and share one MongoDB.
type ClusterConfig struct {
	// Name is the cluster name; every node uses the same.
	Name string
	// Bind is the host:port of this member's remote listener (port 0: any).
	Bind string
	// Advertise is the host:port other members reach this one at; empty:
	// Bind's (which must then be routable, not 0.0.0.0).
	Advertise string
	// Etcd lists the etcd endpoints.
	Etcd []string
	// EtcdDialTimeout bounds each etcd call of the start-up check and the
	// provider (default 3 s; a renewal is bounded by a third of the lease).
	EtcdDialTimeout time.Duration
	// EtcdLeaseTTL is the lease this member registers under (whole
	// seconds, default 3 s): how long the others take to see it gone
	// after it died, and how soon after etcd returns from an outage a
	// member must renew (etcd extends restored leases by this much plus
	// an election timeout).
	EtcdLeaseTTL time.Duration
	// EtcdLostAfter is the give-up time: a member that cannot reach etcd
	// this long reports itself lost (default 5 min). Until then it
	// serves with the membership it last saw; when etcd answers again
	// and its lease held, it carries on under the same id.
	EtcdLostAfter time.Duration
	// SelfMissingAfter: a member whose own address is missing from the
	// topology this long reports itself lost (default 2 s). This is the
	// zombie of protoactor-go #1133: its id is blocked forever.
	SelfMissingAfter time.Duration
	// StartTimeout bounds joining the cluster (default 30 s).
	StartTimeout time.Duration
	// TLS files (PEM) for mutual TLS between members: this member's
	// certificate and key (used as server and as client, so with both
	// extended key usages and the advertised host among its names) and
	// the CA that signed every member's. All empty: plaintext, which only
	// a private network may carry (commands and connection secrets cross
	// it).
	TLSCertFile, TLSKeyFile, TLSCAFile string
}

// etcdBaseKey is where protoactor's etcd provider registers members.
const etcdBaseKey = "/protoactor"

// DefaultClusterConfig holds the defaults of the cluster settings (no etcd
// endpoints: cluster mode off).
func DefaultClusterConfig() ClusterConfig {
	return ClusterConfig{Name: "dittoconn", Bind: "127.0.0.1:0", EtcdDialTimeout: 3 * time.Second,
		EtcdLeaseTTL: 3 * time.Second, EtcdLostAfter: 5 * time.Minute, SelfMissingAfter: 2 * time.Second, StartTimeout: 30 * time.Second}
}

// Enabled tells whether the settings make this member one of a cluster.
func (c ClusterConfig) Enabled() bool { return len(c.Etcd) > 0 }

// withDefaults fills zero settings from DefaultClusterConfig, except the
// addresses, which the caller chooses.
func (c *ClusterConfig) withDefaults() ClusterConfig {
	out, d := *c, DefaultClusterConfig()
	if out.Name == "" {
		out.Name = d.Name
	}
	if out.EtcdDialTimeout <= 0 {
		out.EtcdDialTimeout = d.EtcdDialTimeout
	}
	if out.EtcdLeaseTTL <= 0 {
		out.EtcdLeaseTTL = d.EtcdLeaseTTL
	}
	if out.EtcdLostAfter <= 0 {
		out.EtcdLostAfter = d.EtcdLostAfter
	}
	if out.SelfMissingAfter <= 0 {
		out.SelfMissingAfter = d.SelfMissingAfter
	}
	if out.StartTimeout <= 0 {
		out.StartTimeout = d.StartTimeout
	}
	return out
}

// remoteConfig is the remote listener: loopback with any port for one
// member (nobody else connects), the configured address in a cluster.
func remoteConfig(cc *ClusterConfig) (*remote.Config, *serveBarrier, error) {
	if cc == nil {
		b := newServeBarrier(insecure.NewCredentials())
		return remote.Configure("127.0.0.1", 0, remote.WithServerOptions(grpc.Creds(b))), b, nil
	}
	host, portText, err := net.SplitHostPort(cc.Bind)
	if err != nil {
		return nil, nil, fmt.Errorf("actors: cluster bind address %q: %w", cc.Bind, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil || port < 0 || port > 65535 {
		return nil, nil, fmt.Errorf("actors: cluster bind address %q: bad port", cc.Bind)
	}
	var opts []remote.ConfigOption
	switch adv := cc.Advertise; {
	case adv != "":
		if _, _, err := net.SplitHostPort(adv); err != nil {
			return nil, nil, fmt.Errorf("actors: cluster advertised address %q: %w", adv, err)
		}
		opts = append(opts, remote.WithAdvertisedHost(adv))
	case host == "" || net.ParseIP(host) != nil && net.ParseIP(host).IsUnspecified():
		// Others would be told "[::]:port", which they cannot dial.
		return nil, nil, fmt.Errorf("actors: cluster bind address %q is not routable: set the advertised address", cc.Bind)
	}
	serverCreds := insecure.NewCredentials()
	if cc.TLSCertFile != "" || cc.TLSKeyFile != "" || cc.TLSCAFile != "" {
		var tlsOpts []remote.ConfigOption
		serverCreds, tlsOpts, err = clusterTLS(cc)
		if err != nil {
			return nil, nil, err
		}
		opts = append(opts, tlsOpts...)
	}
	// No start barrier in cluster mode: a member runs one to a process
	// (the tests start cluster members as processes), and the members'
	// own transport stays exactly the library's. Only the one-member
	// remote, of which tests start several per process, needs it.
	opts = append(opts, remote.WithServerOptions(grpc.Creds(serverCreds)))
	return remote.Configure(host, port, opts...), nil, nil
}

// clusterTLS is mutual TLS for the remote listener and the dialer: only
// members with a certificate from the cluster's CA get in.
func clusterTLS(cc *ClusterConfig) (credentials.TransportCredentials, []remote.ConfigOption, error) {
	if cc.TLSCertFile == "" || cc.TLSKeyFile == "" || cc.TLSCAFile == "" {
		return nil, nil, errors.New("actors: cluster TLS needs the certificate, its key and the CA")
	}
	cert, err := tls.LoadX509KeyPair(cc.TLSCertFile, cc.TLSKeyFile)
	if err != nil {
		return nil, nil, fmt.Errorf("actors: cluster TLS key pair: %w", err)
	}
	caPEM, err := os.ReadFile(cc.TLSCAFile)
	if err != nil {
		return nil, nil, fmt.Errorf("actors: cluster TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("actors: cluster TLS CA %s holds no PEM certificate", cc.TLSCAFile)
	}
	server := &tls.Config{Certificates: []tls.Certificate{cert}, ClientCAs: pool,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12}
	return credentials.NewTLS(server), []remote.ConfigOption{
		remote.WithDialOptions(grpc.WithTransportCredentials(credentials.NewTLS(client))),
	}, nil
}

// checkEtcd fails unless etcd answers a read in time: a member that cannot
// register would otherwise wait at start for the whole start timeout.
func checkEtcd(ctx context.Context, cli *clientv3.Client, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := cli.Get(cctx, etcdBaseKey, clientv3.WithPrefix(), clientv3.WithCountOnly())
	return err
}

// newEtcd returns the etcd client, checked to answer, for the provider.
func newEtcd(cc ClusterConfig) (*clientv3.Client, error) {
	if len(cc.Etcd) == 0 {
		return nil, errors.New("actors: cluster mode needs etcd endpoints")
	}
	cli, err := clientv3.New(etcdClientConfig(cc))
	if err != nil {
		return nil, fmt.Errorf("actors: etcd client for %v: %w", cc.Etcd, err)
	}
	if err := checkEtcd(context.Background(), cli, cc.EtcdDialTimeout); err != nil {
		_ = cli.Close()
		return nil, fmt.Errorf("actors: etcd at %v does not answer within %v: %w", cc.Etcd, cc.EtcdDialTimeout, err)
	}
	return cli, nil
}

// startMember joins the cluster within timeout. StartMember panics instead
// of returning errors, so it runs on its own goroutine; on a timeout the
// caller gives up (and the process is expected to exit). Starts in one
// process run one at a time, each followed by its barrier (nil: none), so
// that grpc's global logger is not raced on (see startMu).
func startMember(c *cluster.Cluster, barrier *serveBarrier, timeout time.Duration) error {
	done := make(chan error, 1)
	go func() {
		startMu.Lock()
		defer startMu.Unlock()
		defer func() {
			if r := recover(); r != nil {
				// The remote may serve already (the provider failed after
				// it started): order its Serve goroutine all the same; an
				// address of a remote that did not start fails to parse.
				if barrier != nil {
					_ = barrier.wait(c.ActorSystem.Address(), barrierTimeout)
				}
				done <- fmt.Errorf("actors: start cluster member: %v", r)
			}
		}()
		c.StartMember()
		var err error
		if barrier != nil {
			err = barrier.wait(c.ActorSystem.Address(), barrierTimeout)
		}
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(timeout):
		return fmt.Errorf("actors: joining the cluster took longer than %v", timeout)
	}
}

// members is this member's view of the cluster, kept from the topology
// events (protoactor's own member list must not be read: it races).
type members struct {
	mu       sync.Mutex
	self     string            // this member's address (known once remoting runs)
	all      []*cluster.Member // current members, sorted by address
	rdv      *cluster.Rendezvous
	seenSelf bool
	missing  time.Time // since when self is missing; zero: present
	changed  chan struct{}
	left     chan struct{} // closed (and replaced) when members leave
}

func newMembers() *members {
	return &members{rdv: cluster.NewRendezvous(), changed: make(chan struct{}, 1), left: make(chan struct{})}
}

// leftSignal is closed the next time members leave the cluster: a request
// waiting on a grain of a member that died is then asked again where the
// grain now lives (protoactor would hold it for the whole timeout while it
// redials the dead address).
func (m *members) leftSignal() <-chan struct{} {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.left
}

// onTopology records a topology event seen by the member at address self.
func (m *members) onTopology(self string, t *cluster.ClusterTopology) {
	all := slices.Clone(t.Members)
	slices.SortFunc(all, func(a, b *cluster.Member) int { return strings.Compare(a.Address(), b.Address()) })
	rdv := cluster.NewRendezvous()
	rdv.UpdateMembers(all)
	present := slices.ContainsFunc(all, func(x *cluster.Member) bool { return x.Address() == self })
	m.mu.Lock()
	m.self, m.all, m.rdv = self, all, rdv
	switch {
	case present:
		m.seenSelf, m.missing = true, time.Time{}
	case m.missing.IsZero():
		m.missing = time.Now()
	}
	m.mu.Unlock()
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// Peers are the addresses of the other members that host connections,
// sorted (connection.Members).
func (m *members) Peers() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.all))
	for _, x := range m.all {
		if a := x.Address(); a != m.self && x.HasKind(connection.Kind) {
			out = append(out, a)
		}
	}
	return out
}

// gossiping counts the members of this member's view that still gossip
// with it (self, and every other whose id proto.actor has not blocked: it
// blocks a member whose heartbeat has not come for HeartbeatExpiration)
// and the total. Without etcd this is what tells a member cut off alone,
// whom the others dropped after one lease, from one that rides out an
// outage with the others: the minority side gives up, as the
// keep-majority strategy of Pekko's split-brain resolver (its default)
// does.
func (m *members) gossiping(self string, blocked func(string) bool) (alive, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, x := range m.all {
		if x.Id == self || !blocked(x.Id) {
			alive++
		}
	}
	return alive, len(m.all)
}

// count is how many members the cluster has in this member's view.
func (m *members) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.all)
}

// owns tells whether this member hosts the connection grain id (the same
// rendezvous hash that protoactor's disthash lookup uses).
func (m *members) owns(id string) bool {
	m.mu.Lock()
	rdv, n := m.rdv, len(m.all)
	m.mu.Unlock()
	if n == 0 {
		return true
	}
	return rdv.GetByClusterIdentity(&cluster.ClusterIdentity{Identity: id, Kind: connection.Kind}) == m.address()
}

func (m *members) address() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.self
}

// missingFor is how long self has been missing from the topology after it
// was once part of it (0: present or never joined yet).
func (m *members) missingFor(now time.Time) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.seenSelf || m.missing.IsZero() {
		return 0
	}
	return now.Sub(m.missing)
}

// watchdog reports this member lost when the others have dropped it while
// it still runs (the zombie of protoactor-go #1133: its id is blocked for
// good, so it must come back under a new one): its own id is in the block
// list the others gossip, its address has been missing from its own
// topology, or, while etcd does not answer, it gossips with no more than
// half of the members it last saw. The provider reports the other cases
// (lease gone, give-up time without etcd). A restarted process gets a new
// member id and joins again.
func (s *System) watchdog(ctx context.Context, cc ClusterConfig) {
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if d := s.members.missingFor(now); d >= cc.SelfMissingAfter {
				s.reportLost(fmt.Sprintf("this member has been missing from the cluster topology for %v", d.Round(time.Millisecond)))
				return
			}
			if s.cluster.Remote == nil {
				continue
			}
			bl := s.cluster.Remote.BlockList()
			if bl.IsBlocked(s.actors.ID) {
				s.reportLost("the other members have blocked this member's id (they dropped it)")
				return
			}
			if s.provider == nil || s.provider.unreachableSince().IsZero() {
				continue
			}
			if alive, total := s.members.gossiping(s.actors.ID, bl.IsBlocked); total > 0 && 2*alive <= total {
				s.reportLost(fmt.Sprintf("etcd does not answer and this member gossips with only %d of the %d members it last saw: "+
					"the others have dropped it or are gone, and a minority gives up", alive, total))
				return
			}
		}
	}
}

func (s *System) reportLost(reason string) {
	s.log.Error().Str("reason", reason).Str("member", s.members.address()).Msg("this member has left the cluster")
	select {
	case s.lost <- reason:
	default:
	}
}

// Lost delivers a reason once when this member has dropped out of the cluster for good; the process should then exit
// non-zero so that a supervisor starts it again with a new member id.
func (s *System) Lost() <-chan string { return s.lost }

// Member is this member's cluster address.
func (s *System) Member() string { return s.members.address() }

// Members is how many members the cluster has in this member's view.
func (s *System) Members() int { return s.members.count() }

// signalLeft closes the left signal when members left. It runs in a
// subscriber registered after the member started, so after protoactor's own
// (the PID cache and the identity lookup's hash ring are updated first, and
// a request asked again finds the grain's new home at once).
func (m *members) signalLeft(t *cluster.ClusterTopology) {
	if len(t.Left) == 0 {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	close(m.left)
	m.left = make(chan struct{})
}

// subscribeLeft registers signalLeft; call it after the member started.
func (s *System) subscribeLeft(as *actor.ActorSystem) {
	as.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			s.members.signalLeft(t)
		}
	})
}

// subscribeTopology keeps s.members current.
func (s *System) subscribeTopology(as *actor.ActorSystem) {
	as.EventStream.Subscribe(func(ev any) {
		if t, ok := ev.(*cluster.ClusterTopology); ok {
			s.members.onTopology(as.Address(), t)
		}
	})
}

// ClusterHealth is this member's view of the cluster for /health and the
// metrics: whether it is a cluster member at all, how many members it sees,
// and since when etcd has not answered (zero: it answers). While etcd does
// not answer the member serves with the membership it last saw.
func (s *System) ClusterHealth() (clustered bool, members int, etcdUnreachableSince time.Time) {
	if s.provider == nil {
		return false, s.members.count(), time.Time{}
	}
	return true, s.members.count(), s.provider.unreachableSince()
}
