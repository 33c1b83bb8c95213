package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/codec"
)

// echoFrame encodes an Echo request that waits delayMs before answering.
func echoFrame(t *testing.T, seq uint32, payload string, delayMs uint32) []byte {
	t.Helper()
	return requestFrame(t, seq, "myrpc.echo.Echo", "Echo", &echo.EchoRequest{Payload: []byte(payload), DelayMs: delayMs})
}

// helloFrame encodes a Greeter Hello request.
func helloFrame(t *testing.T, seq uint32, msg string) []byte {
	t.Helper()
	return requestFrame(t, seq, "myrpc.helloworld.Greeter", "Hello", &helloworld.HelloRequest{Msg: msg})
}

// readResponse reads one whole response frame within d and decodes its
// meta.
func readResponse(t *testing.T, nc net.Conn, d time.Duration) (codec.Frame, *meta.ResponseMeta) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d))
	f, err := codec.ReadFrame(nc, codec.TypeResponse, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatalf("reading a response: %v", err)
	}
	rm, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil {
		t.Fatalf("response %d: meta: %v", f.Seq, err)
	}
	return f, rm
}

// wantReply checks that a response succeeded and decodes its body into m.
func wantReply(t *testing.T, f codec.Frame, rm *meta.ResponseMeta, m proto.Message) {
	t.Helper()
	if codes.Code(rm.Code) != codes.OK {
		t.Fatalf("response %d: code %d %q, want OK", f.Seq, rm.Code, rm.Message)
	}
	if err := proto.Unmarshal(f.Body, m); err != nil {
		t.Fatalf("response %d: body: %v", f.Seq, err)
	}
}

// wantSilence checks that nothing arrives on nc for d: no reply, no error
// reply, no close.
func wantSilence(t *testing.T, nc net.Conn, d time.Duration) {
	t.Helper()
	nc.SetReadDeadline(time.Now().Add(d))
	buf := make([]byte, 64)
	n, err := nc.Read(buf)
	if n > 0 {
		t.Fatalf("received % x, want nothing for %v", buf[:n], d)
	}
	if !isTimeout(err) {
		t.Fatalf("read: %v, want nothing for %v", err, d)
	}
}

func write(t *testing.T, nc net.Conn, b []byte) {
	t.Helper()
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(b); err != nil {
		t.Fatal(err)
	}
}

// onlyConn returns the one connection the server serves.
func (s *Server) onlyConn(t *testing.T) *conn {
	t.Helper()
	waitConns(t, s, 1)
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		return c
	}
	return nil
}

// TestLongConnOutOfOrder: requests sent back to back on one connection run
// at once, and each response is written whole as its handler finishes.
func TestLongConnOutOfOrder(t *testing.T) {
	ts := startServer(t)
	nc := dial(t, ts.addr)
	var batch []byte
	for _, r := range []struct {
		seq   uint32
		delay uint32
	}{{1, 300}, {2, 0}, {3, 150}} {
		batch = append(batch, echoFrame(t, r.seq, fmt.Sprint("payload ", r.seq), r.delay)...)
	}
	write(t, nc, batch)
	var order []uint32
	for range 3 {
		f, rm := readResponse(t, nc, 5*time.Second)
		var reply echo.EchoReply
		wantReply(t, f, rm, &reply)
		if want := fmt.Sprint("payload ", f.Seq); string(reply.Payload) != want {
			t.Fatalf("response %d carries %q, want %q", f.Seq, reply.Payload, want)
		}
		order = append(order, f.Seq)
	}
	if fmt.Sprint(order) != "[2 3 1]" {
		t.Fatalf("responses arrived in the order %v, want [2 3 1]: shortest handler first", order)
	}
}

// TestPipelinedFrames: every request of a batch written at once is
// answered, also when the frames straddle the reader's buffer.
func TestPipelinedFrames(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		payload int
	}{
		{"100 tiny", 100, 1},
		{"100 straddling the read buffer", 100, 333},
		{"one over 64 KiB", 1, 70 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t)
			nc := dial(t, ts.addr)
			var batch []byte
			want := make(map[uint32]string, tt.n)
			for i := 1; i <= tt.n; i++ {
				p := fmt.Sprintf("%0*d", tt.payload, i)
				want[uint32(i)] = p
				batch = append(batch, echoFrame(t, uint32(i), p, 0)...)
			}
			// The server answers while the batch is still being written:
			// read concurrently, so that neither side waits on a full
			// socket buffer.
			wrote := make(chan error, 1)
			go func() {
				nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
				_, err := nc.Write(batch)
				wrote <- err
			}()
			for range tt.n {
				f, rm := readResponse(t, nc, 5*time.Second)
				var reply echo.EchoReply
				wantReply(t, f, rm, &reply)
				p, ok := want[f.Seq]
				if !ok {
					t.Fatalf("response with unexpected or repeated sequence id %d", f.Seq)
				}
				if string(reply.Payload) != p {
					t.Fatalf("response %d carries %d bytes, not its request's payload", f.Seq, len(reply.Payload))
				}
				delete(want, f.Seq)
			}
			if err := <-wrote; err != nil {
				t.Fatalf("writing the batch: %v", err)
			}
		})
	}
}

