package rpctest

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/status"
)

// fakeServer accepts connections and hands each request frame to answer,
// which writes whatever it likes back: the suite's way to send responses no
// well-behaved server sends.
type fakeServer struct {
	addr string
	lis  net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	// conns are the accepted connections, closed by close.
	conns []net.Conn
}

// rawFrame is a request as the fake server reads it.
type rawFrame struct {
	seq  uint32
	meta *meta.RequestMeta
	body []byte
}

func newFakeServer(t *testing.T, answer func(w io.Writer, req rawFrame)) *fakeServer {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{addr: lis.Addr().String(), lis: lis}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				var wmu sync.Mutex
				for {
					req, err := readRawRequest(nc)
					if err != nil {
						return
					}
					wmu.Lock()
					answer(nc, req)
					wmu.Unlock()
				}
			}()
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) close() {
	s.lis.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func readRawRequest(r io.Reader) (rawFrame, error) {
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(r, h); err != nil {
		return rawFrame{}, err
	}
	metaLen, bodyLen := binary.BigEndian.Uint32(h[8:]), binary.BigEndian.Uint32(h[12:])
	if uint64(metaLen)+uint64(bodyLen) > 64<<20 {
		return rawFrame{}, fmt.Errorf("request of %d bytes", uint64(metaLen)+uint64(bodyLen))
	}
	payload := make([]byte, int(metaLen)+int(bodyLen))
	if _, err := io.ReadFull(r, payload); err != nil {
		return rawFrame{}, err
	}
	m := new(meta.RequestMeta)
	if err := proto.Unmarshal(payload[:metaLen], m); err != nil {
		return rawFrame{}, err
	}
	return rawFrame{seq: binary.BigEndian.Uint32(h[4:]), meta: m, body: payload[metaLen:]}, nil
}

// responseFrame encodes a response frame.
func responseFrame(seq uint32, rm *meta.ResponseMeta, body proto.Message) []byte {
	m, _ := proto.Marshal(rm)
	var b []byte
	if body != nil {
		b, _ = proto.Marshal(body)
	}
	out := header{magic: magic, version: version, typ: typeResponse, seq: seq,
		metaLen: uint32(len(m)), bodyLen: uint32(len(b))}.bytes()
	return append(append(out, m...), b...)
}

func echoResponse(seq uint32, payload string) []byte {
	return responseFrame(seq, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte(payload)})
}

func testR16UnknownSeq(t *testing.T, stage Stage) {
	// Before each real response, a response to a sequence id nobody sent.
	fake := newFakeServer(t, func(w io.Writer, req rawFrame) {
		w.Write(echoResponse(req.seq+1000, "not yours"))
		var in echo.EchoRequest
		proto.Unmarshal(req.body, &in)
		w.Write(echoResponse(req.seq, string(in.Payload)))
	})
	c := stage.NewClient(fake.addr, ClientConfig{})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 5 {
		want := fmt.Sprintf("call %d", i)
		reply, err := echo.NewEchoClient(c).Echo(ctx, &echo.EchoRequest{Payload: []byte(want)})
		if err != nil || string(reply.Payload) != want {
			t.Fatalf("%s: got %q, %v", want, reply.GetPayload(), err)
		}
	}
	if n := stage.Dropped(c); n != 5 {
		t.Fatalf("%d responses dropped, want the 5 with unknown ids", n)
	}
}

