package actors

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/cluster"
	"github.com/rs/zerolog"

	"github.com/dittoconn/dittoconn/test/poll"
)

// TestLeaseMachine: the rules of the registration state, one renewal
// outcome at a time.
func TestLeaseMachine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	down := errors.New("context deadline exceeded")
	type step struct {
		at   time.Duration
		err  error
		want leaseEvent
		then leaseState
	}
	for _, tc := range []struct {
		name   string
		giveUp time.Duration
		steps  []step
	}{
		{"answers", time.Minute, []step{{0, nil, leaseNoChange, leaseHeld}, {time.Second, nil, leaseNoChange, leaseHeld}}},
		{"outage shorter than the give-up time", time.Minute, []step{
			{0, down, leaseDegraded, leaseUnreachable},
			{30 * time.Second, down, leaseNoChange, leaseUnreachable},
			{59 * time.Second, down, leaseNoChange, leaseUnreachable},
			{60*time.Second - 1, nil, leaseRecovered, leaseHeld},
			{61 * time.Second, nil, leaseNoChange, leaseHeld},
		}},
		{"outage reaching the give-up time", time.Minute, []step{
			{0, down, leaseDegraded, leaseUnreachable},
			{time.Minute, down, leaseGaveUp, leaseLost},
			{time.Minute + time.Second, nil, leaseNoChange, leaseLost},
		}},
		{"the give-up time counts from the first failure of the period", time.Minute, []step{
			{0, down, leaseDegraded, leaseUnreachable},
			{time.Second, nil, leaseRecovered, leaseHeld},
			{50 * time.Second, down, leaseDegraded, leaseUnreachable},
			{100 * time.Second, down, leaseNoChange, leaseUnreachable},
			{110 * time.Second, down, leaseGaveUp, leaseLost},
		}},
		{"lease gone while etcd answers", time.Minute, []step{{0, errLeaseGone, leaseGaveUp, leaseLost}}},
		{"lease gone after an outage", time.Minute, []step{
			{0, down, leaseDegraded, leaseUnreachable},
			{10 * time.Second, errLeaseGone, leaseGaveUp, leaseLost},
		}},
		{"no give-up time: the first failure is fatal", 0, []step{{0, down, leaseGaveUp, leaseLost}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := leaseMachine{giveUp: tc.giveUp}
			for i, s := range tc.steps {
				if got := m.step(t0.Add(s.at), s.err); got != s.want || m.state != s.then {
					t.Fatalf("step %d (%v, %v): event %d state %d, want %d %d", i, s.at, s.err, got, m.state, s.want, s.then)
				}
			}
		})
	}
}

// fakeEtcd is an in-memory registry whose availability the test switches.
type fakeEtcd struct {
	mu       sync.Mutex
	down     bool
	kv       map[string][]byte
	leases   map[int64]bool
	keyLease map[string]int64
	next     int64
	rev      int64
	watchers []chan watchBatch
	history  []watchBatch // replayed to a watch from its revision on, as etcd does
}

func newFakeEtcd() *fakeEtcd {
	return &fakeEtcd{kv: map[string][]byte{}, leases: map[int64]bool{}, keyLease: map[string]int64{}}
}

var errUnavailable = errors.New("etcd unavailable")

func (f *fakeEtcd) setDown(down bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.down = down
	if down { // a broken connection ends the watches
		for _, w := range f.watchers {
			close(w)
		}
		f.watchers = nil
	}
}

// put writes a member record as another member would.
func (f *fakeEtcd) put(key string, m memberRecord) {
	v, _ := json.Marshal(m)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rev++
	f.kv[key] = v
	f.notify(watchBatch{puts: map[string][]byte{key: v}, rev: f.rev})
}

// expire removes a lease and its keys, as etcd does when it runs out.
func (f *fakeEtcd) expire(lease int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.leases, lease)
	var gone []string
	for k, l := range f.keyLease {
		if l == lease {
			delete(f.kv, k)
			delete(f.keyLease, k)
			gone = append(gone, k)
		}
	}
	f.rev++
	f.notify(watchBatch{deletes: gone, rev: f.rev})
}

// del removes a key (a member whose lease ran out during the outage).
func (f *fakeEtcd) del(key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.kv, key)
	f.rev++
	f.notify(watchBatch{deletes: []string{key}, rev: f.rev})
}

func (f *fakeEtcd) notify(b watchBatch) {
	f.history = append(f.history, b)
	if f.down {
		return
	}
	for _, w := range f.watchers {
		w <- b
	}
}

func (f *fakeEtcd) Grant(context.Context, time.Duration) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return 0, errUnavailable
	}
	f.next++
	f.leases[f.next] = true
	return f.next, nil
}

func (f *fakeEtcd) Put(_ context.Context, key, value string, lease int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errUnavailable
	}
	f.rev++
	f.kv[key], f.keyLease[key] = []byte(value), lease
	return nil
}

