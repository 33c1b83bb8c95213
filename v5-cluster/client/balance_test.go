package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/balancer"
	"myrpc/v5-cluster/mux"
	"myrpc/v5-cluster/resolver"
)

// testResolver gives the addresses a test sets, as a registry would.
type testResolver struct {
	mu     sync.Mutex
	addrs  []string
	update func([]string)
}

func newTestResolver(addrs ...string) *testResolver { return &testResolver{addrs: addrs} }

func (r *testResolver) Resolve(_ string, update func([]string)) (io.Closer, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.update = update
	update(slices.Clone(r.addrs))
	return r, nil
}

// set replaces the addresses.
func (r *testResolver) set(addrs ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.addrs = addrs
	if r.update != nil {
		r.update(slices.Clone(addrs))
	}
}

// Close stops the updates.
func (r *testResolver) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.update = nil
	return nil
}

// startServers starts n servers.
func startServers(t *testing.T, n int) ([]*testServer, []string) {
	t.Helper()
	var srvs []*testServer
	var addrs []string
	for range n {
		s := startServer(t)
		srvs = append(srvs, s)
		addrs = append(addrs, s.addr)
	}
	return srvs, addrs
}

// counts returns how many Count calls each server ran.
func counts(srvs []*testServer) []int64 {
	var n []int64
	for _, s := range srvs {
		n = append(n, s.gate.counted.Load())
	}
	return n
}

// deadAddr returns an address on which nothing listens: dials to it are
// refused.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// endpoint returns the client's counters of the server at addr.
func endpoint(t *testing.T, c *Client, addr string) balancer.Stats {
	t.Helper()
	for _, s := range c.Endpoints() {
		if s.Addr == addr {
			return s
		}
	}
	t.Fatalf("no endpoint %s in %+v", addr, c.Endpoints())
	return balancer.Stats{}
}

// TestBalanceSpreads: round-robin gives each server its turn; power of two
// choices, with the calls one after another, spreads them too.
func TestBalanceSpreads(t *testing.T) {
	srvs, addrs := startServers(t, 3)
	rr := newTestClient(t, "test:///svc", WithResolver(resolver.Static(addrs...)), WithBalancer(balancer.RoundRobin))
	for range 30 {
		if _, err := callGate(context.Background(), rr, "Count"); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(srvs); !slices.Equal(got, []int64{10, 10, 10}) {
		t.Fatalf("round-robin: 30 calls went %v, want 10 each", got)
	}
	p2c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(addrs...)))
	for range 300 {
		if _, err := callGate(context.Background(), p2c, "Count"); err != nil {
			t.Fatal(err)
		}
	}
	for i, n := range counts(srvs) {
		if n-10 < 50 {
			t.Fatalf("p2c: 300 calls went %v (10 each before): server %d got fewer than 50", counts(srvs), i)
		}
	}
	if s := p2c.MuxStats(); s.Conns != 3 {
		t.Fatalf("p2c: %d connections, want one per server", s.Conns)
	}
}

// TestP2CAvoidsTheSlowServer: with one server whose calls hang, power of
// two choices sends the calls to the other, which has none in flight;
// round-robin sends every other call to the slow one.
func TestP2CAvoidsTheSlowServer(t *testing.T) {
	for _, tt := range []struct {
		policy string
		// most is the most calls of 20 that may go to the slow server.
		least, most int
	}{
		{balancer.P2C, 0, 1},
		{balancer.RoundRobin, 10, 10},
	} {
		t.Run(tt.policy, func(t *testing.T) {
			srvs, addrs := startServers(t, 2)
			slow, fast := srvs[0], srvs[1]
			fast.gate.open()
			c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(addrs...)), WithBalancer(tt.policy))
			var futures []rpc.Future
			onSlow := 0
			for range 20 {
				f := c.InvokeAsync(context.Background(), "/"+gateService+"/Wait", &echo.EchoRequest{}, new(echo.EchoReply))
				futures = append(futures, f)
				select {
				case <-slow.gate.started:
					onSlow++
				case <-f.Done(): // answered by the fast server
				case <-time.After(5 * time.Second):
					t.Fatal("a call neither reached the slow server nor ended")
				}
			}
			slow.gate.open()
			for _, f := range futures {
				if err := f.Get(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
			if onSlow < tt.least || onSlow > tt.most {
				t.Fatalf("%d of 20 calls went to the slow server, want %d to %d", onSlow, tt.least, tt.most)
			}
		})
	}
}

