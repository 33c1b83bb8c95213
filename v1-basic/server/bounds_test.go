package server

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v1-basic/codec"
)

// holdService's Hold handler hands its context to the test and waits for
// it to end or for the test to release it; then it echoes the payload.
type holdService struct {
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
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	start := time.Now()
	for {
		// A megabyte at a time, a quarter of the write timeout apart.
		time.Sleep(writeTimeout / 4)
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := io.CopyN(&got, nc, 1<<20)
		if err == io.EOF && n < 1<<20 {
			break // V1 closes the connection after its response
		}
		if err != nil {
			t.Fatalf("after %d bytes in %v: %v", got.Len(), time.Since(start), err)
		}
	}
	if took := time.Since(start); took < 2*writeTimeout {
		t.Fatalf("read in %v, within twice the write timeout: the test shows nothing", took)
	}
	n := got.Len()
	f, err := codec.ReadFrame(&got, codec.TypeResponse, 16<<20)
	if err != nil {
		t.Fatalf("%d bytes received: %v", n, err)
	}
	var reply echo.EchoReply
	if err := proto.Unmarshal(f.Body, &reply); err != nil || !bytes.Equal(reply.Payload, payload) {
		t.Fatalf("reply of %d bytes, %v", len(reply.Payload), err)
	}
}

// TestCallsEndWithTheirConnection: when the client closes its connection,
// the context of its call still running is cancelled.
func TestCallsEndWithTheirConnection(t *testing.T) {
	ts := startServer(t)
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(holdFrame(t, 1, nil)); err != nil {
		t.Fatal(err)
	}
	var ctx context.Context
	select {
	case ctx = <-h.ctxs:
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not start")
	}
	nc.Close()
	select {
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.Canceled) {
			t.Fatalf("the handler's context ended with %v", ctx.Err())
		}
	case <-time.After(time.Second):
		t.Fatal("the handler's context outlived its connection by a second")
	}
	waitConns(t, ts.Server, 0)
}

// TestMaxTimeout: a request without a deadline runs with the server's
// longest, and is answered DeadlineExceeded when it passes.
func TestMaxTimeout(t *testing.T) {
	ts := startServer(t, WithMaxTimeout(200*time.Millisecond))
	h := newHoldService(t, ts.Server)
	nc := dial(t, ts.addr)
	nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Write(holdFrame(t, 1, nil)); err != nil {
		t.Fatal(err)
	}
	ctx := <-h.ctxs
	if d, ok := ctx.Deadline(); !ok || time.Until(d) > 200*time.Millisecond {
		t.Fatalf("the handler's deadline: %v %v, want within 200 ms", d, ok)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	f, err := codec.ReadFrame(nc, codec.TypeResponse, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := codec.DecodeResponseMeta(f.Meta)
	if err != nil {
		t.Fatal(err)
	}
	if codes.Code(rm.Code) != codes.DeadlineExceeded {
		t.Fatalf("code %d %q, want 4", rm.Code, rm.Message)
	}
}