// TestIdleTimeoutOwedResponse: a connection with a response owed is not
// idle, however long the handler takes; once nothing is owed, it is closed
// after the idle timeout.
func TestIdleTimeoutOwedResponse(t *testing.T) {
	const idle = 200 * time.Millisecond
	ts := startServer(t, WithIdleTimeout(idle))
	nc := dial(t, ts.addr)
	start := time.Now()
	write(t, nc, echoFrame(t, 1, "slow", 600))
	f, rm := readResponse(t, nc, 5*time.Second)
	answered := time.Since(start)
	var reply echo.EchoReply
	wantReply(t, f, rm, &reply)
	if f.Seq != 1 || string(reply.Payload) != "slow" {
		t.Fatalf("response %d %q, want 1 %q", f.Seq, reply.Payload, "slow")
	}
	if answered < 600*time.Millisecond {
		t.Fatalf("answered after %v, before the handler's delay", answered)
	}
	d := readClosed(t, nc, 5*time.Second)
	if d < idle-50*time.Millisecond || d > 2*time.Second {
		t.Fatalf("closed %v after the last response, the idle timeout is %v", d, idle)
	}
}

// TestWorkersFull: when every worker is busy, the next request waits for
// one, unanswered, instead of being queued without bound or refused.
func TestWorkersFull(t *testing.T) {
	tests := []struct {
		name    string
		workers int
		// waits is true when the Hello must wait for the blocked handler.
		waits bool
	}{
		{"one worker, busy", 1, true},
		{"a worker free", 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, WithWorkers(tt.workers))
			b := newBlockingService()
			if err := ts.Register(b.desc(), b); err != nil {
				t.Fatal(err)
			}
			// Runs before the server's cleanup, so that the handler ends.
			t.Cleanup(b.unblock)
			blocked := dial(t, ts.addr)
			write(t, blocked, requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{}))
			select {
			case <-b.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the blocking handler did not start")
			}

			nc := dial(t, ts.addr)
			write(t, nc, helloFrame(t, 7, "there"))
			if tt.waits {
				wantSilence(t, nc, 300*time.Millisecond)
				b.unblock()
			}
			f, rm := readResponse(t, nc, 5*time.Second)
			var reply helloworld.HelloReply
			wantReply(t, f, rm, &reply)
			if f.Seq != 7 || reply.Msg != "Hello there" {
				t.Fatalf("response %d %q, want 7 %q", f.Seq, reply.Msg, "Hello there")
			}
			b.unblock()
			if f, rm := readResponse(t, blocked, 5*time.Second); f.Seq != 1 || rm.Code != 0 {
				t.Fatalf("the blocked call: response %d, code %d %q", f.Seq, rm.Code, rm.Message)
			}
		})
	}
}

var panicDesc = rpc.ServiceDesc{
	ServiceName: "test.Panic",
	Methods: []rpc.MethodDesc{{
		MethodName: "Panic",
		Handler: func(any, context.Context, func(proto.Message) error, rpc.UnaryServerInterceptor) (proto.Message, error) {
			panic("a deliberate panic")
		},
	}},
}

// TestPanicInWorker: a handler that panics on the only worker is answered
// 13, and the worker and the connection go on serving.
func TestPanicInWorker(t *testing.T) {
	ts := startServer(t, WithWorkers(1))
	if err := ts.Register(&panicDesc, struct{}{}); err != nil {
		t.Fatal(err)
	}
	nc := dial(t, ts.addr)
	for seq := uint32(1); seq <= 3; seq++ {
		write(t, nc, requestFrame(t, seq, "test.Panic", "Panic", &echo.EchoRequest{}))
		f, rm := readResponse(t, nc, 5*time.Second)
		if f.Seq != seq || codes.Code(rm.Code) != codes.Internal {
			t.Fatalf("panicking call %d: response %d, code %d %q; want code 13", seq, f.Seq, rm.Code, rm.Message)
		}
	}
	write(t, nc, helloFrame(t, 4, "after"))
	f, rm := readResponse(t, nc, 5*time.Second)
	var reply helloworld.HelloReply
	wantReply(t, f, rm, &reply)
	if reply.Msg != "Hello after" {
		t.Fatalf("reply %q after the panics", reply.Msg)
	}
}

