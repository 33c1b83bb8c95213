package registry_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"myrpc/v5-cluster/etcdtest"
	"myrpc/v5-cluster/registry"
)

const svc = "echo"

// Servers' addresses; nothing listens there, the registry only keeps them.
const (
	addr1 = "127.0.0.1:7001"
	addr2 = "127.0.0.1:7002"
)

func quiet() registry.Option { return registry.WithLogger(slog.New(slog.DiscardHandler)) }

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	t.Cleanup(cancel)
	return ctx
}

func register(t *testing.T, cli *clientv3.Client, addr string, ttl time.Duration, opts ...registry.Option) *registry.Registration {
	t.Helper()
	r, err := registry.Register(ctxT(t), cli, svc, addr, ttl, append([]registry.Option{quiet()}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func resolve(t *testing.T, cli *clientv3.Client, opts ...registry.Option) (*updates, func()) {
	t.Helper()
	u := newUpdates()
	c, err := registry.NewResolver(cli, append([]registry.Option{quiet()}, opts...)...).Resolve(svc, u.update)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	stop := func() {
		if !closed {
			closed = true
			if err := c.Close(); err != nil {
				t.Errorf("resolver Close: %v", err)
			}
		}
	}
	t.Cleanup(stop)
	return u, stop
}

func TestRegisterResolve(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client()
	r1 := register(t, cli, addr1, 10*time.Second)

	// The first update comes before Resolve returns.
	u, stop := resolve(t, cli)
	if got, n, _ := u.last(); n != 1 || !slices.Equal(got, []string{addr1}) {
		t.Fatalf("after Resolve: %d update(s), last %q; want one, [%s]", n, got, addr1)
	}

	// A second server: both.
	r2 := register(t, cli, addr2, 10*time.Second)
	u.waitFor(t, addr1, addr2)

	// A lease renewed or a key put again with the same address is no
	// change, and no update.
	_, n, _ := u.last()
	if _, err := cli.Put(ctxT(t), registry.Key(svc, addr2), addr2, clientv3.WithLease(r2.Lease())); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Put(ctxT(t), registry.Key("other", addr2), addr2); err != nil {
		t.Fatal(err)
	}
	// A change after them is seen alone: the puts before it gave nothing.
	if err := r1.Deregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	u.waitFor(t, addr2)
	if _, m, _ := u.last(); m != n+1 {
		t.Fatalf("%d update(s) for one change", m-n)
	}

	stop()
	noGoroutines(t, "resolver Close", resolveFrame)
	if err := r2.Deregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if err := r2.Deregister(ctxT(t)); err != nil {
		t.Fatalf("second Deregister: %v", err)
	}
	noGoroutines(t, "Deregister", keepFrame)
}

func TestDeregisterGonePromptly(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client()
	// The lease is long, so what removes the address is Deregister.
	const ttl = 20 * time.Second
	r1 := register(t, cli, addr1, ttl)
	register(t, cli, addr2, ttl)
	u, _ := resolve(t, cli)
	u.waitFor(t, addr1, addr2)

	start := time.Now()
	if err := r1.Deregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	u.waitFor(t, addr2)
	took := time.Since(start)
	t.Logf("gone %v after Deregister", took.Round(time.Millisecond))
	if took >= ttl/2 {
		t.Fatalf("gone %v after Deregister, no sooner than its lease would end", took)
	}
	// The lease went with the key.
	resp, err := cli.TimeToLive(ctxT(t), r1.Lease())
	if err != nil {
		t.Fatal(err)
	}
	if resp.TTL != -1 {
		t.Fatalf("lease TTL %d after Deregister, want -1 (revoked)", resp.TTL)
	}
}

func TestServerDiesLeaseEnds(t *testing.T) {
	c := etcdtest.Start(t)
	// The server keeps its lease alive through a client of its own; when
	// it dies, the client goes with it, and nobody deletes its key.
	server := c.Client()
	const ttl = 2 * time.Second
	register(t, server, addr1, ttl)
	u, _ := resolve(t, c.Client())
	u.waitFor(t, addr1)

	if err := server.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	u.waitFor(t)
	took := time.Since(start)
	t.Logf("gone %v after its keep-alive stopped (ttl %v)", took.Round(time.Millisecond), ttl)
	// The lease was last renewed at most a third of its TTL before.
	if took < ttl/3 {
		t.Fatalf("gone %v after its keep-alive stopped, before its lease could end", took)
	}
	noGoroutines(t, "a closed client", keepFrame)
}

func TestEtcdAwayResolverKeepsAddresses(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client()
	// The lease outlives the outage: the registration is not what this
	// test is about.
	register(t, cli, addr1, time.Minute)
	log := newRecords()
	u, _ := resolve(t, cli, registry.WithLogger(log.logger()))
	u.waitFor(t, addr1)
	_, before, _ := u.last()

	c.Stop(0)
	log.waitFor(t, slog.LevelWarn, "etcd unreachable")
	got, n, _ := u.last()
	if n != before || !slices.Equal(got, []string{addr1}) {
		t.Fatalf("with etcd away: %d update(s), last %q; want the %d before, [%s]", n-before, got, 0, addr1)
	}

	c.Restart(0)
	log.waitFor(t, slog.LevelInfo, "etcd reachable again")
	register(t, cli, addr2, time.Minute)
	u.waitFor(t, addr1, addr2)
	if n, _ := log.count(slog.LevelWarn, "etcd unreachable"); n != 1 {
		t.Fatalf("%d warnings for one outage, want 1", n)
	}
}

func TestLeaseLostRegistersAgain(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client()
	log := newRecords()
	const ttl = 2 * time.Second
	r := register(t, cli, addr1, ttl, registry.WithLogger(log.logger()))
	old := r.Lease()

	// Away for longer than the lease: the client gives the lease up.
	start := time.Now()
	c.Stop(0)
	log.waitFor(t, slog.LevelWarn, "lease lost")
	t.Logf("lease lost %v after etcd stopped (ttl %v)", time.Since(start).Round(time.Millisecond), ttl)
	c.Restart(0)
	start = time.Now()
	log.waitFor(t, slog.LevelInfo, "registered again")
	t.Logf("registered again %v after etcd came back", time.Since(start).Round(time.Millisecond))

	if r.Lease() == old {
		t.Fatal("registered again under the lease it lost")
	}
	resp, err := cli.Get(ctxT(t), registry.Key(svc, addr1))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Kvs) != 1 || clientv3.LeaseID(resp.Kvs[0].Lease) != r.Lease() {
		t.Fatalf("key after registering again: %v, want it under lease %x", resp.Kvs, r.Lease())
	}
	ttlResp, err := cli.TimeToLive(ctxT(t), old)
	if err != nil {
		t.Fatal(err)
	}
	if ttlResp.TTL != -1 {
		t.Fatalf("the lost lease has TTL %d, want -1 (revoked)", ttlResp.TTL)
	}
	u, _ := resolve(t, cli)
	u.waitFor(t, addr1)
}

func TestCompactedWhileAway(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	// The resolver reads member 0 only; the servers write to the others.
	u, _ := resolve(t, c.Client(c.Endpoint(0)))
	writer := c.Client(c.Endpoint(1), c.Endpoint(2))
	register(t, writer, addr1, time.Minute)
	u.waitFor(t, addr1)

	// While member 0 is away, a server comes, more is written, and the
	// history is compacted: what the resolver's watch would resume from
	// is gone. (Whether the watch hears of the compaction, or is ended
	// first because member 0 has no leader yet, depends on timing; either
	// way the resolver reads the addresses again.)
	c.Stop(0)
	register(t, writer, addr2, time.Minute)
	compact(t, writer)
	c.Restart(0)
	u.waitFor(t, addr1, addr2)
}

// compact writes twice elsewhere and compacts etcd's history up to then.
func compact(t *testing.T, cli *clientv3.Client) {
	t.Helper()
	if _, err := cli.Put(ctxT(t), "/elsewhere", "x"); err != nil {
		t.Fatal(err)
	}
	resp, err := cli.Put(ctxT(t), "/elsewhere", "y")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cli.Compact(ctxT(t), resp.Header.Revision, clientv3.WithCompactPhysical()); err != nil {
		t.Fatal(err)
	}
}

// A watch that resumes from a compacted revision reads the whole set
// again and watches on from there.
func TestWatchFromCompactedRevision(t *testing.T) {
	c := etcdtest.Start(t)
	cli := c.Client()
	r1 := register(t, cli, addr1, time.Minute)
	first, err := cli.Get(ctxT(t), registry.Key(svc, addr1))
	if err != nil {
		t.Fatal(err)
	}
	register(t, cli, addr2, time.Minute)
	compact(t, cli)

	log := newRecords()
	u := newUpdates()
	closer, err := registry.NewResolver(cli, registry.WithLogger(log.logger())).ResolveAfter(svc, first.Header.Revision, u.update)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	log.waitFor(t, slog.LevelInfo, "compacted")
	u.waitFor(t, addr1, addr2)

	// And it watches on.
	if err := r1.Deregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	u.waitFor(t, addr2)
}

func TestClusterLosesOneMember(t *testing.T) {
	c := etcdtest.StartCluster(t, 3)
	cli := c.Client()
	r1 := register(t, cli, addr1, 10*time.Second)
	u, _ := resolve(t, cli)
	u.waitFor(t, addr1)

	// Without its leader, the cluster elects another and goes on.
	lead := c.Leader()
	if lead < 0 {
		t.Fatal("no leader")
	}
	c.Stop(lead)
	register(t, cli, addr2, 10*time.Second)
	u.waitFor(t, addr1, addr2)
	if err := r1.Deregister(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	u.waitFor(t, addr2)

	// A resolver started now finds what the two members have.
	u2, _ := resolve(t, cli)
	u2.waitFor(t, addr2)
}

func TestResolveWithoutEtcd(t *testing.T) {
	// A port nothing listens on.
	c := etcdtest.Start(t)
	ep := c.Endpoint(0)
	c.Stop(0)
	cli, err := registry.NewClient([]string{ep})
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()

	start := time.Now()
	const timeout = 500 * time.Millisecond
	_, err = registry.NewResolver(cli, quiet(), registry.WithTimeout(timeout)).Resolve(svc, func([]string) {
		t.Error("update called without etcd")
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Resolve without etcd: %v, want a deadline error", err)
	}
	if took := time.Since(start); took > timeout+5*time.Second {
		t.Fatalf("Resolve without etcd took %v, timeout %v", took, timeout)
	}
	noGoroutines(t, "a failed Resolve", resolveFrame)
}

func TestBadNames(t *testing.T) {
	for _, tc := range []struct{ service, addr string }{
		{"", addr1},
		{"a/b", addr1},
		{svc, ""},
	} {
		if _, err := registry.Register(context.Background(), nil, tc.service, tc.addr, time.Second); !errors.Is(err, registry.ErrBadName) {
			t.Errorf("Register(%q, %q): %v, want ErrBadName", tc.service, tc.addr, err)
		}
	}
	if _, err := registry.NewResolver(nil).Resolve("a/b", func([]string) {}); !errors.Is(err, registry.ErrBadName) {
		t.Errorf("Resolve(a/b): %v, want ErrBadName", err)
	}
}
