package rpctest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/status"
)

// The rows in this file are peers that make a server hold resources for
// them: replies nobody reads, handlers nobody waits for, frames that never
// come.

// testR27NeverReads: connections that pipeline calls and never read the
// replies. The server must stop reading such a connection once it owes it
// enough, close it after its write timeout, hold a bounded amount of
// memory for it meanwhile, and keep answering everybody else on time.
func testR27NeverReads(t *testing.T, stage Stage) {
	t.Run("1KiB_calls", func(t *testing.T) { neverReads(t, stage, 1, 1<<10, 64<<20) })
	t.Run("256KiB_calls_on_two_connections", func(t *testing.T) { neverReads(t, stage, 2, 256<<10, 128<<20) })
}

// neverReads opens conns connections that each send Echo calls of payload
// bytes, back to back, and read nothing, until the server stops taking
// them or limit bytes have gone.
func neverReads(t *testing.T, stage Stage, conns, payload, limit int) {
	const (
		writeTimeout = time.Second
		// closeWithin bounds the time from the first call to the close:
		// the write timeout, plus room for the server to fill the
		// socket and for a loaded machine.
		closeWithin = writeTimeout + 5*time.Second
		// heapBound bounds what the process's heap may grow while the
		// server holds the connections: far more than a cap per
		// connection needs, far less than reading on without one.
		heapBound = 128 << 20
		// probeBound bounds each call of the other client.
		probeBound = time.Second
	)
	e := start(t, stage, ServerConfig{WriteTimeout: writeTimeout})
	p := startProbe(t, e, probeBound)
	defer p.stop()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	frame := request(t, 1, "myrpc.echo.Echo", "Echo", 0, &echo.EchoRequest{Payload: make([]byte, payload)})
	type outcome struct {
		sent int64
		err  error // nil: limit bytes went without the server pushing back
	}
	outcomes := make(chan outcome, conns)
	sent := make([]atomic.Int64, conns)
	raws := make([]*rawConn, conns)
	var wg sync.WaitGroup
	defer wg.Wait()
	begin := time.Now()
	for i := range conns {
		c := dialRaw(t, e.addr)
		raws[i] = c
		defer c.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			f := append([]byte(nil), frame...)
			c.SetWriteDeadline(begin.Add(closeWithin))
			for seq := uint32(1); sent[i].Load() < int64(limit); seq++ {
				binary.BigEndian.PutUint32(f[4:], seq)
				n, err := c.Write(f)
				sent[i].Add(int64(n))
				if err != nil {
					outcomes <- outcome{sent[i].Load(), err}
					return
				}
			}
			outcomes <- outcome{sent[i].Load(), nil}
		}()
	}

	// Until every connection has an outcome, watch what the heap holds:
	// after a collection, so that garbage not yet collected does not
	// count.
	var peak uint64
	var peakSent int64
	peakGoroutines := 0
	pending := conns
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for pending > 0 {
		select {
		case o := <-outcomes:
			pending--
			switch {
			case o.err == nil:
				t.Errorf("the server read all %d MiB sent on a connection that reads no replies: it never stopped reading it", o.sent>>20)
			case isTimeoutErr(o.err):
				t.Errorf("the server did not close a connection that reads no replies within %v (write timeout %v); %d MiB had been sent on it",
					closeWithin, writeTimeout, o.sent>>20)
			default:
				t.Logf("the server closed a connection after %.1f MiB had been sent on it, %v after the first call (%v)",
					float64(o.sent)/(1<<20), time.Since(begin).Round(time.Millisecond), o.err)
			}
		case <-tick.C:
		}
		peakGoroutines = max(peakGoroutines, runtime.NumGoroutine())
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		if ms.HeapAlloc > peak {
			peak = ms.HeapAlloc
			peakSent = 0
			for i := range sent {
				peakSent += sent[i].Load()
			}
		}
	}
	grown := int64(peak) - int64(before.HeapAlloc)
	t.Logf("the live heap grew at most %d MiB, with %d MiB sent; at most %d goroutines", grown>>20, peakSent>>20, peakGoroutines)
	if grown > heapBound {
		t.Errorf("the heap grew %d MiB for %d connections that read no replies (%d MiB sent); want under %d MiB",
			grown>>20, conns, peakSent>>20, heapBound>>20)
	}
	for _, c := range raws {
		c.Close()
	}
	p.check(t)
}

