package rpctest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/shared/proto/status"
)

// Cluster is what a stage whose clients find the servers of a service in
// a registry, and spread their calls over them (V5), gives the cluster
// rows of the reliability table.
type Cluster struct {
	// StartRegistry starts a registry of the given number of members for
	// t; t's cleanup stops it.
	StartRegistry func(t *testing.T, members int) Registry
	// LeakWait bounds the wait for the registry's goroutines to end after
	// a row, before the row's goroutine check fails: a stopped member's
	// connections may outlive it for a few seconds.
	LeakWait time.Duration
}

// Registry is a registry started for one test.
type Registry interface {
	// Register puts addr in the registry as a server of service, under a
	// lease of ttl that a registry client of the registration's own keeps
	// alive. t's cleanup stops keeping it alive.
	Register(t *testing.T, service, addr string, ttl time.Duration) Registration
	// NewClient returns a client of the servers that the registry lists
	// for service, following them as they come and go; t's cleanup closes
	// it.
	NewClient(t *testing.T, service string, cfg ClientConfig) Client
	// StopMember stops member i of the registry; RestartMember starts it
	// again.
	StopMember(t *testing.T, i int)
	RestartMember(t *testing.T, i int)
}

// Registration is an address kept in a registry.
type Registration interface {
	// Deregister removes the address, as a server that drains does first.
	Deregister(ctx context.Context) error
	// Abandon stops keeping the address alive without removing it, as a
	// server process that died would: the address goes when its lease
	// ends.
	Abandon()
}

func needsCluster(s Stage) string {
	if s.Cluster != nil {
		return ""
	}
	return s.Name + " has no registry: a client calls the one server at its host:port"
}

// clusterService is the service name the cluster rows register.
const clusterService = "myrpc.rpctest.Cluster"

// clusterWait bounds a wait for something that takes a few seconds at
// most (a lease to end, a registry member to start, a client to see an
// update); it is long because the machine may be busy with other work,
// and a row that passes never waits it.
const clusterWait = 30 * time.Second

// node is one server of a cluster row. Its Greeter answers with the
// node's name, so that a caller knows which server answered, and counts
// its calls; its Echo counts the calls it started.
type node struct {
	name      string
	srv       Server
	errClosed error
	addr      string // what the registry lists: the server's, or its proxy's
	hellos    atomic.Int64
	echoes    atomic.Int64
	proxy     *crashProxy
	reg       Registration
	served    chan error
	stop      sync.Once
}

type nodeGreeter struct{ n *node }

func (g nodeGreeter) Hello(context.Context, *helloworld.HelloRequest) (*helloworld.HelloReply, error) {
	g.n.hellos.Add(1)
	return &helloworld.HelloReply{Msg: g.n.name}, nil
}

type nodeEcho struct{ n *node }

func (e nodeEcho) Echo(ctx context.Context, req *echo.EchoRequest) (*echo.EchoReply, error) {
	e.n.echoes.Add(1)
	return services.Echo{}.Echo(ctx, req)
}

// startNode starts a server of the stage and registers it under
// clusterService with a lease of ttl. With proxied, the registry lists a
// proxy in front of the server, which crash cuts off as a crash would.
func startNode(t *testing.T, stage Stage, reg Registry, name string, ttl time.Duration, proxied bool) *node {
	t.Helper()
	n := &node{name: name, errClosed: stage.ErrServerClosed, served: make(chan error, 1)}
	n.srv = stage.NewServer(ServerConfig{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	helloworld.RegisterGreeterServer(n.srv, nodeGreeter{n})
	echo.RegisterEchoServer(n.srv, nodeEcho{n})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.addr = lis.Addr().String()
	go func() { n.served <- n.srv.Serve(lis) }()
	t.Cleanup(func() { n.shutdown(t, 5*time.Second) })
	if proxied {
		n.proxy = startCrashProxy(t, n.addr)
		n.addr = n.proxy.addr()
	}
	n.reg = reg.Register(t, clusterService, n.addr, ttl)
	return n
}

// shutdown stops the node's server within timeout and checks that Serve
// returned ErrServerClosed.
func (n *node) shutdown(t *testing.T, timeout time.Duration) error {
	var err error
	n.stop.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if err = n.srv.Shutdown(ctx); err != nil {
			t.Errorf("%s: Shutdown: %v", n.name, err)
		}
		select {
		case serr := <-n.served:
			if !errors.Is(serr, n.errClosed) {
				t.Errorf("%s: Serve returned %v, want %v", n.name, serr, n.errClosed)
			}
		case <-time.After(timeout):
			t.Errorf("%s: Serve did not return within %v of Shutdown", n.name, timeout)
		}
	})
	return err
}