func testR17Duplicate(t *testing.T, stage Stage) {
	// Every response is sent twice: the second copy must not reach the next
	// call that happens to get the same sequence id.
	fake := newFakeServer(t, func(w io.Writer, req rawFrame) {
		var in echo.EchoRequest
		proto.Unmarshal(req.body, &in)
		w.Write(echoResponse(req.seq, string(in.Payload)))
		w.Write(echoResponse(req.seq, "duplicate of "+string(in.Payload)))
	})
	// Two sequence ids only, so that ids are reused at once.
	c := stage.NewClient(fake.addr, ClientConfig{MaxSequenceID: 2, MaxInFlight: 1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 6 {
		want := fmt.Sprintf("call %d", i)
		reply, err := echo.NewEchoClient(c).Echo(ctx, &echo.EchoRequest{Payload: []byte(want)})
		if err != nil || string(reply.Payload) != want {
			t.Fatalf("%s: got %q, %v; the first response must win", want, reply.GetPayload(), err)
		}
	}
	if !waitFor(5*time.Second, func() bool { return stage.Dropped(c) == 6 }) {
		t.Fatalf("%d responses dropped, want the 6 duplicates", stage.Dropped(c))
	}
}

func testR18Wraparound(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	// Ids run 1..4 on one connection. The first call holds id 1 until it is
	// released; the ten calls after it wrap around several times and must
	// skip the id still pending.
	c := e.client(ClientConfig{MaxSequenceID: 4, MaxInFlight: 3})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	blocked := make(chan *echo.EchoReply, 1)
	go func() {
		reply, err := callFaults(ctx, c, "Block", &echo.EchoRequest{})
		if err != nil {
			t.Error(err)
		}
		blocked <- reply
	}()
	if !waitFor(5*time.Second, func() bool { return e.faults.blocked.Load() == 1 }) {
		t.Fatal("the blocking call did not reach the handler")
	}
	for i := range 10 {
		want := fmt.Sprintf("call %d", i)
		reply, err := callFaults(ctx, c, "Count", &echo.EchoRequest{Payload: []byte(want)})
		if err != nil || string(reply.Payload) != want {
			t.Fatalf("%s: got %q, %v", want, reply.GetPayload(), err)
		}
	}
	e.faults.releaseAll()
	if reply := <-blocked; string(reply.GetPayload()) != "late" {
		t.Fatalf("the blocked call got %q: its id was given to another call", reply.GetPayload())
	}
	if n := stage.Dropped(c); n != 0 {
		t.Fatalf("%d responses dropped", n)
	}
}

// retryProxy sits between a client and a real server. For each request it
// asks decide what to do: forward it, answer it 14 itself (as a server
// that did not run it), or forward it and then break the connection instead
// of passing the response on (the server ran it; the client cannot know).
type retryProxy struct {
	*fakeServer
	server string
}

type proxyAction int

const (
	forward proxyAction = iota
	answerUnavailable
	runThenDrop
)

func newRetryProxy(t *testing.T, server string, decide func(n int) proxyAction) *retryProxy {
	var mu sync.Mutex
	n := 0
	p := &retryProxy{server: server}
	p.fakeServer = newFakeServer(t, func(w io.Writer, req rawFrame) {
		mu.Lock()
		n++
		action := decide(n)
		mu.Unlock()
		if action == answerUnavailable {
			w.Write(responseFrame(req.seq, &meta.ResponseMeta{Code: uint32(codes.Unavailable), Message: "not run"}, nil))
			return
		}
		// Forward the request on a connection of its own and wait for the
		// answer: enough for calls one at a time.
		up, err := net.Dial("tcp", server)
		if err != nil {
			return
		}
		defer up.Close()
		m, _ := proto.Marshal(req.meta)
		up.Write(rawRequest(req.seq, m, req.body))
		rsp, err := readResponse(up)
		if err != nil {
			return
		}
		if action == runThenDrop {
			w.(net.Conn).Close()
			return
		}
		m, _ = proto.Marshal(rsp.meta)
		out := header{magic: magic, version: version, typ: typeResponse, seq: rsp.seq,
			metaLen: uint32(len(m)), bodyLen: uint32(len(rsp.body))}.bytes()
		w.Write(append(append(out, m...), rsp.body...))
	})
	return p
}

func testR21Retry(t *testing.T, stage Stage) {
	e := start(t, stage, ServerConfig{})
	ctx := func() context.Context {
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		t.Cleanup(cancel)
		return c
	}
	count := func() int64 { return e.faults.calls.Load() }

	t.Run("ran_then_connection_dropped_not_idempotent", func(t *testing.T) {
		before := count()
		p := newRetryProxy(t, e.addr, func(int) proxyAction { return runThenDrop })
		c := stage.NewClient(p.addr, ClientConfig{})
		defer c.Close()
		_, err := callFaults(ctx(), c, "Count", &echo.EchoRequest{}, stage.RetryOptions(3, false, 0)...)
		wantCode(t, err, codes.Unavailable)
		if n := count() - before; n != 1 {
			t.Fatalf("the handler ran %d times; a call that may have run must not be retried", n)
		}
	})
	t.Run("ran_then_connection_dropped_idempotent", func(t *testing.T) {
		before := count()
		p := newRetryProxy(t, e.addr, func(n int) proxyAction {
			if n == 1 {
				return runThenDrop
			}
			return forward
		})
		c := stage.NewClient(p.addr, ClientConfig{})
		defer c.Close()
		if _, err := callFaults(ctx(), c, "Count", &echo.EchoRequest{}, stage.RetryOptions(3, true, 0)...); err != nil {
			t.Fatalf("an idempotent call was not retried: %v", err)
		}
		if n := count() - before; n != 2 {
			t.Fatalf("the handler ran %d times, want 2: at least once, here twice", n)
		}
	})
	t.Run("server_said_not_run", func(t *testing.T) {
		before := count()
		p := newRetryProxy(t, e.addr, func(n int) proxyAction {
			if n <= 2 {
				return answerUnavailable
			}
			return forward
		})
		c := stage.NewClient(p.addr, ClientConfig{})
		defer c.Close()
		if _, err := callFaults(ctx(), c, "Count", &echo.EchoRequest{}, stage.RetryOptions(3, false, 0)...); err != nil {
			t.Fatalf("a call answered 14 was not retried: %v", err)
		}
		if n := count() - before; n != 1 {
			t.Fatalf("the handler ran %d times, want 1", n)
		}
	})
	t.Run("attempts_capped", func(t *testing.T) {
		var mu sync.Mutex
		seen := 0
		p := newRetryProxy(t, e.addr, func(int) proxyAction {
			mu.Lock()
			seen++
			mu.Unlock()
			return answerUnavailable
		})
		c := stage.NewClient(p.addr, ClientConfig{})
		defer c.Close()
		_, err := callFaults(ctx(), c, "Count", &echo.EchoRequest{}, stage.RetryOptions(3, false, 0)...)
		wantCode(t, err, codes.Unavailable)
		mu.Lock()
		defer mu.Unlock()
		if seen != 3 {
			t.Fatalf("%d attempts, want the 3 the policy allows", seen)
		}
	})
	t.Run("never_sent", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		lis.Close() // refused until the server below starts
		c := stage.NewClient(addr, ClientConfig{})
		defer c.Close()
		later := time.AfterFunc(100*time.Millisecond, func() { startAt(t, stage, ServerConfig{}, addr) })
		defer later.Stop()
		reply, err := callFaults(ctx(), c, "Count", &echo.EchoRequest{Payload: []byte("eventually")}, stage.RetryOptions(20, false, 0)...)
		if err != nil || string(reply.Payload) != "eventually" {
			t.Fatalf("a call refused before it was sent was not retried: %v, %v", reply, err)
		}
	})
	t.Run("inside_the_deadline", func(t *testing.T) {
		// An idempotent call whose every attempt times out: the attempts
		// stop at the call's deadline. The deadline holds several
		// attempts, so that a busy machine that stalls one (or the dial)
		// for a few hundred milliseconds still leaves room for a retry.
		const deadline = time.Second
		cctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		c := e.client(ClientConfig{})
		start := time.Now()
		_, err := callFaults(cctx, c, "Block", &echo.EchoRequest{}, stage.RetryOptions(100, true, 100*time.Millisecond)...)
		wantCode(t, err, codes.DeadlineExceeded)
		if d := time.Since(start); d > deadline+time.Second {
			t.Fatalf("the call ended %v after it started; its deadline was %v", d, deadline)
		}
		if n := e.faults.blocked.Load(); n < 2 {
			t.Fatalf("%d attempts reached the server; an attempt that timed out must be retried for an idempotent call", n)
		}
	})
}

// testR31AllRetired: a multiplexing client holds as many connections as
// it may, each carrying a slow call, when the server shuts down and a new
// one takes its port. Each connection is retired when the old server
// refuses a call on it (code 14), but still counts until its slow call
// has drained. Retired connections must not count against the limit: new
// calls open fresh connections, to the new server, at once.
func testR31AllRetired(t *testing.T, stage Stage) {
	const (
		// conns is the stages' default cap on connections to a server.
		conns = 4
		fast  = 2 * conns
		bound = 500 * time.Millisecond
	)
	e := start(t, stage, ServerConfig{})
	c := e.client(ClientConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// One at a time, so that each finds the connections before it busy
	// and opens one more.
	slow := make(chan error, conns)
	for i := range conns {
		go func() {
			_, err := callFaults(ctx, c, "Block", &echo.EchoRequest{})
			slow <- err
		}()
		if !waitFor(5*time.Second, func() bool { return e.faults.blocked.Load() == int64(i+1) }) {
			t.Fatalf("slow call %d did not reach the handler", i+1)
		}
	}

	// The old server drains the slow calls; e.shutdown would release
	// them at once.
	addr := e.addr
	shutdownDone := make(chan error, 1)
	go func() { shutdownDone <- e.srv.Shutdown(ctx) }()
	defer e.faults.releaseAll()
	if !waitFor(2*time.Second, func() bool { return !canDial(addr) }) {
		t.Fatal("the old server still accepts connections during Shutdown")
	}
	e2 := startAt(t, stage, ServerConfig{}, addr)

	refused := 0
	for i := range fast {
		cctx, ccancel := context.WithTimeout(ctx, 5*time.Second)
		start := time.Now()
		reply, err := callFaults(cctx, c, "Count", &echo.EchoRequest{Payload: []byte("fast")})
		d := time.Since(start)
		ccancel()
		switch {
		case err == nil && string(reply.Payload) != "fast":
			t.Fatalf("fast call %d: reply %q", i+1, reply.Payload)
		case err == nil:
		case status.Code(err) == codes.Unavailable && refused < conns:
			// The old server refused it on a connection it drains: the
			// client retires that connection.
			refused++
		default:
			t.Fatalf("fast call %d failed after %v (%d refused before it by the old server): %v",
				i+1, d.Round(time.Millisecond), refused, err)
		}
		if d > bound {
			t.Fatalf("fast call %d took %v; want within %v", i+1, d.Round(time.Millisecond), bound)
		}
	}
	if n := e2.faults.calls.Load(); n != int64(fast-refused) {
		t.Fatalf("the new server ran %d of the %d fast calls that succeeded", n, fast-refused)
	}
	t.Logf("%d fast calls: %d refused by the old server, %d answered by the new one", fast, refused, fast-refused)

	// The slow calls were never cut short.
	e.faults.releaseAll()
	for range conns {
		if err := <-slow; err != nil {
			t.Fatalf("a slow call on a retired connection: %v", err)
		}
	}
	if err := <-shutdownDone; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
}
