package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
)

// This file is the cluster provider of our own on the etcd client. It
// replaces proto.actor's etcd provider, which fixes the lease at 3 s, blocks
// without deadlines and publishes nothing useful when etcd goes away: with
// it an etcd outage had to end every node.
//
// The rules:
//   - The member registers under a lease of LeaseTTL and renews it with one
//     KeepAliveOnce per TTL/3, each with a deadline (no client-side stream
//     whose failures are silent).
//   - While etcd does not answer, the member keeps the membership it last
//     saw: nothing is published, so commands, the data plane and the
//     satellites keep their routes. The state is logged and exposed
//     (Health, the dittoconn_cluster_etcd_unreachable gauge).
//   - When etcd answers again and the lease still exists (etcd restores
//     leases on restart and extends them by an election timeout), nothing
//     was lost: the member lists the members again and publishes what
//     changed meanwhile (a member that died in the outage leaves once its
//     lease expires).
//   - When etcd says the lease is gone, or this member's key was deleted,
//     the others have dropped it and proto.actor blocks its id for good
//     (the zombie of protoactor-go #1133): the member is lost and must come
//     back under a new id (the process exits 3 and its supervisor starts it
//     again). Lost too after EtcdLostAfter (the give-up time) without an
//     answer. A member cut off etcd alone is dropped by the others after
//     one lease and would serve the same grains as their new owners: the
//     watchdog ends that sooner, when the member gossips with no more than
//     half of the members it last saw.
//
// Concurrency: one keep-alive goroutine and one watch goroutine; the state
// they share sits behind mu. Publishing goes through proto.actor's member
// list, which has a lock of its own.

// registry is what the provider needs from etcd. etcdRegistry implements it
// on the client; the unit tests fake it.
type registry interface {
	// Grant creates a lease of ttl (whole seconds, at least 1).
	Grant(ctx context.Context, ttl time.Duration) (int64, error)
	// Put writes key under the lease.
	Put(ctx context.Context, key, value string, lease int64) error
	// KeepAliveOnce renews the lease; errLeaseGone when etcd answers that
	// it does not exist (expired or revoked).
	KeepAliveOnce(ctx context.Context, lease int64) error
	// Revoke ends the lease and deletes its keys.
	Revoke(ctx context.Context, lease int64) error
	// List reads every key under prefix and the store revision.
	List(ctx context.Context, prefix string) (map[string][]byte, int64, error)
	// Watch streams the changes under prefix from revision from on. The
	// channel is closed when ctx ends or the watch fails (a batch with err
	// may come first); the caller lists again.
	Watch(ctx context.Context, prefix string, from int64) <-chan watchBatch
}

// watchBatch is one watch response: keys written (with values) and deleted.
type watchBatch struct {
	puts    map[string][]byte
	deletes []string
	rev     int64
	err     error
}

// errLeaseGone: etcd answered and the lease does not exist.
var errLeaseGone = errors.New("the membership lease no longer exists in etcd")

// leaseState is what the member knows of its registration.
type leaseState int

const (
	leaseHeld        leaseState = iota // etcd answered the last renewal
	leaseUnreachable                   // etcd does not answer; the last membership is kept
	leaseLost                          // the lease is gone or the member gave up: a new id is needed
)

// leaseMachine decides, from the outcome of each renewal, what the member
// is in; it holds no I/O so that its rules are tested without etcd.
type leaseMachine struct {
	giveUp time.Duration
	state  leaseState
	since  time.Time // start of the unreachable period
}

// leaseEvent is what step asks the provider to do.
type leaseEvent int

const (
	leaseNoChange  leaseEvent = iota
	leaseDegraded             // held → unreachable: log, expose
	leaseRecovered            // unreachable → held: list again, publish
	leaseGaveUp               // → lost (reason from lostReason)
)

// step records the outcome of one renewal at now.
func (m *leaseMachine) step(now time.Time, err error) leaseEvent {
	if m.state == leaseLost {
		return leaseNoChange
	}
	switch {
	case err == nil:
		if m.state == leaseUnreachable {
			m.state = leaseHeld
			return leaseRecovered
		}
		return leaseNoChange
	case errors.Is(err, errLeaseGone):
		m.state = leaseLost
		return leaseGaveUp
	case m.state == leaseHeld:
		m.state, m.since = leaseUnreachable, now
		if m.giveUp <= 0 {
			m.state = leaseLost
			return leaseGaveUp
		}
		return leaseDegraded
	case now.Sub(m.since) >= m.giveUp:
		m.state = leaseLost
		return leaseGaveUp
	}
	return leaseNoChange
}

