package etcdlocal_test

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"myrpc/v5-cluster/etcdlocal"
	"myrpc/v5-cluster/etcdtest"
)

const startTimeout = etcdtest.StartTimeout

func quiet() etcdlocal.Option { return etcdlocal.WithLogger(slog.New(slog.DiscardHandler)) }

func newClient(t *testing.T, eps ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: eps, DialTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Close() })
	return cli
}

func put(t *testing.T, cli *clientv3.Client, k, v string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.Put(ctx, k, v); err != nil {
		t.Fatalf("put %s: %v", k, err)
	}
}

func get(t *testing.T, cli *clientv3.Client, k string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := cli.Get(ctx, k)
	if err != nil {
		t.Fatalf("get %s: %v", k, err)
	}
	if len(r.Kvs) == 0 {
		return ""
	}
	return string(r.Kvs[0].Value)
}

func TestStartOneMember(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	start := time.Now()
	c, err := etcdlocal.Start(ctx, quiet())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one member serves %v after Start", time.Since(start).Round(time.Millisecond))
	if len(c.Endpoints()) != 1 {
		t.Fatalf("Endpoints() = %v, want one", c.Endpoints())
	}
	cli := newClient(t, c.Endpoints()...)
	put(t, cli, "k", "v1")

	// Stopped and started again, the member keeps its data and address.
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := c.Restart(ctx, 0); err != nil {
		t.Fatal(err)
	}
	t.Logf("the member serves again %v after Restart", time.Since(start).Round(time.Millisecond))
	if got := get(t, cli, "k"); got != "v1" {
		t.Fatalf("after restart k = %q, want v1", got)
	}

	dir := c.Dir()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("data dir after Close: %v, want it gone", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := c.Restart(ctx, 0); err != etcdlocal.ErrClosed {
		t.Fatalf("Restart after Close = %v, want ErrClosed", err)
	}
}

func TestClusterOfThreeLosesOne(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	start := time.Now()
	c, err := etcdlocal.StartCluster(ctx, 3, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Logf("three members serve %v after StartCluster", time.Since(start).Round(time.Millisecond))
	eps := c.Endpoints()
	if len(eps) != 3 || eps[0] == eps[1] || eps[1] == eps[2] || eps[0] == eps[2] {
		t.Fatalf("Endpoints() = %v, want three different addresses", eps)
	}
	cli := newClient(t, eps...)
	put(t, cli, "k", "v1")

	// Two of three are a quorum: writes go on without the leader.
	lead := c.Leader()
	if lead < 0 {
		t.Fatal("no leader in a cluster that served a put")
	}
	if err := c.Stop(lead); err != nil {
		t.Fatal(err)
	}
	a, b := (lead+1)%3, (lead+2)%3
	put(t, newClient(t, c.Endpoint(a)), "k", "v2")
	if got := get(t, newClient(t, c.Endpoint(b)), "k"); got != "v2" {
		t.Fatalf("k on member %d = %q, want v2", b, got)
	}
	if l := c.Leader(); l != a && l != b {
		t.Fatalf("Leader() = %d after member %d stopped, want %d or %d", l, lead, a, b)
	}

	// Back, the old leader catches up with what it missed.
	if err := c.Restart(ctx, lead); err != nil {
		t.Fatal(err)
	}
	if got := get(t, newClient(t, c.Endpoint(lead)), "k"); got != "v2" {
		t.Fatalf("k on member %d after its restart = %q, want v2", lead, got)
	}
}

// TestRestartWaitsWithoutTheLock: a Restart waiting for its member to
// serve blocks no other method, and a Stop of the member ends the wait. A
// member restarted alone in a cluster of three that were all stopped
// cannot serve, lacking a quorum, until a second one is back: that second
// Restart must not wait for the first.
func TestRestartWaitsWithoutTheLock(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := etcdlocal.StartCluster(ctx, 3, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// The followers first: a leader stopped while they run would hand its
	// leadership to one of them, for nothing.
	lead := c.Leader()
	for i := range 3 {
		if i != lead {
			if err := c.Stop(i); err != nil {
				t.Fatal(err)
			}
		}
	}
	if lead >= 0 {
		if err := c.Stop(lead); err != nil {
			t.Fatal(err)
		}
	}

	rctx, rcancel := context.WithTimeout(context.Background(), startTimeout)
	defer rcancel()
	restart0 := func() <-chan error {
		restarted := make(chan error, 1)
		go func() { restarted <- c.Restart(rctx, 0) }()
		// Member 0 listens once it is started, long before it serves.
		deadline := time.Now().Add(startTimeout)
		for {
			nc, err := net.DialTimeout("tcp", c.Endpoint(0), time.Second)
			if err == nil {
				nc.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("member 0 does not listen %v after its Restart: %v", startTimeout, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		select {
		case err := <-restarted:
			t.Fatalf("Restart of one member of three returned %v, without a quorum", err)
		default:
		}
		return restarted
	}
	// within runs f, and fails the test if it takes more than d.
	within := func(d time.Duration, what string, f func()) {
		t.Helper()
		done := make(chan struct{})
		go func() {
			defer close(done)
			f()
		}()
		select {
		case <-done:
		case <-time.After(d):
			t.Fatalf("%s blocked while a Restart waited for its member to serve", what)
		}
	}

	restarted := restart0()
	within(10*time.Second, "Leader()", func() {
		if l := c.Leader(); l != -1 {
			t.Errorf("Leader() = %d with no quorum, want -1", l)
		}
	})
	// A Stop ends the wait.
	within(startTimeout, "Stop(0)", func() {
		if err := c.Stop(0); err != nil {
			t.Errorf("Stop(0) = %v", err)
		}
	})
	select {
	case err := <-restarted:
		if err == nil {
			t.Fatal("Restart(0) = nil, but member 0 was stopped before it served")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Restart(0) did not return once member 0 was stopped")
	}

	// A second member makes a quorum, and both serve.
	restarted = restart0()
	if err := c.Restart(ctx, 1); err != nil {
		t.Fatalf("Restart(1) = %v while member 0 waited for a quorum", err)
	}
	select {
	case err := <-restarted:
		if err != nil {
			t.Fatalf("Restart(0) = %v, want it to serve once member 1 was back", err)
		}
	case <-time.After(startTimeout):
		t.Fatal("Restart(0) did not return once member 1 was back")
	}
	put(t, newClient(t, c.Endpoint(0)), "k", "v")
}

func TestStartCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c, err := etcdlocal.Start(ctx, quiet()); err == nil {
		c.Close()
		t.Fatal("Start with a cancelled context succeeded")
	}
}

func TestLogsGoToSlog(t *testing.T) {
	var h recorder
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := etcdlocal.Start(ctx, etcdlocal.WithLogger(slog.New(&h)), etcdlocal.WithLogLevel(slog.LevelInfo))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if h.count() == 0 {
		t.Fatal("no etcd record reached the slog logger at Info")
	}
}

// A member stops at once although a client keeps a lease alive: etcd
// alone would wait for the keep-alive stream to end until its request
// timeout, 7 s.
func TestStopCutsStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := etcdlocal.Start(ctx, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cli := newClient(t, c.Endpoints()...)
	g, err := cli.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	ka, err := cli.KeepAlive(ctx, g.ID)
	if err != nil {
		t.Fatal(err)
	}
	<-ka // the stream is open

	start := time.Now()
	if err := c.Stop(0); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("Stop took %v with a keep-alive stream open", took.Round(time.Millisecond))
	if took > 5*time.Second {
		t.Fatalf("Stop took %v with a keep-alive stream open", took)
	}
}

// etcd stopping as asked logs errors ("use of closed network
// connection"); they are no news, and etcdlocal lowers them to Debug.
func TestStopIsQuiet(t *testing.T) {
	var h recorder
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := etcdlocal.StartCluster(ctx, 3, etcdlocal.WithLogger(slog.New(&h)))
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if n := h.count(); n != 0 {
		t.Fatalf("%d etcd record(s) at Error while it started and stopped", n)
	}
}

// A port chosen free but taken before etcd binds it costs a new start on
// other ports, not a failure.
func TestStartPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	takenAddr := taken.Addr().String()
	starts := 0
	defer etcdlocal.ChoosePorts(func(n int, free func(int) ([]int, error)) ([]int, error) {
		starts++
		ports, err := free(n)
		if starts == 1 && err == nil {
			// The client port of the first member.
			ports[1] = taken.Addr().(*net.TCPAddr).Port
		}
		return ports, err
	})()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := etcdlocal.Start(ctx, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if starts != 2 {
		t.Fatalf("%d start(s), want 2", starts)
	}
	if ep := c.Endpoint(0); ep == takenAddr {
		t.Fatalf("serving on %s, the port that was taken", ep)
	}
	put(t, newClient(t, c.Endpoints()...), "k", "v")
}
