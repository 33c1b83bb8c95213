package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
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

// holdService's Hold handler counts that it started, hands its context to
// the test, and waits for its context to end or for the test to release
// it; then it echoes the payload.
type holdService struct {
	started atomic.Int32
	ctxs    chan context.Context
	release chan struct{}
}

func newHoldService(t *testing.T, s *Server) *holdService {
	t.Helper()
	h := &holdService{ctxs: make(chan context.Context, 1024), release: make(chan struct{})}
	desc := &rpc.ServiceDesc{
		ServiceName: "test.Hold",
		Methods: []rpc.MethodDesc{{
			MethodName: "Hold",
			Handler: func(_ any, ctx context.Context, dec func(proto.Message) error, _ rpc.UnaryServerInterceptor) (proto.Message, error) {
				var req echo.EchoRequest
				if err := dec(&req); err != nil {
					return nil, err
				}
				h.started.Add(1)
				h.ctxs <- ctx
				select {
				case <-ctx.Done():
					return nil, ctx.Err()
				case <-h.release:
				}
				return &echo.EchoReply{Payload: req.Payload}, nil
			},
		}},
	}
	if err := s.Register(desc, h); err != nil {
		t.Fatal(err)
	}
	// Released before the server's cleanup runs.
	t.Cleanup(h.unblock)
	return h
}

func (h *holdService) unblock() {
	select {
	case <-h.release:
	default:
		close(h.release)
	}
}

// holdFrame encodes a Hold request carrying payload, without a deadline.
func holdFrame(t *testing.T, seq uint32, payload []byte) []byte {
	t.Helper()
	return requestFrame(t, seq, "test.Hold", "Hold", &echo.EchoRequest{Payload: payload})
}

// wantStarted waits until n Hold handlers have started, and checks that no
// more start for a while: the server has stopped reading.
func (h *holdService) wantStarted(t *testing.T, n int32) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return h.started.Load() >= n }) {
		t.Fatalf("%d handlers started, want %d", h.started.Load(), n)
	}
	time.Sleep(300 * time.Millisecond)
	if got := h.started.Load(); got != n {
		t.Fatalf("%d handlers started, want %d: the server read past the connection's bound", got, n)
	}
}

// helloWithin checks that a Hello on a new connection is answered within d.
func helloWithin(t *testing.T, addr string, d time.Duration) {
	t.Helper()
	nc := dial(t, addr)
	defer nc.Close()
	write(t, nc, helloFrame(t, 9, "other"))
	f, rm := readResponse(t, nc, d)
	var reply helloworld.HelloReply
	wantReply(t, f, rm, &reply)
	if reply.Msg != "Hello other" {
		t.Fatalf("reply %q", reply.Msg)
	}
}

// TestConnCallsBound: a connection with as many calls in flight as it may
// have is not read until one of them is answered; other connections are
// served meanwhile.
func TestConnCallsBound(t *testing.T) {
	ts := startServer(t, WithMaxConnCalls(2))
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	var batch []byte
	for seq := uint32(1); seq <= 3; seq++ {
		batch = append(batch, holdFrame(t, seq, nil)...)
	}
	write(t, nc, batch)
	h.wantStarted(t, 2)
	helloWithin(t, ts.addr, time.Second)
	h.unblock()
	for range 3 {
		if _, rm := readResponse(t, nc, 5*time.Second); rm.Code != 0 {
			t.Fatalf("code %d %q", rm.Code, rm.Message)
		}
	}
}

// TestConnCallsHalfTheWorkers: a connection may hold at most half the
// workers, so that one client cannot take them all.
func TestConnCallsHalfTheWorkers(t *testing.T) {
	ts := startServer(t, WithWorkers(4))
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	var batch []byte
	for seq := uint32(1); seq <= 4; seq++ {
		batch = append(batch, holdFrame(t, seq, nil)...)
	}
	write(t, nc, batch)
	h.wantStarted(t, 2)
	helloWithin(t, ts.addr, time.Second)
}

// TestConnBytesBound: a connection whose calls hold as many bytes as it may
// is not read until a response has been written; a request is read whole
// when the connection holds nothing, whatever its size.
func TestConnBytesBound(t *testing.T) {
	ts := startServer(t, WithMaxConnBytes(64<<10))
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	payload := bytes.Repeat([]byte{7}, 20<<10)
	var batch []byte
	for seq := uint32(1); seq <= 10; seq++ {
		batch = append(batch, holdFrame(t, seq, payload)...)
	}
	go nc.Write(batch) // blocks once the server stops reading
	// 3 requests hold 60 KiB, under the bound; the 4th takes it over.
	h.wantStarted(t, 4)
	h.unblock()
	for range 10 {
		f, rm := readResponse(t, nc, 5*time.Second)
		var reply echo.EchoReply
		wantReply(t, f, rm, &reply)
		if !bytes.Equal(reply.Payload, payload) {
			t.Fatalf("response %d: %d bytes back", f.Seq, len(reply.Payload))
		}
	}

	// A request bigger than the bound is read when nothing is held.
	big := bytes.Repeat([]byte{8}, 1<<20)
	write(t, nc, holdFrame(t, 11, big))
	f, rm := readResponse(t, nc, 5*time.Second)
	var reply echo.EchoReply
	wantReply(t, f, rm, &reply)
	if f.Seq != 11 || len(reply.Payload) != len(big) {
		t.Fatalf("response %d: %d bytes back", f.Seq, len(reply.Payload))
	}
}