// memberRecord is a member's value in etcd (the fields proto.actor's
// provider writes, so that the keys read the same to an operator).
type memberRecord struct {
	ID    string   `json:"id"`
	Host  string   `json:"host"`
	Port  int32    `json:"port"`
	Kinds []string `json:"kinds"`
}

// etcdProvider is the cluster provider (cluster.ClusterProvider).
type etcdProvider struct {
	reg         registry
	prefix      string // <base>/<cluster>/, ends with "/"
	ttl         time.Duration
	callTimeout time.Duration
	log         zerolog.Logger
	onLost      func(reason string)

	// Set by StartMember.
	publish func([]*cluster.Member)
	self    *cluster.Member
	selfKey string
	lease   int64
	stop    context.CancelFunc
	done    sync.WaitGroup

	mu          sync.Mutex
	machine     leaseMachine
	members     map[string]*cluster.Member // by key, self included
	relist      context.CancelFunc         // ends the current watch so that the loop lists again
	unreachable time.Time                  // zero: etcd answers
	lostReason  string
}

// newEtcdProvider builds the provider; onLost is called once, from one of
// its goroutines, when the member must rejoin under a new id.
func newEtcdProvider(reg registry, clusterName string, cc ClusterConfig, log zerolog.Logger, onLost func(string)) *etcdProvider {
	return &etcdProvider{
		reg: reg, prefix: etcdBaseKey + "/" + clusterName + "/", ttl: cc.EtcdLeaseTTL,
		callTimeout: cc.EtcdDialTimeout, log: log, onLost: onLost,
		machine: leaseMachine{giveUp: cc.EtcdLostAfter}, members: map[string]*cluster.Member{},
	}
}

// renewEvery is the renewal period: three tries per lease.
func (p *etcdProvider) renewEvery() time.Duration { return p.ttl / 3 }

// call bounds one etcd call: the configured timeout, and never longer than
// a renewal period (a renewal that waits longer is as good as failed).
func (p *etcdProvider) call(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, min(p.callTimeout, p.renewEvery()))
}

// StartMember registers this member, reads the members and starts renewing
// and watching.
func (p *etcdProvider) StartMember(c *cluster.Cluster) error {
	host, port, err := c.ActorSystem.GetHostPort()
	if err != nil {
		return err
	}
	self := &cluster.Member{Id: c.ActorSystem.ID, Host: host, Port: int32(port), Kinds: c.GetClusterKinds()}
	return p.start(self, func(ms []*cluster.Member) { c.MemberList.UpdateClusterTopology(ms) })
}

// start is StartMember without proto.actor: register, list, run.
func (p *etcdProvider) start(self *cluster.Member, publish func([]*cluster.Member)) error {
	p.self, p.selfKey, p.publish = self, p.prefix+self.Id, publish
	value, err := json.Marshal(memberRecord{ID: self.Id, Host: self.Host, Port: self.Port, Kinds: self.Kinds})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.callTimeout)
	defer cancel()
	if p.lease, err = p.reg.Grant(ctx, p.ttl); err != nil {
		return fmt.Errorf("actors: etcd lease of %v: %w", p.ttl, err)
	}
	if err := p.reg.Put(ctx, p.selfKey, string(value), p.lease); err != nil {
		return fmt.Errorf("actors: register member %s in etcd: %w", p.selfKey, err)
	}
	kvs, rev, err := p.reg.List(ctx, p.prefix)
	if err != nil {
		return fmt.Errorf("actors: list members in etcd: %w", err)
	}
	p.replace(kvs)
	lctx, stop := context.WithCancel(context.Background())
	p.stop = stop
	p.done.Add(2)
	go func() { defer p.done.Done(); p.renewLoop(lctx) }()
	go func() { defer p.done.Done(); p.watchLoop(lctx, rev) }()
	return nil
}

// StartClient is not used: every dittoconn node is a member.
func (p *etcdProvider) StartClient(*cluster.Cluster) error {
	return errors.New("actors: the etcd provider supports members only")
}

