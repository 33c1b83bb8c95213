package impls

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/benchmarks/internal/faultsvc"
	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/status"
)

func TestMain(m *testing.M) {
	// ants (in the V2 server) starts a default pool when it is imported:
	// its goroutines are there before any test runs. So do tnet's pollers
	// and its pool of handler goroutines (trpc).
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent(),
		// kitex's client runs every call that has a deadline on a worker
		// of one pool shared by all clients; a worker leaves after a
		// minute without a call, and the pool's ticker with the last one.
		goleak.IgnoreTopFunction("github.com/cloudwego/kitex/client.(*timeoutPool).createWorker.func1"),
		goleak.IgnoreTopFunction("github.com/cloudwego/kitex/client.(*timeoutPool).createTicker.func1"),
		// kitex's client caches a load-balancer factory for each set of
		// addresses it is given, for good, and the factory's watcher,
		// which drops the balancers unused for a while, never stops.
		goleak.IgnoreTopFunction("github.com/cloudwego/kitex/pkg/loadbalance/lbcache.(*BalancerFactory).watcher"),
		// The ticker that those balancers share, to refresh their
		// addresses, stops once the watcher has dropped the last of them.
		goleak.IgnoreTopFunction("github.com/cloudwego/kitex/pkg/utils.(*SharedTicker).Tick"),
		// netpoll, kitex's transport, starts its epoll loops on first
		// use and keeps them for the life of the process; each waits in
		// epoll_wait, a system call, under this function.
		goleak.IgnoreAnyFunction("github.com/cloudwego/netpoll.(*defaultPoll).Wait"),
		// trpc: the idle workers of tnet's handler pool (an ants
		// PoolWithFunc, which nothing else here uses), which tnet keeps
		// for a second or two after the last request.
		goleak.IgnoreTopFunction("github.com/panjf2000/ants/v2.(*goWorkerWithFunc).run.func1"),
		// trpc: each trpc-go connection pool checks its idle connections
		// every 3 s from a goroutine trpc-go gives no way to stop; it
		// ends once the pool has not been used for 100 s.
		goleak.IgnoreAnyFunction("trpc.group/trpc-go/trpc-go/pool/connpool.(*ConnectionPool).checkRoutine"),
	)
}

var quiet = Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}

// startServer starts impl's server on a loopback port. It returns the
// server, its address, and the channel that gets Serve's result.
func startServer(t *testing.T, im Impl) (Server, string, <-chan error) {
	t.Helper()
	srv, err := im.NewServer(quiet)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(lis) }()
	return srv, lis.Addr().String(), errc
}

// serve starts impl's server on a loopback port and returns its address.
func serve(t *testing.T, im Impl) (addr string, stop func() error) {
	t.Helper()
	srv, addr, errc := startServer(t, im)
	return addr, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Stop(ctx); err != nil {
			return err
		}
		return <-errc
	}
}

func TestNames(t *testing.T) {
	want := []string{"v1", "v2", "v3", "v4", "v5", "kitex", "kitex-mux", "trpc", "grpc", "netrpc", "raw-conn", "raw-pool", "raw-pipe"}
	got := Names()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range got {
		im, _ := Lookup(n)
		if im.Summary == "" || im.Kind == "" || im.NewServer == nil || im.NewClient == nil {
			t.Errorf("%s is not fully described: %+v", n, im)
		}
	}
	if _, ok := Lookup("nope"); ok {
		t.Error("Lookup found an implementation that does not exist")
	}
	if Rank("v1") >= Rank("grpc") || Rank("raw-pipe") >= Rank("unknown") {
		t.Error("Rank does not follow the table order")
	}
}

