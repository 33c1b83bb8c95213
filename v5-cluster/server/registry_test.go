package server

import (
	"context"
	"errors"
	"net"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/client"
	"myrpc/v5-cluster/etcdtest"
	"myrpc/v5-cluster/registry"
)

// waitLong bounds a wait for something that takes a few seconds at most
// (a lease to end); a test that passes never waits it.
const waitLong = 30 * time.Second

// watcher follows a service's addresses in etcd, as a client's resolver
// does.
type watcher struct {
	mu      sync.Mutex // protects addrs and changed
	addrs   []string
	changed chan struct{}
}

// watchService follows service through cli until the test ends.
func watchService(t *testing.T, cli *registry.Resolver, service string) *watcher {
	t.Helper()
	w := &watcher{changed: make(chan struct{})}
	res, err := cli.Resolve(service, func(addrs []string) {
		w.mu.Lock()
		defer w.mu.Unlock()
		w.addrs = addrs
		close(w.changed)
		w.changed = make(chan struct{})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Close() })
	return w
}

// waitFor waits until the addresses are want.
func (w *watcher) waitFor(t *testing.T, want ...string) {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		w.mu.Lock()
		got, changed := w.addrs, w.changed
		w.mu.Unlock()
		if slices.Equal(got, want) && (got != nil || want == nil) {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("addresses are %q after %v, want %q", got, waitLong, want)
		}
	}
}

// numRegs returns the number of registrations the server holds.
func (s *Server) numRegs() int {
	s.regMu.Lock()
	defer s.regMu.Unlock()
	return len(s.regs)
}

// startRegistered starts a server with Greeter and a blocking service, registered as test.Service in etcd.
func startRegistered(t *testing.T, etcd *etcdtest.Cluster, opts ...Option) (*testServer, *blockingService) {
	t.Helper()
	b := newBlockingService()
	s := New(append([]Option{WithLogger(quietLogger()), WithRegistry(etcd.Client(), "test.Service", 0)}, opts...)...)
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(b.desc(), b); err != nil {
		t.Fatal(err)
	}
	ts := serveOn(t, s)
	t.Cleanup(b.unblock)
	return ts, b
}

// TestRegistryShutdownOrder: a server registers its address when it starts
// serving; Shutdown takes the address out first and goes on serving new
// calls for the deregister wait, and stops accepting only after it.
func TestRegistryShutdownOrder(t *testing.T) {
	etcd := etcdtest.Start(t)
	w := watchService(t, registry.NewResolver(etcd.Client()), "test.Service")
	ts, _ := startRegistered(t, etcd, WithDeregisterWait(waitLong))
	w.waitFor(t, ts.addr)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.Shutdown(ctx) }()
	w.waitFor(t)
	// The key is gone and the server still takes new connections and
	// calls: a client that has not seen the change yet loses nothing.
	cctx, ccancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer ccancel()
	if got, err := hello(cctx, ts.addr, "late"); err != nil || got != "Hello late" {
		t.Fatalf("a call after the key went: %q, %v; want it served", got, err)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("Shutdown returned %v within the deregister wait", err)
	default:
	}
	// The end of Shutdown's context ends the wait too.
	cancel()
	select {
	case <-shutdown:
	case <-time.After(waitLong):
		t.Fatal("Shutdown did not return once its context ended")
	}
	ts.waitServed(t)
	if nc, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
		nc.Close()
		t.Fatal("the listener still accepts after Shutdown")
	}
}

// TestRegistryShutdownDrains: after the deregister wait, Shutdown drains as
// without a registry: the listener closes and a call in flight finishes.
func TestRegistryShutdownDrains(t *testing.T) {
	etcd := etcdtest.Start(t)
	w := watchService(t, registry.NewResolver(etcd.Client()), "test.Service")
	ts, b := startRegistered(t, etcd, WithDeregisterWait(50*time.Millisecond))
	w.waitFor(t, ts.addr)

	nc := dial(t, ts.addr)
	nc.SetDeadline(time.Now().Add(waitLong))
	if _, err := nc.Write(requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.started:
	case <-time.After(waitLong):
		t.Fatal("the handler did not start")
	}
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.Shutdown(context.Background()) }()
	w.waitFor(t)
	if !waitFor(waitLong, func() bool {
		nc, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	}) {
		t.Fatal("the listener did not close after the deregister wait")
	}
	b.unblock()
	f, rm := readResponse(t, nc, waitLong)
	wantReply(t, f, rm, &echo.EchoReply{})
	if err := <-shutdown; err != nil {
		t.Fatalf("Shutdown = %v", err)
	}
	ts.waitServed(t)
}