// Shutdown stops renewing and, when etcd answers in time, revokes the lease
// so that the others see this member leave at once.
func (p *etcdProvider) Shutdown(bool) error {
	if p.stop == nil {
		return nil
	}
	p.stop()
	p.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), p.callTimeout)
	defer cancel()
	if err := p.reg.Revoke(ctx, p.lease); err != nil && !errors.Is(err, errLeaseGone) {
		return fmt.Errorf("actors: revoke the membership lease: %w", err)
	}
	return nil
}

// renewLoop renews the lease and drives the lease machine.
func (p *etcdProvider) renewLoop(ctx context.Context) {
	tick := time.NewTicker(p.renewEvery())
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		cctx, cancel := p.call(ctx)
		err := p.reg.KeepAliveOnce(cctx, p.lease)
		cancel()
		if ctx.Err() != nil {
			return
		}
		now := time.Now()
		p.mu.Lock()
		ev, since := p.machine.step(now, err), p.machine.since
		switch ev {
		case leaseDegraded:
			p.unreachable = since
		case leaseRecovered:
			p.unreachable = time.Time{}
		}
		relist := p.relist
		p.mu.Unlock()
		switch ev {
		case leaseDegraded:
			p.log.Warn().Err(err).Dur("give_up_after", p.machine.giveUp).
				Msg("etcd does not answer: serving with the last membership seen")
		case leaseRecovered:
			p.log.Info().Dur("unreachable_for", now.Sub(since).Round(time.Millisecond)).
				Msg("etcd answers again and the membership lease held: reconciling the membership")
			if relist != nil {
				relist() // the watch may have missed changes: list again
			}
		case leaseGaveUp:
			reason := fmt.Sprintf("etcd has not answered for %v (give-up time %v)", now.Sub(since).Round(time.Millisecond), p.machine.giveUp)
			if errors.Is(err, errLeaseGone) {
				reason = "etcd expired this member's lease: the others have dropped it"
			}
			p.setLost(reason)
			return
		}
	}
}

// watchLoop keeps the membership from etcd: it watches from rev on and,
// when the watch ends, lists again (retrying while etcd does not answer,
// publishing nothing meanwhile).
func (p *etcdProvider) watchLoop(ctx context.Context, rev int64) {
	for ctx.Err() == nil {
		wctx, cancel := context.WithCancel(ctx)
		p.mu.Lock()
		p.relist = cancel
		p.mu.Unlock()
		for b := range p.reg.Watch(wctx, p.prefix, rev+1) {
			if b.err != nil {
				p.log.Debug().Err(b.err).Msg("etcd watch ended; listing the members again")
				break
			}
			rev = b.rev
			if !p.apply(b) {
				cancel()
				return
			}
		}
		cancel()
		for ctx.Err() == nil {
			lctx, lcancel := p.call(ctx)
			kvs, r, err := p.reg.List(lctx, p.prefix)
			lcancel()
			if err == nil {
				if !p.replace(kvs) {
					return
				}
				rev = r
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(p.renewEvery()):
			}
		}
	}
}

// replace sets the membership to a full listing and publishes it; false
// when this member is no longer listed (its lease expired: lost).
func (p *etcdProvider) replace(kvs map[string][]byte) bool {
	if _, ok := kvs[p.selfKey]; !ok {
		p.setLost("this member's registration is gone from etcd: the others have dropped it")
		return false
	}
	next := map[string]*cluster.Member{}
	for k, v := range kvs {
		if m := p.decode(k, v); m != nil {
			next[k] = m
		}
	}
	p.mu.Lock()
	p.members = next
	p.mu.Unlock()
	p.publishMembers()
	return true
}

// apply applies one watch batch and publishes; false when this member's
// own key was deleted (lost).
func (p *etcdProvider) apply(b watchBatch) bool {
	if slices.Contains(b.deletes, p.selfKey) {
		p.setLost("this member's registration was deleted from etcd: the others have dropped it")
		return false
	}
	p.mu.Lock()
	for k, v := range b.puts {
		if m := p.decode(k, v); m != nil {
			p.members[k] = m
		}
	}
	for _, k := range b.deletes {
		delete(p.members, k)
	}
	p.mu.Unlock()
	p.publishMembers()
	return true
}