// hello makes one call and returns the name of the node that answered.
func hello(ctx context.Context, c Client) (string, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := helloworld.NewGreeterClient(c).Hello(cctx, &helloworld.HelloRequest{Msg: "cluster"})
	if err != nil {
		return "", err
	}
	return r.Msg, nil
}

// waitReach calls until every one of names has answered, and fails the
// test if that takes longer than clusterWait or a call fails.
func waitReach(t *testing.T, c Client, names ...string) {
	t.Helper()
	seen := map[string]bool{}
	deadline := time.Now().Add(clusterWait)
	for {
		got, err := hello(context.Background(), c)
		if err != nil {
			t.Fatalf("a call while waiting for %v to answer: %v", names, err)
		}
		seen[got] = true
		all := true
		for _, n := range names {
			all = all && seen[n]
		}
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v, only %v of %v answered", clusterWait, seen, names)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// callers keeps goroutines calling Hello until stop, and counts the calls
// and the failures.
type callers struct {
	stopc  chan struct{}
	wg     sync.WaitGroup
	calls  atomic.Int64
	mu     sync.Mutex
	failed []error
}

func startCallers(c Client, n int) *callers {
	cs := &callers{stopc: make(chan struct{})}
	for range n {
		cs.wg.Add(1)
		go func() {
			defer cs.wg.Done()
			for {
				select {
				case <-cs.stopc:
					return
				default:
				}
				_, err := hello(context.Background(), c)
				cs.calls.Add(1)
				if err != nil {
					cs.mu.Lock()
					cs.failed = append(cs.failed, err)
					cs.mu.Unlock()
				}
			}
		}()
	}
	return cs
}

// waitCalls waits until the callers have made n more calls than now.
func (cs *callers) waitCalls(t *testing.T, n int64) {
	t.Helper()
	want := cs.calls.Load() + n
	if !waitFor(clusterWait, func() bool { return cs.calls.Load() >= want }) {
		t.Fatalf("the callers made %d calls in %v, want %d", cs.calls.Load(), clusterWait, want)
	}
}

// stop stops the callers and returns their calls and failures.
func (cs *callers) stop() (int64, []error) {
	close(cs.stopc)
	cs.wg.Wait()
	return cs.calls.Load(), cs.failed
}

// noFailures fails the test if any of the callers' calls failed.
func noFailures(t *testing.T, cs *callers) {
	t.Helper()
	calls, failed := cs.stop()
	t.Logf("%d calls, %d failed", calls, len(failed))
	for i, err := range failed {
		if i == 5 {
			t.Errorf("and %d more", len(failed)-5)
			break
		}
		t.Errorf("a call failed: %v", err)
	}
}

// testR33RegistryDown stops the registry: calls go on over the servers
// the client knows, and when the registry is back, a server that joins
// gets calls.
func testR33RegistryDown(t *testing.T, stage Stage) {
	reg := stage.Cluster.StartRegistry(t, 1)
	a := startNode(t, stage, reg, "a", 5*time.Second, false)
	b := startNode(t, stage, reg, "b", 5*time.Second, false)
	c := reg.NewClient(t, clusterService, ClientConfig{})
	waitReach(t, c, a.name, b.name)

	reg.StopMember(t, 0)
	cs := startCallers(c, 4)
	beforeA, beforeB := a.hellos.Load(), b.hellos.Load()
	cs.waitCalls(t, 400)
	noFailures(t, cs)
	if a.hellos.Load() == beforeA || b.hellos.Load() == beforeB {
		t.Errorf("with the registry down, a answered %d calls and b %d: want both to go on",
			a.hellos.Load()-beforeA, b.hellos.Load()-beforeB)
	}

	reg.RestartMember(t, 0)
	d := startNode(t, stage, reg, "d", 5*time.Second, false)
	waitReach(t, c, d.name)
}

// testR34LeaseExpiry stops keeping a server's lease alive while the
// server goes on serving: when the lease ends, its address leaves the
// registry and the client stops calling it.
func testR34LeaseExpiry(t *testing.T, stage Stage) {
	reg := stage.Cluster.StartRegistry(t, 1)
	const ttl = 2 * time.Second
	a := startNode(t, stage, reg, "a", ttl, false)
	b := startNode(t, stage, reg, "b", ttl, false)
	c := reg.NewClient(t, clusterService, ClientConfig{})
	waitReach(t, c, a.name, b.name)

	a.reg.Abandon()
	abandoned := time.Now()
	// The client stops calling a once the lease has ended: a run of calls
	// that all go to b, long enough that p2c would have picked a among
	// them many times over.
	const run = 200
	inRow := 0
	for inRow < run {
		got, err := hello(context.Background(), c)
		if err != nil {
			t.Fatalf("a call while the lease ran out: %v", err)
		}
		if got == b.name {
			inRow++
		} else {
			inRow = 0
		}
		if time.Since(abandoned) > ttl+clusterWait {
			t.Fatalf("%v after a's lease was left to end, calls still go to a", time.Since(abandoned).Round(time.Millisecond))
		}
	}
	t.Logf("calls stopped going to a within %v of its lease being left to end (ttl %v)", time.Since(abandoned).Round(time.Millisecond), ttl)
	if got, err := hello(context.Background(), c); err != nil || got != b.name {
		t.Fatalf("a call after a's lease ended: %q, %v; want b", got, err)
	}
	// a still serves: the client left it because of the registry, not
	// because a call to it failed.
	direct := stage.NewClient(a.addr, ClientConfig{})
	defer direct.Close()
	if got, err := hello(context.Background(), direct); err != nil || got != a.name {
		t.Fatalf("a call to a by its address: %q, %v", got, err)
	}
}

// testR35ServerCrash cuts a server off as a crash would, with calls in
// flight on it: those may fail, every other call succeeds, and the calls
// made after the crash go to the others while the crashed server's
// address is still in the registry.
func testR35ServerCrash(t *testing.T, stage Stage) {
	reg := stage.Cluster.StartRegistry(t, 1)
	a := startNode(t, stage, reg, "a", 30*time.Second, false)
	b := startNode(t, stage, reg, "b", 30*time.Second, false)
	x := startNode(t, stage, reg, "x", 30*time.Second, true)
	c := reg.NewClient(t, clusterService, ClientConfig{})
	waitReach(t, c, a.name, b.name, x.name)

	// Slow calls in flight on every server, x among them.
	const slow = 24
	type result struct{ err error }
	results := make(chan result, slow)
	ec := echo.NewEchoClient(c)
	for range slow {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			_, err := ec.Echo(ctx, &echo.EchoRequest{DelayMs: 1000})
			results <- result{err}
		}()
	}
	if !waitFor(clusterWait, func() bool { return a.echoes.Load()+b.echoes.Load()+x.echoes.Load() == slow }) {
		t.Fatalf("%d of %d slow calls reached a server", a.echoes.Load()+b.echoes.Load()+x.echoes.Load(), slow)
	}
	onX := x.echoes.Load()
	if onX == 0 {
		t.Fatalf("none of %d slow calls went to x (a %d, b %d)", slow, a.echoes.Load(), b.echoes.Load())
	}

	x.reg.Abandon()
	x.proxy.crash()
	cs := startCallers(c, 4)
	cs.waitCalls(t, 400)
	noFailures(t, cs)

	failed := 0
	for range slow {
		r := <-results
		if r.err != nil {
			failed++
			if code := status.Code(r.err); code != codes.Unavailable {
				t.Errorf("a slow call failed with %v, want code Unavailable", r.err)
			}
		}
	}
	t.Logf("x had %d of %d slow calls when it crashed; %d failed", onX, slow, failed)
	if int64(failed) > onX {
		t.Errorf("%d slow calls failed, but x had only %d: calls on the other servers failed", failed, onX)
	}
}

// testR36ServerDrain drains a server as a SIGTERM does (its address out
// of the registry; once the client has seen that, Shutdown, which waits
// for the calls in flight) while calls go on: no call fails, and the calls
// go on over the others.
func testR36ServerDrain(t *testing.T, stage Stage) {
	reg := stage.Cluster.StartRegistry(t, 1)
	a := startNode(t, stage, reg, "a", 5*time.Second, false)
	b := startNode(t, stage, reg, "b", 5*time.Second, false)
	x := startNode(t, stage, reg, "x", 5*time.Second, false)
	c := reg.NewClient(t, clusterService, ClientConfig{})
	waitReach(t, c, a.name, b.name, x.name)

	cs := startCallers(c, 4)
	// Slow calls in flight, so that some are on x as it drains.
	ec := echo.NewEchoClient(c)
	var wg sync.WaitGroup
	var slowFailed atomic.Int64
	for range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := ec.Echo(ctx, &echo.EchoRequest{DelayMs: 300}); err != nil {
				slowFailed.Add(1)
				t.Errorf("a slow call failed: %v", err)
			}
		}()
	}
	cs.waitCalls(t, 100)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := x.reg.Deregister(ctx); err != nil {
		t.Fatal(err)
	}
	// A draining server waits for its clients to see that its address has
	// gone before it stops: here, until the callers have made a run of
	// calls with none of them to x.
	const run = 200
	deadline := time.Now().Add(clusterWait)
	for {
		before, calls := x.hellos.Load(), cs.calls.Load()
		if !waitFor(clusterWait, func() bool { return cs.calls.Load() >= calls+run }) {
			t.Fatalf("the callers made %d calls in %v, want %d", cs.calls.Load()-calls, clusterWait, run)
		}
		if x.hellos.Load() == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v after x left the registry, calls still go to it", clusterWait)
		}
	}
	if err := x.shutdown(t, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	cs.waitCalls(t, 400)
	wg.Wait()
	noFailures(t, cs)
	t.Logf("x answered %d calls and %d slow ones before it drained", x.hellos.Load(), x.echoes.Load())
}