// TestEcho runs every implementation end to end: concurrent callers, each
// call checked, payloads from empty to larger than the raw buffers.
func TestEcho(t *testing.T) {
	const callers, calls = 8, 40
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			im, _ := Lookup(name)
			addr, stop := serve(t, im)
			cl, err := im.NewClient(addr, quiet)
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			errs := make(chan error, callers)
			for c := range callers {
				h, err := cl.NewCaller()
				if err != nil {
					t.Fatal(err)
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer h.Close()
					for i := range calls {
						size := []int{0, 64, 1024, 100 << 10}[(c+i)%4]
						payload := bytes.Repeat([]byte{byte(c), byte(i)}, size/2)
						ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
						err := h.Call(ctx, payload)
						cancel()
						if err != nil {
							errs <- fmt.Errorf("caller %d call %d (%d bytes): %w", c, i, size, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if err := cl.Close(); err != nil {
				t.Errorf("client close: %v", err)
			}
			if err := stop(); err != nil {
				t.Errorf("server stop: %v", err)
			}
		})
	}
}

// TestFaults checks, for every stage, that Options.Faults adds the faultsvc
// service to the server (its Panic answers Internal and the server answers
// the next call), that a server without it does not know the method, and
// that the stage's client offers its Invoker.
func TestFaults(t *testing.T) {
	for _, name := range []string{"v1", "v2", "v3", "v4", "v5"} {
		t.Run(name, func(t *testing.T) {
			im, _ := Lookup(name)
			for _, faults := range []bool{true, false} {
				o := quiet
				o.Faults = faults
				srv, err := im.NewServer(o)
				if err != nil {
					t.Fatal(err)
				}
				lis, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				errc := make(chan error, 1)
				go func() { errc <- srv.Serve(lis) }()
				cl, err := im.NewClient(lis.Addr().String(), quiet)
				if err != nil {
					t.Fatal(err)
				}
				ic, ok := cl.(InvokerClient)
				if !ok {
					t.Fatalf("the %s client is not an InvokerClient", name)
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				want := codes.Internal
				if !faults {
					want = codes.Unimplemented
				}
				for range 2 {
					if got := status.Code(faultsvc.Panic(ctx, ic.Invoker(), []byte("x"))); got != want {
						t.Errorf("faults=%v: Panic: code %v, want %v", faults, got, want)
					}
					h, _ := cl.NewCaller()
					if err := h.Call(ctx, []byte("after")); err != nil {
						t.Errorf("faults=%v: a call after Panic: %v", faults, err)
					}
					h.Close()
				}
				cancel()
				if err := cl.Close(); err != nil {
					t.Errorf("client close: %v", err)
				}
				sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
				if err := srv.Stop(sctx); err != nil {
					t.Errorf("server stop: %v", err)
				}
				scancel()
				if err := <-errc; err != nil {
					t.Errorf("serve: %v", err)
				}
			}
		})
	}
}

// silentServer accepts connections and reads everything, answering
// nothing. It returns its address and a function that closes it.
func silentServer(t *testing.T) (string, func()) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				io.Copy(io.Discard, c)
			}()
		}
	}()
	return lis.Addr().String(), func() {
		lis.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}
}

// TestDeadline checks that every call ends by its deadline against a
// server that never answers, and that raw-pipe forgets the call.
func TestDeadline(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			addr, stop := silentServer(t)
			defer stop()
			im, _ := Lookup(name)
			cl, err := im.NewClient(addr, quiet)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			h, err := cl.NewCaller()
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			const d = 200 * time.Millisecond
			ctx, cancel := context.WithTimeout(context.Background(), d)
			defer cancel()
			start := time.Now()
			err = h.Call(ctx, []byte("hello"))
			took := time.Since(start)
			if err == nil {
				t.Fatal("a call to a silent server succeeded")
			}
			if took > d+time.Second {
				t.Fatalf("the call took %v with a %v deadline", took, d)
			}
			if pc, ok := cl.(*rawPipeClient); ok {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("raw-pipe error %v, want DeadlineExceeded", err)
				}
				pc.mu.Lock()
				n := len(pc.pending)
				pc.mu.Unlock()
				if n != 0 {
					t.Errorf("raw-pipe keeps %d pending calls after the deadline", n)
				}
			}
		})
	}
}