// TestClientNeverReads: a client that sends calls and never reads the
// replies is cut off once the server has waited the write timeout for it
// to take anything, and the other connections are served all along.
func TestClientNeverReads(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	ts := startServer(t, WithWriteTimeout(writeTimeout))
	nc := dial(t, ts.addr)
	frame := echoFrame(t, 1, string(bytes.Repeat([]byte{'x'}, 256<<10)), 0)
	sent := make(chan error, 1)
	go func() {
		for {
			nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := nc.Write(frame); err != nil {
				sent <- err
				return
			}
		}
	}()
	for range 3 {
		helloWithin(t, ts.addr, time.Second)
	}
	// The server closes the connection: the client's writes fail, and it
	// leaves the server's table.
	select {
	case err := <-sent:
		t.Logf("the client's write failed: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the server kept the connection of a client that never reads")
	}
	waitConns(t, ts.Server, 0)
}

// TestSlowReaderServed: a client that reads its response slowly gets it
// whole, even when writing it takes longer than the write timeout: the
// timeout bounds a wait in which the peer takes nothing.
func TestSlowReaderServed(t *testing.T) {
	const writeTimeout = time.Second
	ts := startServer(t, WithWriteTimeout(writeTimeout), WithMaxFrameSize(16<<20))
	nc := dial(t, ts.addr)
	// A small receive buffer keeps what the server's send buffer cannot
	// hold in the server's hands until the client reads it.
	nc.(*net.TCPConn).SetReadBuffer(64 << 10)
	payload := bytes.Repeat([]byte{'y'}, 12<<20)
	frame, err := codec.AppendFrame(nil, codec.TypeRequest, 1,
		&meta.RequestMeta{Service: "myrpc.echo.Echo", Method: "Echo"}, &echo.EchoRequest{Payload: payload}, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	write(t, nc, frame)
	var got bytes.Buffer
	total := codec.HeaderLen + proto.Size(&echo.EchoReply{Payload: payload})
	start := time.Now()
	for got.Len() < total {
		// A megabyte at a time, a quarter of the write timeout apart.
		time.Sleep(writeTimeout / 4)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.CopyN(&got, nc, int64(min(1<<20, total-got.Len()))); err != nil {
			t.Fatalf("after %d bytes in %v: %v", got.Len(), time.Since(start), err)
		}
	}
	if took := time.Since(start); took < 2*writeTimeout {
		t.Fatalf("read in %v, within twice the write timeout: the test shows nothing", took)
	}
	f, err := codec.ReadFrame(&got, codec.TypeResponse, 16<<20)
	if err != nil {
		t.Fatal(err)
	}
	var reply echo.EchoReply
	if err := proto.Unmarshal(f.Body, &reply); err != nil || !bytes.Equal(reply.Payload, payload) {
		t.Fatalf("reply of %d bytes, %v", len(reply.Payload), err)
	}
}

// TestCallsEndWithTheirConnection: when the client closes its connection,
// the contexts of its calls still running are cancelled, also on a
// connection the server had stopped reading.
func TestCallsEndWithTheirConnection(t *testing.T) {
	for _, tt := range []struct {
		name  string
		calls int
		opts  []Option
	}{
		{"reading", 3, nil},
		{"at its bound", 3, []Option{WithMaxConnCalls(2)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ts := startServer(t, tt.opts...)
			h := newHoldService(t, ts.Server)
			nc := dial(t, ts.addr)
			var batch []byte
			for seq := range tt.calls {
				batch = append(batch, holdFrame(t, uint32(seq+1), nil)...)
			}
			write(t, nc, batch)
			var ctxs []context.Context
			for range min(tt.calls, 2) {
				select {
				case ctx := <-h.ctxs:
					ctxs = append(ctxs, ctx)
				case <-time.After(5 * time.Second):
					t.Fatal("a handler did not start")
				}
			}
			nc.Close()
			for _, ctx := range ctxs {
				select {
				case <-ctx.Done():
					if !errors.Is(ctx.Err(), context.Canceled) {
						t.Fatalf("the handler's context ended with %v", ctx.Err())
					}
				case <-time.After(time.Second):
					t.Fatal("a handler's context outlived its connection by a second")
				}
			}
			waitConns(t, ts.Server, 0)
		})
	}
}

// TestMaxTimeout: a request without a deadline runs with the server's
// longest, and is answered DeadlineExceeded when it passes.
func TestMaxTimeout(t *testing.T) {
	ts := startServer(t, WithMaxTimeout(200*time.Millisecond))
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	write(t, nc, holdFrame(t, 1, nil))
	ctx := <-h.ctxs
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 200*time.Millisecond {
		t.Fatalf("the handler's deadline: %v %v, want within 200 ms", d, ok)
	}
	_, rm := readResponse(t, nc, 5*time.Second)
	if codes.Code(rm.Code) != codes.DeadlineExceeded {
		t.Fatalf("code %d %q, want 4", rm.Code, rm.Message)
	}
}