// TestUpdateRemovesServer: a server an update removes takes no new call;
// its call in flight finishes; then its connection closes.
func TestUpdateRemovesServer(t *testing.T) {
	srvs, addrs := startServers(t, 2)
	r := newTestResolver(addrs[0])
	c := newTestClient(t, "test:///svc", WithResolver(r))
	f := c.InvokeAsync(context.Background(), "/"+gateService+"/Wait", &echo.EchoRequest{}, new(echo.EchoReply))
	srvs[0].gate.waitStarted(t)
	r.set(addrs[1])
	for range 20 {
		if _, err := callGate(context.Background(), c, "Count"); err != nil {
			t.Fatal(err)
		}
	}
	if got := counts(srvs); !slices.Equal(got, []int64{0, 20}) {
		t.Fatalf("after the update 20 calls went %v, want all to the new server", got)
	}
	if s := endpoint(t, c, addrs[0]); !s.Removed || s.InFlight != 1 || s.Mux.Conns != 1 {
		t.Fatalf("the removed server: %+v, want removed, with its call in flight on its connection", s)
	}
	srvs[0].gate.open()
	if err := f.Get(context.Background()); err != nil {
		t.Fatalf("the call in flight on the removed server: %v", err)
	}
	waitFor(t, "the removed server's connection to close", func() bool {
		return len(c.Endpoints()) == 1 && c.MuxStats().Conns == 1
	})
	// Back again, it is a new endpoint, and takes calls.
	r.set(addrs...)
	waitFor(t, "calls to reach the server added back", func() bool {
		callGate(context.Background(), c, "Count")
		return srvs[0].gate.counted.Load() > 0
	})
}

// TestServerStopped: a server that shuts down while calls run: its calls
// in flight finish, and those it did not read and those that find it gone
// move to the other servers: no call fails that was never sent. A call
// sent to it may still fail: the server answers the requests that reach
// it while it drains with code 14, which V3's rules retry only under a
// retry policy, and it closes an idle connection as a request may be on
// its way. The registry's servers leave it before they drain, which
// spares the calls both.
func TestServerStopped(t *testing.T) {
	srvs, addrs := startServers(t, 3)
	c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(addrs...)))
	var sentAndFailed atomic.Int64
	stop := make(chan struct{})
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
				_, err := callGate(context.Background(), c, "Count")
				switch {
				case err == nil:
				case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, mux.ErrNotRead), errors.Is(err, mux.ErrNotSent):
					t.Errorf("a call that was never sent failed: %v", err)
				default:
					sentAndFailed.Add(1)
					t.Logf("a call sent to the stopping server: %v", err)
				}
			}
		}()
	}
	waitFor(t, "calls on every server", func() bool { return !slices.ContainsFunc(counts(srvs), func(n int64) bool { return n < 20 }) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srvs[1].srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	before := counts(srvs)
	waitFor(t, "more calls on the others", func() bool {
		n := counts(srvs)
		return n[0] > before[0]+100 && n[2] > before[2]+100
	})
	close(stop)
	wg.Wait()
	t.Logf("calls per server %v; %d sent to the stopping server failed", counts(srvs), sentAndFailed.Load())
	if s := endpoint(t, c, addrs[1]); s.Ejections == 0 {
		t.Fatalf("the stopped server: %+v, want ejected", s)
	}
}

// TestDeadAddressEjected: a call whose server refuses the dial goes to
// another server at once; the dead address is ejected, takes no call
// during its back-off, and is tried again when it ends.
func TestDeadAddressEjected(t *testing.T) {
	const base = time.Second
	srvs, addrs := startServers(t, 1)
	dead := deadAddr(t)
	c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(dead, addrs[0])),
		WithBalancer(balancer.RoundRobin), WithEjection(base, 10*base))
	start := time.Now()
	for range 10 {
		if _, err := callGate(context.Background(), c, "Count"); err != nil {
			t.Fatalf("a call: %v", err)
		}
	}
	if time.Since(start) < base*4/5 { // else the back-off may have ended
		if s := endpoint(t, c, dead); s.Picked != 1 || s.Ejections != 1 {
			t.Fatalf("the dead address during its back-off: %+v, want picked once and ejected", s)
		}
	}
	waitFor(t, "the back-off to end", func() bool { return endpoint(t, c, dead).EjectedFor == 0 })
	for range 2 {
		if _, err := callGate(context.Background(), c, "Count"); err != nil {
			t.Fatalf("a call: %v", err)
		}
	}
	if s := endpoint(t, c, dead); s.Picked != 2 || s.Ejections != 2 {
		t.Fatalf("the dead address after its back-off: %+v, want tried and ejected again", s)
	}
	if n := srvs[0].gate.counted.Load(); n != 12 {
		t.Fatalf("the live server ran %d calls, want all 12", n)
	}
}