func (f *fakeEtcd) KeepAliveOnce(_ context.Context, lease int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case f.down:
		return errUnavailable
	case !f.leases[lease]:
		return errLeaseGone
	}
	return nil
}

func (f *fakeEtcd) Revoke(_ context.Context, lease int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errUnavailable
	}
	delete(f.leases, lease)
	return nil
}

func (f *fakeEtcd) List(_ context.Context, prefix string) (map[string][]byte, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return nil, 0, errUnavailable
	}
	out := map[string][]byte{}
	for k, v := range f.kv {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out, f.rev, nil
}

func (f *fakeEtcd) Watch(ctx context.Context, _ string, from int64) <-chan watchBatch {
	f.mu.Lock()
	defer f.mu.Unlock()
	in := make(chan watchBatch, 64)
	if f.down {
		close(in)
		return in
	}
	for _, b := range f.history {
		if b.rev >= from {
			in <- b
		}
	}
	f.watchers = append(f.watchers, in)
	out := make(chan watchBatch)
	go func() {
		defer close(out)
		for {
			select {
			case <-ctx.Done():
				f.mu.Lock()
				f.watchers = slices.DeleteFunc(f.watchers, func(c chan watchBatch) bool { return c == in })
				f.mu.Unlock()
				return
			case b, ok := <-in:
				if !ok {
					return
				}
				select {
				case out <- b:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return out
}

// providerRun is a provider on a fakeEtcd with what it published and
// reported.
type providerRun struct {
	p         *etcdProvider
	etcd      *fakeEtcd
	mu        sync.Mutex
	published [][]string // member ids per publication
	lost      []string
}

func (r *providerRun) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.published) == 0 {
		return nil
	}
	return r.published[len(r.published)-1]
}

func (r *providerRun) publications() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.published)
}

func (r *providerRun) lostReasons() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.lost)
}

// startProvider starts a provider as member "self" with a lease of 30 ms
// (renewals every 10 ms) next to members a and b.
func startProvider(t *testing.T, giveUp time.Duration) *providerRun {
	t.Helper()
	r := &providerRun{etcd: newFakeEtcd()}
	r.etcd.put("/protoactor/test/a", memberRecord{ID: "a", Host: "127.0.0.1", Port: 1, Kinds: []string{"connection"}})
	r.etcd.put("/protoactor/test/b", memberRecord{ID: "b", Host: "127.0.0.1", Port: 2, Kinds: []string{"connection"}})
	cc := ClusterConfig{EtcdLeaseTTL: 30 * time.Millisecond, EtcdDialTimeout: time.Second, EtcdLostAfter: giveUp}
	r.p = newEtcdProvider(r.etcd, "test", cc, zerolog.Nop(), func(reason string) {
		r.mu.Lock()
		r.lost = append(r.lost, reason)
		r.mu.Unlock()
	})
	self := &cluster.Member{Id: "self", Host: "127.0.0.1", Port: 3, Kinds: []string{"connection"}}
	err := r.p.start(self, func(ms []*cluster.Member) {
		ids := make([]string, len(ms))
		for i, m := range ms {
			ids[i] = m.Id
		}
		r.mu.Lock()
		r.published = append(r.published, ids)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.etcd.setDown(false); _ = r.p.Shutdown(true) })
	if got := r.last(); !slices.Equal(got, []string{"a", "b", "self"}) {
		t.Fatalf("published at start: %v", got)
	}
	return r
}

// TestEtcdProviderOutage: while etcd does not answer the member keeps its
// membership (publishes nothing), reports the degraded state and stays;
// when etcd answers again with its lease intact it publishes what changed
// meanwhile (b died in the outage) under the same id.
func TestEtcdProviderOutage(t *testing.T) {
	r := startProvider(t, time.Minute)
	r.etcd.setDown(true)
	poll.Until(t, 5*time.Second, "degraded state reported", func() bool { return !r.p.unreachableSince().IsZero() })
	before := r.publications()
	r.etcd.mu.Lock()
	delete(r.etcd.kv, "/protoactor/test/b") // b's lease ran out while etcd was away
	r.etcd.mu.Unlock()
	// Many renewal periods pass without an answer.
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) {
		time.Sleep(poll.Interval)
		if n := r.publications(); n != before {
			t.Fatalf("published %v while etcd did not answer", r.last())
		}
	}
	if l := r.lostReasons(); len(l) != 0 {
		t.Fatalf("lost during the outage: %v", l)
	}
	r.etcd.setDown(false)
	poll.Until(t, 5*time.Second, "reconciled membership [a self]", func() bool {
		return r.p.unreachableSince().IsZero() && slices.Equal(r.last(), []string{"a", "self"})
	})
	// The watch runs again: a member joining after the outage is seen.
	r.etcd.put("/protoactor/test/c", memberRecord{ID: "c", Host: "127.0.0.1", Port: 4})
	poll.Until(t, 5*time.Second, "c seen", func() bool { return slices.Equal(r.last(), []string{"a", "c", "self"}) })
	if l := r.lostReasons(); len(l) != 0 {
		t.Fatalf("lost: %v", l)
	}
}