// TestRegistryShutdownEtcdGone: with etcd gone, Shutdown does not hang on
// the etcd client: each key's removal gives up after deregisterTimeout,
// and Shutdown drains as without a registry. The listener closes within
// the removal's bound and the deregister wait (none here: no key went),
// a call in flight completes, and Shutdown returns.
func TestRegistryShutdownEtcdGone(t *testing.T) {
	etcd := etcdtest.Start(t)
	const wait = 100 * time.Millisecond
	ts, b := startRegistered(t, etcd, WithDeregisterWait(wait))
	if !waitFor(waitLong, func() bool { return ts.numRegs() == 1 }) {
		t.Fatal("the server did not register")
	}
	nc := dial(t, ts.addr)
	nc.SetDeadline(time.Now().Add(waitLong))
	if _, err := nc.Write(requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{})); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.started:
	case <-time.After(waitLong):
		t.Fatal("the handler did not start")
	}
	etcd.Stop(0)

	start := time.Now()
	shutdown := make(chan error, 1)
	go func() { shutdown <- ts.Shutdown(context.Background()) }()
	// Shutdown's context never ends: a removal bound by it alone would
	// wait for etcd for ever. The margin is for a busy machine.
	bound := deregisterTimeout + wait + 10*time.Second
	if !waitFor(bound, func() bool {
		nc, err := net.DialTimeout("tcp", ts.addr, time.Second)
		if err == nil {
			nc.Close()
		}
		return err != nil
	}) {
		t.Fatalf("the listener still accepts %v into Shutdown, with etcd gone", bound)
	}
	closed := time.Since(start)
	b.unblock()
	f, rm := readResponse(t, nc, waitLong)
	wantReply(t, f, rm, &echo.EchoReply{})
	select {
	case err := <-shutdown:
		if err != nil {
			t.Fatalf("Shutdown = %v", err)
		}
	case <-time.After(bound):
		t.Fatalf("Shutdown did not return %v after the call in flight completed", bound)
	}
	t.Logf("with etcd gone, the listener closed %v into Shutdown, which returned after %v",
		closed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	ts.waitServed(t)
}

// stacks returns the stacks of every goroutine.
func stacks() string {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return string(buf[:n])
		}
		buf = make([]byte, 2*len(buf))
	}
}

// goroutineWith returns the stack of a goroutine that runs fn, or "".
func goroutineWith(fn string) string {
	for g := range strings.SplitSeq(stacks(), "\n\n") {
		if strings.Contains(g, fn) {
			return g
		}
	}
	return ""
}

// TestRegistryShutdownWhileRegisteringEtcdGone: a Shutdown that starts
// while Serve is registering, etcd away, waits for the registration
// without a goroutine of its own, so that none can outlive it: a
// goroutine leak check right after Shutdown finds nothing of the
// server's to wait for.
func TestRegistryShutdownWhileRegisteringEtcdGone(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client()
	etcd.Stop(0)
	s := New(WithLogger(quietLogger()), WithRegistry(cli, "test.Service", 0))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(lis) }()
	if !waitFor(waitLong, func() bool { return goroutineWith("myrpc/v5-cluster/registry.Register(") != "" }) {
		t.Fatal("Serve did not start registering")
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- s.Shutdown(ctx) }()
	// The registration waits for etcd, for registerTimeout at most, and
	// Shutdown for it.
	if !waitFor(waitLong, func() bool { return strings.Contains(goroutineWith("server.(*Server).unlist("), "[select") }) {
		t.Fatal("Shutdown does not wait for the registration under way")
	}
	if g := goroutineWith("created by myrpc/v5-cluster/server.(*Server).unlist"); g != "" {
		t.Fatalf("Shutdown waits for the registration in a goroutine of its own, which can outlive it:\n%s", g)
	}
	cancel()
	select {
	case <-shutdown:
	case <-time.After(waitLong):
		t.Fatal("Shutdown did not return once its context ended")
	}
	if g := goroutineWith("server.(*Server).unlist"); g != "" {
		t.Fatalf("a goroutine of Shutdown's outlives it:\n%s", g)
	}
	select {
	case err := <-served:
		if !errors.Is(err, ErrServerClosed) {
			t.Fatalf("Serve = %v, want ErrServerClosed", err)
		}
	case <-time.After(waitLong):
		t.Fatal("Serve did not return after Shutdown")
	}
}