// TestOneDeadAddress: with one address, ejected, calls still dial it, as
// V4's did, and fail with its error.
func TestOneDeadAddress(t *testing.T) {
	c := newTestClient(t, deadAddr(t), WithEjection(time.Hour, time.Hour))
	for range 2 {
		_, err := hello(context.Background(), c, "x")
		wantCode(t, err, codes.Unavailable)
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("%v, want the refused dial", err)
		}
	}
	if s := c.Endpoints(); len(s) != 1 || s[0].Picked != 2 {
		t.Fatalf("%+v, want the one address picked twice", s)
	}
}

// TestTargets: a scheme:///name target needs a resolver that finds
// addresses, and a known policy; else every call fails with
// InvalidArgument. A resolver's empty set fails calls with Unavailable.
func TestTargets(t *testing.T) {
	for _, tt := range []struct {
		name   string
		target string
		opts   []Option
	}{
		{"no resolver", "etcd:///svc", nil},
		{"no address", "etcd:///svc", []Option{WithResolver(resolver.Static())}},
		{"unknown policy", "127.0.0.1:1", []Option{WithBalancer("random")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestClient(t, tt.target, tt.opts...)
			_, err := hello(context.Background(), c, "x")
			wantCode(t, err, codes.InvalidArgument)
		})
	}
	r := newTestResolver("127.0.0.1:1")
	c := newTestClient(t, "test:///svc", WithResolver(r))
	r.set()
	_, err := hello(context.Background(), c, "x")
	wantCode(t, err, codes.Unavailable)
	if !errors.Is(err, balancer.ErrNoEndpoints) {
		t.Fatalf("%v, want ErrNoEndpoints", err)
	}
}

// TestResendAvoidsTheServer: a request that a server closed its
// connection on without reading it goes again to another server, not to
// a new connection to the same one.
func TestResendAvoidsTheServer(t *testing.T) {
	_, live := startServers(t, 1)
	for round := range 8 {
		// A server that holds the requests until one says "mark", then
		// answers that one with the mark and closes, once the test says
		// so; on a new connection it answers every request.
		release := make(chan struct{})
		var once sync.Once
		open := func() { once.Do(func() { close(release) }) }
		fake := newFakeServer(t, func(w io.Writer, r received) bool {
			var req helloworld.HelloRequest
			if err := proto.Unmarshal(r.body, &req); err != nil {
				return false
			}
			switch {
			case r.conn > 0:
				w.Write(okFrame(r.seq, "answered by the server that did not read it"))
				return true
			case req.Msg != "mark":
				return true
			}
			<-release
			w.Write(respFrame(r.seq, &meta.ResponseMeta{
				Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose},
			}, &helloworld.HelloReply{Msg: "marked"}))
			return false
		})
		t.Cleanup(open) // before the fake server's close, which waits for it
		r := newTestResolver(fake.addr)
		c := newTestClient(t, "test:///svc", WithResolver(r), WithMux(mux.Config{MaxConns: 1}))
		victim := make(chan *helloworld.HelloReply, 1)
		go func() {
			rep, err := hello(context.Background(), c, "victim")
			if err != nil {
				t.Errorf("round %d: the call the server did not read: %v", round, err)
			}
			victim <- rep
		}()
		fake.request(t)
		marked := make(chan error, 1)
		go func() {
			_, err := hello(context.Background(), c, "mark")
			marked <- err
		}()
		fake.request(t)
		r.set(fake.addr, live[0])
		open()
		if err := <-marked; err != nil {
			t.Fatal(err)
		}
		if rep := <-victim; rep == nil || rep.Msg != "Hello victim" {
			t.Fatalf("round %d: the call the server did not read got %v, want the other server's answer", round, rep)
		}
	}
}