// TestEtcdProviderLeaseLost: when etcd answers again but the lease expired
// meanwhile, the member is lost (the others dropped it): reported once.
func TestEtcdProviderLeaseLost(t *testing.T) {
	r := startProvider(t, time.Minute)
	r.etcd.setDown(true)
	poll.Until(t, 5*time.Second, "degraded state reported", func() bool { return !r.p.unreachableSince().IsZero() })
	r.etcd.mu.Lock()
	delete(r.etcd.leases, r.p.lease)
	delete(r.etcd.kv, r.p.selfKey)
	r.etcd.mu.Unlock()
	r.etcd.setDown(false)
	poll.Until(t, 5*time.Second, "lost reported", func() bool { return len(r.lostReasons()) > 0 })
	time.Sleep(100 * time.Millisecond) // the other loop meets the loss too: still one report
	if l := r.lostReasons(); len(l) != 1 || !strings.Contains(l[0], "dropped") {
		t.Fatalf("lost reasons %q", l)
	}
}

// TestEtcdProviderGiveUp: etcd silent for the give-up time: lost.
func TestEtcdProviderGiveUp(t *testing.T) {
	r := startProvider(t, 100*time.Millisecond)
	r.etcd.setDown(true)
	poll.Until(t, 5*time.Second, "lost reported", func() bool { return len(r.lostReasons()) > 0 })
	if l := r.lostReasons(); len(l) != 1 || !strings.Contains(l[0], "has not answered") {
		t.Fatalf("lost reasons %q", l)
	}
}

// TestEtcdProviderSelfDeleted: the lease expires while etcd answers (the
// member was cut off it): the watch shows this member's key deleted and the
// renewal finds no lease; either way lost, once.
func TestEtcdProviderSelfDeleted(t *testing.T) {
	r := startProvider(t, time.Minute)
	r.etcd.expire(r.p.lease)
	poll.Until(t, 5*time.Second, "lost reported", func() bool { return len(r.lostReasons()) > 0 })
	time.Sleep(100 * time.Millisecond)
	if l := r.lostReasons(); len(l) != 1 || !strings.Contains(l[0], "dropped") {
		t.Fatalf("lost reasons %q", l)
	}
}

// TestEtcdProviderWatch: members joining and leaving while etcd answers are
// published; an unreadable record is ignored.
func TestEtcdProviderWatch(t *testing.T) {
	r := startProvider(t, time.Minute)
	r.etcd.put("/protoactor/test/c", memberRecord{ID: "c", Host: "127.0.0.1", Port: 4})
	poll.Until(t, 5*time.Second, "c joined", func() bool { return slices.Equal(r.last(), []string{"a", "b", "c", "self"}) })
	r.etcd.del("/protoactor/test/a")
	poll.Until(t, 5*time.Second, "a left", func() bool { return slices.Equal(r.last(), []string{"b", "c", "self"}) })
	r.etcd.put("/protoactor/test/junk", memberRecord{})
	r.etcd.del("/protoactor/test/b")
	poll.Until(t, 5*time.Second, "b left, junk ignored", func() bool { return slices.Equal(r.last(), []string{"c", "self"}) })
}

// TestMembersGossiping: the majority rule's count — self always, the
// others unless blocked.
func TestMembersGossiping(t *testing.T) {
	m := newMembers()
	topo := &cluster.ClusterTopology{}
	for _, id := range []string{"a", "b", "self", "d", "e"} {
		topo.Members = append(topo.Members, &cluster.Member{Id: id, Host: "127.0.0.1", Port: int32(len(topo.Members) + 1)})
	}
	m.onTopology("127.0.0.1:3", topo)
	for _, tc := range []struct {
		blocked     []string
		alive       int
		isMinority  bool
		description string
	}{
		{nil, 5, false, "everybody gossips"},
		{[]string{"a", "b"}, 3, false, "two of five gone: a majority stays"},
		{[]string{"a", "b", "d"}, 2, true, "three of five gone: a minority"},
		{[]string{"a", "b", "d", "e", "self"}, 1, true, "self counts even when blocked (the own-id rule handles that)"},
	} {
		alive, total := m.gossiping("self", func(id string) bool { return slices.Contains(tc.blocked, id) })
		if alive != tc.alive || total != 5 || (2*alive <= total) != tc.isMinority {
			t.Errorf("%s: alive %d of %d", tc.description, alive, total)
		}
	}
}