// TestRawPipeLateReply checks that a reply arriving after its caller gave
// up is dropped, and the next call gets its own reply.
func TestRawPipeLateReply(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	release := make(chan struct{})
	done := make(chan struct{})
	go func() {
		// Echo frames, but hold the first one until released.
		defer close(done)
		c, err := lis.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		first := true
		var h [rawHeaderLen]byte
		for {
			if _, err := io.ReadFull(c, h[:]); err != nil {
				return
			}
			_, n, _ := parseRawHeader(h[:], rawRequest)
			body := make([]byte, n)
			if _, err := io.ReadFull(c, body); err != nil {
				return
			}
			if first {
				<-release
				first = false
			}
			h[3] = rawResponse
			c.Write(append(h[:], body...))
		}
	}()
	cl, err := newRawPipeClient(lis.Addr().String(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := cl.NewCaller()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	err = h.Call(ctx, []byte("first"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("first call: %v, want DeadlineExceeded", err)
	}
	close(release)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.Call(ctx, []byte("second")); err != nil {
		t.Fatalf("second call: %v", err)
	}
	cl.Close()
	<-done
}

// echoTen starts the named raw server, sends it ten frames in one write,
// reads the ten echoes back and stops it. It returns the server and the
// bytes read.
func echoTen(t *testing.T, name string) (Server, []byte) {
	t.Helper()
	im, _ := Lookup(name)
	srv, addr, errc := startServer(t, im)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := range 10 {
		out = appendRawFrame(out, uint32(i+1), []byte("0123456789"))
	}
	if _, err := c.Write(out); err != nil {
		t.Fatal(err)
	}
	in := make([]byte, len(out))
	if _, err := io.ReadFull(c, in); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := srv.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return srv, in
}

func TestRawServerStats(t *testing.T) {
	// Ten frames in one write come back; the server counts ten frames.
	srv, _ := echoTen(t, "raw-pipe")
	st := srv.(Counter).Stats()
	if st["frames"] != 10 || st["writes"] < 1 || st["writes"] > 10 || st[StatFramesPerWrite] != st["frames"]/st["writes"] {
		t.Fatalf("stats %v, want 10 frames in 1 to 10 writes", st)
	}
}

func TestParseRawHeader(t *testing.T) {
	good := appendRawFrame(nil, 7, make([]byte, 5))[:rawHeaderLen]
	mutate := func(f func(h []byte)) []byte {
		h := append([]byte(nil), good...)
		f(h)
		return h
	}
	tests := []struct {
		name    string
		h       []byte
		typ     byte
		seq     uint32
		n       int
		wantErr bool
	}{
		{"request", good, rawRequest, 7, 5, false},
		{"wrong type", good, rawResponse, 0, 0, true},
		{"wrong magic", mutate(func(h []byte) { h[0] = 'G' }), rawRequest, 0, 0, true},
		{"wrong version", mutate(func(h []byte) { h[2] = 9 }), rawRequest, 0, 0, true},
		{"meta counts", mutate(func(h []byte) { h[11] = 3 }), rawRequest, 7, 8, false},
		{"near 4 GiB", mutate(func(h []byte) { h[8], h[12] = 0xff, 0xff }), rawRequest, 0, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq, n, err := parseRawHeader(tt.h, tt.typ)
			if (err != nil) != tt.wantErr || seq != tt.seq || n != tt.n {
				t.Fatalf("got %d, %d, %v; want %d, %d, error %v", seq, n, err, tt.seq, tt.n, tt.wantErr)
			}
		})
	}
}

// TestRawPoolHandsOff checks that raw-pool's echoes are written by pool
// workers, each on its own: ten frames sent in one write come back in ten
// writes (raw-conn's server, reading them all at once, gathers them into
// one).
func TestRawPoolHandsOff(t *testing.T) {
	srv, in := echoTen(t, "raw-pool")
	// Workers may finish out of order: every frame comes back once.
	seen := map[uint32]bool{}
	for b := in; len(b) > 0; b = b[rawHeaderLen+10:] {
		seq, n, err := parseRawHeader(b[:rawHeaderLen], rawResponse)
		if err != nil || n != 10 || seen[seq] {
			t.Fatalf("echo %d: %v, %d bytes, seen before %v", seq, err, n, seen[seq])
		}
		seen[seq] = true
	}
	if st := srv.(Counter).Stats(); st["frames"] != 10 || st["writes"] != 10 {
		t.Fatalf("stats %v, want 10 frames in 10 writes", st)
	}
}