// testR37MemberLost stops one member of a three-member registry while
// calls go on: no call fails, and a server that registers afterwards gets
// calls.
func testR37MemberLost(t *testing.T, stage Stage) {
	reg := stage.Cluster.StartRegistry(t, 3)
	a := startNode(t, stage, reg, "a", 5*time.Second, false)
	b := startNode(t, stage, reg, "b", 5*time.Second, false)
	c := reg.NewClient(t, clusterService, ClientConfig{})
	waitReach(t, c, a.name, b.name)

	cs := startCallers(c, 4)
	cs.waitCalls(t, 100)
	reg.StopMember(t, 0)
	d := startNode(t, stage, reg, "d", 5*time.Second, false)
	before := d.hellos.Load()
	cs.waitCalls(t, 400)
	if !waitFor(clusterWait, func() bool { return d.hellos.Load() > before }) {
		t.Errorf("d, registered after a member was lost, got no call in %v", clusterWait)
	}
	noFailures(t, cs)
}

// checkClusterLeaks is checkLeaks for the cluster rows: it gives the
// registry's goroutines the stage's LeakWait to end.
func checkClusterLeaks(t *testing.T, wait time.Duration) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() {
		var err error
		waitFor(wait, func() bool { err = goleak.Find(opt); return err == nil })
		if err != nil {
			t.Errorf("leaked goroutines: %v", err)
		}
	})
}