func (p *etcdProvider) decode(key string, v []byte) *cluster.Member {
	if key == p.selfKey {
		return p.self
	}
	var r memberRecord
	if err := json.Unmarshal(v, &r); err != nil || r.ID == "" || r.Host == "" {
		p.log.Warn().Str("key", key).Msg("ignoring an unreadable member record in etcd")
		return nil
	}
	return &cluster.Member{Id: r.ID, Host: r.Host, Port: r.Port, Kinds: r.Kinds}
}

// publishMembers hands the membership (always with self) to proto.actor.
func (p *etcdProvider) publishMembers() {
	p.mu.Lock()
	out := make([]*cluster.Member, 0, len(p.members)+1)
	hasSelf := false
	for _, m := range p.members {
		hasSelf = hasSelf || m == p.self
		out = append(out, m)
	}
	p.mu.Unlock()
	if !hasSelf {
		out = append(out, p.self)
	}
	slices.SortFunc(out, func(a, b *cluster.Member) int { return strings.Compare(a.Id, b.Id) })
	p.publish(out)
}

// setLost records the first reason the member is lost and reports it once.
func (p *etcdProvider) setLost(reason string) {
	p.mu.Lock()
	first := p.lostReason == ""
	if first {
		p.lostReason = reason
		p.machine.state = leaseLost
	}
	p.mu.Unlock()
	if first && p.onLost != nil {
		p.onLost(reason)
	}
}

// unreachableSince is when etcd stopped answering; zero while it answers.
func (p *etcdProvider) unreachableSince() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.unreachable
}

// etcdRegistry is registry on the etcd client.
type etcdRegistry struct{ cli *clientv3.Client }

func (r etcdRegistry) Grant(ctx context.Context, ttl time.Duration) (int64, error) {
	secs := int64((ttl + time.Second - 1) / time.Second)
	resp, err := r.cli.Grant(ctx, max(secs, 1))
	if err != nil {
		return 0, err
	}
	return int64(resp.ID), nil
}

func (r etcdRegistry) Put(ctx context.Context, key, value string, lease int64) error {
	_, err := r.cli.Put(ctx, key, value, clientv3.WithLease(clientv3.LeaseID(lease)))
	return err
}

func (r etcdRegistry) KeepAliveOnce(ctx context.Context, lease int64) error {
	_, err := r.cli.KeepAliveOnce(ctx, clientv3.LeaseID(lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return errLeaseGone
	}
	return err
}

func (r etcdRegistry) Revoke(ctx context.Context, lease int64) error {
	_, err := r.cli.Revoke(ctx, clientv3.LeaseID(lease))
	if errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return errLeaseGone
	}
	return err
}

func (r etcdRegistry) List(ctx context.Context, prefix string) (map[string][]byte, int64, error) {
	resp, err := r.cli.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string][]byte, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = kv.Value
	}
	return out, resp.Header.Revision, nil
}

func (r etcdRegistry) Watch(ctx context.Context, prefix string, from int64) <-chan watchBatch {
	out := make(chan watchBatch)
	// WithRequireLeader: a watch on a member that lost its quorum ends
	// instead of hanging silently.
	wch := r.cli.Watch(clientv3.WithRequireLeader(ctx), prefix, clientv3.WithPrefix(), clientv3.WithRev(from))
	go func() {
		defer close(out)
		for resp := range wch {
			b := watchBatch{puts: map[string][]byte{}, rev: resp.Header.Revision, err: resp.Err()}
			for _, ev := range resp.Events {
				switch ev.Type {
				case clientv3.EventTypePut:
					b.puts[string(ev.Kv.Key)] = ev.Kv.Value
				case clientv3.EventTypeDelete:
					b.deletes = append(b.deletes, string(ev.Kv.Key))
				}
			}
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
			if b.err != nil {
				return
			}
		}
	}()
	return out
}

// etcdClientConfig is the client's configuration: its reconnection back-off
// is capped at a second so that, when etcd returns after a long outage, the
// member renews its lease before the lease runs out (gRPC's default grows
// to two minutes).
func etcdClientConfig(cc ClusterConfig) clientv3.Config {
	bo := backoff.DefaultConfig
	bo.MaxDelay = time.Second
	return clientv3.Config{Endpoints: cc.Etcd, DialTimeout: cc.EtcdDialTimeout,
		DialOptions: []grpc.DialOption{grpc.WithConnectParams(grpc.ConnectParams{Backoff: bo, MinConnectTimeout: cc.EtcdDialTimeout})}}
}