// probe is a client of its own that calls the server over and over while
// a test does something else to it, and records how each call went.
type probe struct {
	bound time.Duration
	done  chan struct{}
	wg    sync.WaitGroup
	// mu protects the fields below.
	mu    sync.Mutex
	calls int
	worst time.Duration
	bad   []string
}

// startProbe starts calling Hello on e, one call every 100 ms; each call
// must be answered within bound.
func startProbe(t *testing.T, e *env, bound time.Duration) *probe {
	p := &probe{bound: bound, done: make(chan struct{})}
	c := helloworld.NewGreeterClient(e.client(ClientConfig{}))
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			msg := fmt.Sprint(i)
			ctx, cancel := context.WithTimeout(context.Background(), bound+2*time.Second)
			start := time.Now()
			reply, err := c.Hello(ctx, &helloworld.HelloRequest{Msg: msg})
			d := time.Since(start)
			cancel()
			p.mu.Lock()
			p.calls++
			p.worst = max(p.worst, d)
			switch {
			case err != nil:
				p.bad = append(p.bad, fmt.Sprintf("call %d failed after %v: %v", i, d.Round(time.Millisecond), err))
			case reply.Msg != "Hello "+msg:
				p.bad = append(p.bad, fmt.Sprintf("call %d: reply %q", i, reply.Msg))
			case d > bound:
				p.bad = append(p.bad, fmt.Sprintf("call %d took %v", i, d.Round(time.Millisecond)))
			}
			p.mu.Unlock()
			select {
			case <-p.done:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

// stop ends the calls; it may be called more than once.
func (p *probe) stop() {
	select {
	case <-p.done:
	default:
		close(p.done)
	}
	p.wg.Wait()
}

// check stops the probe and fails the test if a call failed or took more
// than the bound.
func (p *probe) check(t *testing.T) {
	t.Helper()
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	t.Logf("the other client made %d calls, the slowest took %v", p.calls, p.worst.Round(time.Millisecond))
	if len(p.bad) > 0 {
		const show = 5
		more := ""
		if len(p.bad) > show {
			more = fmt.Sprintf(" (and %d more)", len(p.bad)-show)
		}
		t.Errorf("%d of the other client's %d calls failed or took over %v: %v%s",
			len(p.bad), p.calls, p.bound, p.bad[:min(len(p.bad), show)], more)
	}
}

// testR28Abandoned: connections that send calls which wait on their
// context, and close. The handlers' contexts must be cancelled when their
// connection goes, and a fresh call must be answered at once, although the
// abandoned calls once held every worker (V2 on) or every connection slot
// (V1).
func testR28Abandoned(t *testing.T, stage Stage) {
	// Fewer workers than the stages' default, so that the race detector's
	// limit on goroutines is far away; one connection's calls fill them.
	const (
		workers   = 100
		freshCall = time.Second
	)
	conns, calls, holding := 11, 100, workers
	cfg := ServerConfig{Workers: workers}
	if !stage.LongConnections {
		// One call per connection: the calls fill the connection slots,
		// and one connection more waits in the backlog.
		const slots = 4
		conns, calls, holding = slots+1, 1, slots
		cfg = ServerConfig{MaxConns: slots}
	}
	e := start(t, stage, cfg)
	raws := make([]*rawConn, conns)
	for i := range raws {
		var frames []byte
		for j := range calls {
			// No timeout: nothing but the connection ends these calls.
			frames = append(frames, request(t, uint32(j+1), faultsService, "Block", 0, &echo.EchoRequest{})...)
		}
		raws[i] = dialRaw(t, e.addr)
		raws[i].send(frames)
	}
	if !waitFor(5*time.Second, func() bool { return e.faults.blocked.Load() >= int64(holding) }) {
		t.Fatalf("%d handlers started, want %d", e.faults.blocked.Load(), holding)
	}
	for _, c := range raws {
		c.Close()
	}
	closed := time.Now()

	// A server that refuses work while its workers are busy (code 14, not
	// run) may refuse the call while the abandoned handlers end: it is
	// made again, until freshCall has passed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*freshCall)
	defer cancel()
	fresh := helloworld.NewGreeterClient(e.client(ClientConfig{}))
	var reply *helloworld.HelloReply
	var err error
	refused := 0
	for {
		reply, err = fresh.Hello(ctx, &helloworld.HelloRequest{Msg: "fresh"})
		if status.Code(err) != codes.Unavailable || time.Since(closed) > freshCall {
			break
		}
		refused++
		time.Sleep(10 * time.Millisecond) // before asking again
	}
	d := time.Since(closed)
	switch {
	case err != nil:
		t.Errorf("a fresh call after the connections closed: %v after %v (%d times refused)", err, d.Round(time.Millisecond), refused)
	case reply.Msg != "Hello fresh":
		t.Errorf("a fresh call: reply %q", reply.Msg)
	case d > freshCall:
		t.Errorf("a fresh call was answered %v after the connections closed; want within %v", d.Round(time.Millisecond), freshCall)
	default:
		t.Logf("a fresh call was answered %v after the connections closed (%d times refused before)", d.Round(time.Millisecond), refused)
	}

	// Every handler that started ends, because its context was cancelled.
	ended := 0
	var wrong []error
	drained := waitFor(3*time.Second, func() bool {
		for {
			select {
			case err := <-e.faults.blockEnded:
				ended++
				if err != context.Canceled {
					wrong = append(wrong, err)
				}
			default:
				return ended == int(e.faults.blocked.Load())
			}
		}
	})
	started := e.faults.blocked.Load()
	if !drained {
		t.Fatalf("%d of the %d handlers that started still ran 3 s after the fresh call: their contexts were not cancelled",
			started-int64(ended), started)
	}
	if len(wrong) > 0 {
		t.Fatalf("%d handlers' contexts ended with %v, want context.Canceled", len(wrong), wrong[0])
	}
	t.Logf("%d handlers started; all saw their context cancelled", started)
}

// testR29PromisedFrames: connections that send a header promising a frame
// of nearly 4 MiB, a few bytes of it, and then close or fall silent. What
// the server allocates must follow the bytes that arrived.
func testR29PromisedFrames(t *testing.T, stage Stage) {
	const (
		conns = 128
		// promised is meta + body in each header: under the default
		// frame limit of 4 MiB, so that the header is not refused.
		promised = 4<<20 - 1024
		metaLen  = 64
		// allocBound bounds what the process allocates meanwhile, the
		// test's own connections included: a few KiB per connection is
		// fine, a buffer of the promised size per connection is not.
		allocBound = 64 << 20
	)
	for _, tc := range []struct {
		name  string
		close bool
	}{
		{"then_close", true},
		{"then_silence", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A short frame timeout ends the silent connections.
			e := start(t, stage, ServerConfig{FrameTimeout: 500 * time.Millisecond})
			afterBadFrame(t, e, dialRaw(t, e.addr)) // warm up
			hdr := header{magic: magic, version: version, typ: typeRequest, seq: 29,
				metaLen: metaLen, bodyLen: promised - metaLen}.bytes()
			hdr = append(hdr, make([]byte, 10)...) // the start of the meta
			runtime.GC()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)

			raws := make([]*rawConn, conns)
			for i := range raws {
				raws[i] = dialRaw(t, e.addr)
				raws[i].send(hdr)
				if tc.close {
					// The server sees the end of the stream as after a
					// close, and this side still sees the server close.
					raws[i].CloseWrite()
				}
			}
			var wg sync.WaitGroup
			open := make(chan int, conns)
			for i, c := range raws {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					if _, err := c.Read(make([]byte, 1)); isTimeoutErr(err) {
						open <- i
					}
				}()
			}
			wg.Wait()
			runtime.ReadMemStats(&after)
			if n := len(open); n > 0 {
				t.Fatalf("%d of %d connections with an unfinished frame were not closed within 10 s", n, conns)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("%d connections each promised %d bytes and sent %d: the process allocated %.1f MiB",
				conns, promised, len(hdr), float64(alloc)/(1<<20))
			if alloc > allocBound {
				t.Errorf("the process allocated %d MiB for %d connections that sent %d bytes each; want under %d MiB: the server allocates what a header promises, not what arrives",
					alloc>>20, conns, len(hdr), allocBound>>20)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			reply, err := helloworld.NewGreeterClient(e.client(ClientConfig{})).Hello(ctx, &helloworld.HelloRequest{Msg: "after"})
			if err != nil || reply.Msg != "Hello after" {
				t.Fatalf("a call after the promised frames: %v, %v", reply, err)
			}
		})
	}
}

// isTimeoutErr reports whether err is a deadline passing.
func isTimeoutErr(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