// TestDrainingRefusalGoesElsewhere: a server that drains answers the
// requests it will not run with code 14, the connection: close mark and the
// not-run mark. Such a request goes to another server at once, whatever
// the retry policy, as one the server never read does; with no other
// server, the caller gets the refusal, and the draining server is not
// asked again. A code 14 without the not-run mark (a handler's own, here
// from a V1 server, which marks every response connection: close) is the
// retry policy's to judge, and with none the call ends with it.
func TestDrainingRefusalGoesElsewhere(t *testing.T) {
	refusal := func(notRun bool) func(w io.Writer, r received) bool {
		md := map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}
		if notRun {
			md[rpc.NotRunKey] = rpc.NotRunValue
		}
		return func(w io.Writer, r received) bool {
			w.Write(respFrame(r.seq, &meta.ResponseMeta{
				Code:     uint32(codes.Unavailable),
				Message:  "rpc: server is shutting down; the request was not run",
				Metadata: md,
			}, nil))
			return false // and close, as the draining server does
		}
	}
	t.Run("another server", func(t *testing.T) {
		draining := newFakeServer(t, refusal(true))
		srvs, live := startServers(t, 1)
		c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(draining.addr, live[0])), WithBalancer(balancer.RoundRobin))
		for i := range 10 {
			var md rpc.Metadata
			if _, err := callGate(context.Background(), c, "Count", rpc.Trailer(&md)); err != nil {
				t.Fatalf("call %d: %v", i, err)
			}
			if len(md) != 0 {
				t.Fatalf("call %d: trailer %v, want none: the marks are the client's", i, md)
			}
		}
		if n := draining.accepted.Load(); n == 0 {
			t.Fatal("no call went to the draining server: the test tested nothing")
		}
		if got := counts(srvs)[0]; got != 10 {
			t.Fatalf("the live server ran %d calls, want all 10", got)
		}
	})
	t.Run("no other server", func(t *testing.T) {
		draining := newFakeServer(t, refusal(true))
		c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(draining.addr)))
		_, err := callGate(context.Background(), c, "Count")
		if s := wantCode(t, err, codes.Unavailable); !strings.Contains(s.Message(), "shutting down") {
			t.Fatalf("the call failed with %v, want the draining server's refusal", err)
		}
		draining.request(t)
		draining.noMoreRequests(t)
	})
	t.Run("code 14 without the not-run mark", func(t *testing.T) {
		first := newFakeServer(t, refusal(false))
		second := newFakeServer(t, refusal(false))
		c := newTestClient(t, "test:///svc", WithResolver(resolver.Static(first.addr, second.addr)))
		_, err := callGate(context.Background(), c, "Count")
		wantCode(t, err, codes.Unavailable)
		if n := first.accepted.Load() + second.accepted.Load(); n != 1 {
			t.Fatalf("the request went to the servers %d times, want once", n)
		}
	})
}

// flakyResolver fails its first fails Resolves, as a resolver whose
// registry is out of reach does, and then gives addrs.
type flakyResolver struct {
	fails int32
	err   error
	addrs []string
	calls atomic.Int32
}

func (r *flakyResolver) Resolve(_ string, update func([]string)) (io.Closer, error) {
	if r.calls.Add(1) <= r.fails {
		return nil, r.err
	}
	update(slices.Clone(r.addrs))
	return io.NopCloser(nil), nil
}

// TestUnresolvedTargetRetried: a target whose resolver fails at New (etcd
// out of reach) is tried again in the background; calls fail with code 14
// until it resolves, and then go to its servers.
func TestUnresolvedTargetRetried(t *testing.T) {
	srvs, live := startServers(t, 1)
	r := &flakyResolver{fails: 1, err: errors.New("registry out of reach"), addrs: live}
	c := newTestClient(t, "test:///svc", WithResolver(r))
	_, err := callGate(context.Background(), c, "Count")
	if s := wantCode(t, err, codes.Unavailable); !strings.Contains(s.Message(), "not resolved yet") || !strings.Contains(s.Message(), "registry out of reach") {
		t.Fatalf("a call before the target resolved: %v", err)
	}
	waitFor(t, "a call to succeed once the target resolves", func() bool {
		_, err := callGate(context.Background(), c, "Count")
		return err == nil
	})
	if n := r.calls.Load(); n != 2 {
		t.Fatalf("Resolve called %d times, want twice: the failure and the success", n)
	}
	if n := counts(srvs)[0]; n != 1 {
		t.Fatalf("the server ran %d calls, want the one that succeeded", n)
	}
}

// TestUnresolvedTargetStopsAtClose: Close stops the tries of a target that
// never resolves, and leaves no goroutine behind.
func TestUnresolvedTargetStopsAtClose(t *testing.T) {
	r := &flakyResolver{fails: math.MaxInt32, err: errors.New("registry out of reach")}
	c := New("test:///svc", WithResolver(r), WithLogger(quietLogger()))
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("Close took %v", d)
	}
	waitNoClientGoroutines(t)
	if n := r.calls.Load(); n != 1 {
		t.Fatalf("Resolve called %d times, want once", n)
	}
}

// TestBadNameNotRetried: a name the resolver rejects fails every call with
// InvalidArgument, and is not tried again.
func TestBadNameNotRetried(t *testing.T) {
	r := &flakyResolver{fails: math.MaxInt32, err: fmt.Errorf("%w: service %q", resolver.ErrBadName, "a/b")}
	c := newTestClient(t, "test:///a/b", WithResolver(r))
	_, err := callGate(context.Background(), c, "Count")
	wantCode(t, err, codes.InvalidArgument)
	if c.stopResolving != nil {
		t.Fatal("a rejected name is being tried again")
	}
}