// crashProxy forwards connections to a server until crash, which closes
// its listener and resets every connection, as the end of a server's
// process would.
type crashProxy struct {
	lis     net.Listener
	backend string
	mu      sync.Mutex // protects conns and crashed
	conns   []net.Conn
	crashed bool
	wg      sync.WaitGroup
}

func startCrashProxy(t *testing.T, backend string) *crashProxy {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &crashProxy{lis: lis, backend: backend}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.crash)
	return p
}

func (p *crashProxy) addr() string { return p.lis.Addr().String() }

func (p *crashProxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		// in is tracked before the backend is dialled, so that a crash
		// meanwhile resets it with the others: a connection left open past
		// the crash would take a request the client wrote after it.
		if !p.track(in) {
			return
		}
		out, err := net.DialTimeout("tcp", p.backend, 5*time.Second)
		if err != nil {
			in.Close()
			continue
		}
		if !p.track(out) {
			return
		}
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// track adds one end of a forwarded connection, or resets it and returns
// false after crash.
func (p *crashProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.crashed {
		reset(c)
		return false
	}
	p.conns = append(p.conns, c)
	return true
}

// reset closes c with a reset, as the end of a process does to a
// connection with data unread.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}

func (p *crashProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	}
}

// crash closes the listener and resets every connection, then waits for
// the proxy's goroutines. It may be called more than once.
func (p *crashProxy) crash() {
	p.mu.Lock()
	if !p.crashed {
		p.crashed = true
		p.lis.Close()
		for _, c := range p.conns {
			reset(c)
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}