// TestShutdownLongConn: Shutdown lets a call in flight on a long
// connection finish, answers a request that arrives on that connection
// meanwhile with code 14, then closes the connection.
func TestShutdownLongConn(t *testing.T) {
	ts, b, hctx, nc := startBlocked(t)
	// The connection's reader waits for the next request while the first
	// one runs.
	c := ts.onlyConn(t)
	if !waitFor(5*time.Second, func() bool {
		c.dmu.Lock()
		defer c.dmu.Unlock()
		return c.idle
	}) {
		t.Fatal("the connection's reader did not go back to waiting for requests")
	}
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctxTimeout(t, 5*time.Second)) }()
	if !waitFor(5*time.Second, ts.shuttingDown) {
		t.Fatal("Shutdown did not start")
	}
	// Shutdown wakes the idle connections under mu: once mu is free, it has.
	ts.mu.Lock()
	//lint:ignore SA2001 an empty critical section: waiting for Shutdown's to end
	ts.mu.Unlock()

	write(t, nc, helloFrame(t, 2, "late"))
	// The late request is refused at once, while the first still runs.
	f, rm := readResponse(t, nc, 5*time.Second)
	if f.Seq != 2 || codes.Code(rm.Code) != codes.Unavailable {
		t.Fatalf("the request sent during Shutdown: response %d, code %d %q; want 2, code 14", f.Seq, rm.Code, rm.Message)
	}
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned %v with a call in flight", err)
	default:
	}
	if hctx.Err() != nil {
		t.Fatalf("the handler's context ended during a graceful Shutdown: %v", hctx.Err())
	}
	b.unblock()
	f, rm = readResponse(t, nc, 5*time.Second)
	if f.Seq != 1 || rm.Code != 0 {
		t.Fatalf("the call in flight: response %d, code %d %q; want 1, OK", f.Seq, rm.Code, rm.Message)
	}
	readClosed(t, nc, 5*time.Second)
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	ts.waitServed(t)
}

// TestShutdownReleasesWorkers: the worker pool starts with Serve and is
// released by Shutdown, whether it drains or runs out of time.
func TestShutdownReleasesWorkers(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		ts := startServer(t)
		nc := dial(t, ts.addr)
		write(t, nc, helloFrame(t, 1, "x"))
		readResponse(t, nc, 5*time.Second)
		if ts.workers == nil || ts.workers.IsClosed() {
			t.Fatal("a serving server has no running worker pool")
		}
		if err := ts.Shutdown(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		if !ts.workers.IsClosed() {
			t.Fatal("the worker pool is still running after Shutdown")
		}
	})
	t.Run("out of time", func(t *testing.T) {
		ts, b, _, _ := startBlocked(t)
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		if err := ts.Shutdown(ctx); err == nil {
			t.Fatal("Shutdown with a blocked call returned nil")
		}
		if !ts.workers.IsClosed() {
			t.Fatal("the worker pool is still running after Shutdown gave up")
		}
		b.unblock()
		waitConns(t, ts.Server, 0)
	})
	t.Run("never served", func(t *testing.T) {
		s := New(WithLogger(quietLogger()))
		if err := s.Shutdown(ctxTimeout(t, time.Second)); err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(lis); err != ErrServerClosed {
			t.Fatalf("Serve after Shutdown = %v, want ErrServerClosed", err)
		}
		if s.workers != nil {
			t.Fatal("a server shut down before serving started a worker pool")
		}
	})
}

// TestShutdownClosesIdleGently: a connection that Shutdown finds idle is
// closed gently: a request its client sends as it closes is read and
// dropped, not answered by a reset that would destroy the responses still
// on their way to the client.
func TestShutdownClosesIdleGently(t *testing.T) {
	ts := startServer(t)
	nc := dial(t, ts.addr)
	write(t, nc, helloFrame(t, 1, "first"))
	readResponse(t, nc, 5*time.Second)
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(ctxTimeout(t, 5*time.Second)) }()
	// The server half-closes the connection: its client reads the end.
	buf := make([]byte, 64)
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := nc.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("read %d bytes, %v; want the end of the stream", n, err)
	}
	// A request sent now, as if the client had not yet seen the end, is
	// read and dropped: no reset comes back, and the client can still
	// send.
	write(t, nc, helloFrame(t, 2, "late"))
	time.Sleep(100 * time.Millisecond)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(helloFrame(t, 3, "later")); err != nil {
		t.Fatalf("after a late request: %v; want no reset", err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