// TestRegistryLeaseEnds: the key of a server that stops without Shutdown
// (Close, as a killed process) stays until its lease ends, and goes then.
func TestRegistryLeaseEnds(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client()
	w := watchService(t, registry.NewResolver(cli), "test.Service")
	const ttl = 2 * time.Second
	ts, _ := startRegistered(t, etcd, WithRegistry(etcd.Client(), "test.Service", ttl))
	w.waitFor(t, ts.addr)
	// The watch can see the key before Register returns; a Close before
	// then would find the registration under way, and remove its key when
	// it ends.
	if !waitFor(waitLong, func() bool { return ts.numRegs() == 1 }) {
		t.Fatal("the server does not know it is registered")
	}
	if err := ts.Close(); err != nil {
		t.Fatal(err)
	}
	closed := time.Now()
	ts.waitServed(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	got, err := cli.Get(ctx, registry.Key("test.Service", ts.addr))
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Kvs) != 1 {
		t.Fatal("the key went with Close; it should stay until its lease ends")
	}
	w.waitFor(t)
	t.Logf("the key went %v after Close (ttl %v)", time.Since(closed).Round(time.Millisecond), ttl)
}

// TestRegistryAddressNobodyCanDial: a server listening on 0.0.0.0 with no
// advertised address refuses to register it, and Serve says so.
func TestRegistryAddressNobodyCanDial(t *testing.T) {
	etcd := etcdtest.Start(t)
	s := New(WithLogger(quietLogger()), WithRegistry(etcd.Client(), "test.Service", 0))
	lis, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	err = s.Serve(lis)
	if err == nil || errors.Is(err, ErrServerClosed) || !strings.Contains(err.Error(), "WithAdvertiseAddr") {
		t.Fatalf("Serve = %v, want an error that names WithAdvertiseAddr", err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestAdvertised: the address registered for a listener.
func TestAdvertised(t *testing.T) {
	tests := []struct {
		lis, adv, want string
		fails          bool
	}{
		{lis: "127.0.0.1:8001", want: "127.0.0.1:8001"},
		{lis: "[::1]:8001", want: "[::1]:8001"},
		{lis: "0.0.0.0:8001", fails: true},
		{lis: "[::]:8001", fails: true},
		{lis: "0.0.0.0:8001", adv: "10.0.0.7", want: "10.0.0.7:8001"},
		{lis: "0.0.0.0:8001", adv: "fd00::7", want: "[fd00::7]:8001"},
		{lis: "0.0.0.0:8001", adv: "[fd00::7]", want: "[fd00::7]:8001"},
		{lis: "0.0.0.0:8001", adv: "rpc.example.com", want: "rpc.example.com:8001"},
		{lis: "0.0.0.0:8001", adv: "203.0.113.9:443", want: "203.0.113.9:443"},
	}
	for _, tt := range tests {
		addr, err := net.ResolveTCPAddr("tcp", tt.lis)
		if err != nil {
			t.Fatal(err)
		}
		got, err := advertised(addr, tt.adv)
		if tt.fails != (err != nil) || got != tt.want {
			t.Errorf("advertised(%s, %q) = %q, %v; want %q, fails %v", tt.lis, tt.adv, got, err, tt.want, tt.fails)
		}
	}
}

// TestRegistryShutdownWhileRegistering: a Shutdown that starts as Serve is
// registering leaves no key behind, and Serve returns ErrServerClosed, not
// the registration's error.
func TestRegistryShutdownWhileRegistering(t *testing.T) {
	etcd := etcdtest.Start(t)
	cli := etcd.Client()
	for i := range 20 {
		s := New(WithLogger(quietLogger()), WithRegistry(cli, "test.Service", 0), WithDeregisterWait(0))
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		served := make(chan error, 1)
		go func() { served <- s.Serve(lis) }()
		// Later and later into the registration.
		time.Sleep(time.Duration(i) * 500 * time.Microsecond)
		if err := s.Shutdown(ctxTimeout(t, waitLong)); err != nil {
			t.Fatalf("round %d: Shutdown = %v", i, err)
		}
		select {
		case err := <-served:
			if !errors.Is(err, ErrServerClosed) {
				t.Fatalf("round %d: Serve = %v, want ErrServerClosed", i, err)
			}
		case <-time.After(waitLong):
			t.Fatalf("round %d: Serve did not return", i)
		}
		got, err := cli.Get(ctxTimeout(t, waitLong), registry.Key("test.Service", lis.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Kvs) != 0 {
			t.Fatalf("round %d: the key is still in etcd after Shutdown", i)
		}
	}
}

// TestRegistryClientStopsPicking: a client that finds the servers through
// etcd stops picking a server once Shutdown has taken its key out, while
// that server still serves, and no call fails as it goes.
func TestRegistryClientStopsPicking(t *testing.T) {
	etcd := etcdtest.Start(t)
	a, _ := startRegistered(t, etcd, WithDeregisterWait(waitLong))
	b, _ := startRegistered(t, etcd)
	c := client.New("etcd:///test.Service", client.WithResolver(registry.NewResolver(etcd.Client())),
		client.WithLogger(quietLogger()))
	defer c.Close()
	greeter := helloworld.NewGreeterClient(c)
	hello := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_, err := greeter.Hello(ctx, &helloworld.HelloRequest{Msg: "lb"})
		return err
	}
	endpoints := func() []string {
		var addrs []string
		for _, e := range c.Endpoints() {
			if !e.Removed {
				addrs = append(addrs, e.Addr)
			}
		}
		slices.Sort(addrs)
		return addrs
	}
	both := []string{a.addr, b.addr}
	slices.Sort(both)
	if !waitFor(waitLong, func() bool { return slices.Equal(endpoints(), both) }) {
		t.Fatalf("the client's servers are %q, want %q", endpoints(), both)
	}

	// Callers run through the whole Shutdown.
	stop := make(chan struct{})
	errs := make(chan error, 4)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := hello(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	// Both serve before the Shutdown.
	if !waitFor(waitLong, func() bool { return a.Stats()["calls"] > 10 && b.Stats()["calls"] > 10 }) {
		t.Fatalf("calls a %v, b %v: the client does not spread its calls", a.Stats()["calls"], b.Stats()["calls"])
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	shutdown := make(chan error, 1)
	go func() { shutdown <- a.Shutdown(ctx) }()
	if !waitFor(waitLong, func() bool { return slices.Equal(endpoints(), []string{b.addr}) }) {
		t.Fatalf("the client's servers are %q after a's key went, want only b's", endpoints())
	}
	// Calls picked before the client saw the change may still be on a.
	if !waitFor(waitLong, func() bool { return len(c.Endpoints()) == 1 }) {
		t.Fatalf("a's calls never ended: %+v", c.Endpoints())
	}
	before, bBefore := a.Stats()["calls"], b.Stats()["calls"]
	if !waitFor(waitLong, func() bool { return b.Stats()["calls"] > bBefore+100 }) {
		t.Fatal("the callers stopped")
	}
	if after := a.Stats()["calls"]; after != before {
		t.Fatalf("a was picked %v times after the client saw it gone", after-before)
	}
	select {
	case err := <-shutdown:
		t.Fatalf("a's Shutdown returned %v within its deregister wait", err)
	default:
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("a call failed: %v", err)
	}
	cancel()
	<-shutdown
	a.waitServed(t)
}
