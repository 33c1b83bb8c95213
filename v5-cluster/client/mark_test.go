package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/balancer"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/mux"
)

// markingServer is a fake server that behaves the way every stage's server
// does around a response marked connection: close: it holds back the
// requests of a connection until one says "mark", answers that one with
// the mark, and closes the connection without answering the others, as if
// it had never read them. From connection answerFrom on (numbered from 0)
// it answers every request at once.
func markingServer(t *testing.T, answerFrom int) *fakeServer {
	var mu sync.Mutex
	return newFakeServer(t, func(w io.Writer, r received) bool {
		var req helloworld.HelloRequest
		if err := proto.Unmarshal(r.body, &req); err != nil {
			return false
		}
		mu.Lock()
		if r.conn >= answerFrom {
			defer mu.Unlock()
			w.Write(okFrame(r.seq, "answered"))
			return true
		}
		if req.Msg != "mark" {
			mu.Unlock()
			return true // read, never answered: the server "did not read it"
		}
		defer mu.Unlock()
		w.Write(respFrame(r.seq, &meta.ResponseMeta{
			Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose},
		}, &helloworld.HelloReply{Msg: "marked"}))
		return false
	})
}

// TestConnectionCloseMark: a call still in flight when the server closes
// cleanly after a marked response was never read by it, and is sent again
// on a new connection, without a retry policy; but only a few times.
func TestConnectionCloseMark(t *testing.T) {
	for _, limit := range []bool{false, true} {
		name := "resent"
		if limit {
			name = "resent-at-most-3-times"
		}
		t.Run(name, func(t *testing.T) {
			answerFrom := 1
			if limit {
				answerFrom = 1 << 30
			}
			f := markingServer(t, answerFrom)
			c := newTestClient(t, f.addr, WithMux(mux.Config{MaxConns: 1}))
			victim := c.InvokeAsync(context.Background(), helloworld.Greeter_Hello_FullMethodName,
				&helloworld.HelloRequest{Msg: "victim"}, new(helloworld.HelloReply))
			sends := 1
			if limit {
				sends = 1 + maxResent
			}
			for i := range sends {
				r := f.request(t)
				if r.conn != i {
					t.Fatalf("send %d of the victim came on connection %d", i+1, r.conn)
				}
				reply, err := hello(context.Background(), c, "mark")
				if err != nil || reply.Msg != "marked" {
					t.Fatalf("the marked call: %v, %v", reply, err)
				}
				if r := f.request(t); r.conn != i {
					t.Fatalf("the marked call came on connection %d, want %d", r.conn, i)
				}
			}
			if !limit {
				// Sent again on a new connection, and answered there.
				if r := f.request(t); r.conn != 1 {
					t.Fatalf("the victim was sent again on connection %d, want 1", r.conn)
				}
				if err := victim.Get(context.Background()); err != nil {
					t.Fatalf("the victim: %v", err)
				}
				f.noMoreRequests(t)
				return
			}
			err := victim.Get(context.Background())
			wantCode(t, err, codes.Unavailable)
			if !errors.Is(err, mux.ErrNotRead) {
				t.Fatalf("error %v does not wrap mux.ErrNotRead", err)
			}
			f.noMoreRequests(t)
		})
	}
}

// gatedConn holds up the write of a request whose frame contains a marker
// until the test lets it go, and reports the sequence id the frame carries
// when the write goes on.
type gatedConn struct {
	net.Conn
	marker  []byte
	entered chan uint32 // the id in the frame when the write began
	release chan struct{}
	resumed chan uint32 // the id in the frame when the write went on
}

func (g *gatedConn) Write(b []byte) (int, error) {
	if bytes.Contains(b, g.marker) {
		g.entered <- binary.BigEndian.Uint32(b[4:8])
		<-g.release
		g.resumed <- binary.BigEndian.Uint32(b[4:8])
	}
	return g.Conn.Write(b)
}

// TestResendHasItsOwnFrame: a request on a connection that fails with
// ErrNotRead while the first send is still inside its write is sent again
// once that write has ended, never into the frame the first is writing:
// the first send's frame keeps its own sequence id, and the call succeeds
// on another connection.
func TestResendHasItsOwnFrame(t *testing.T) {
	markNow := make(chan struct{})
	f := newFakeServer(t, func(w io.Writer, r received) bool {
		var req helloworld.HelloRequest
		if err := proto.Unmarshal(r.body, &req); err != nil {
			return false
		}
		if r.conn > 0 || req.Msg == "warm" {
			w.Write(okFrame(r.seq, "answered"))
		}
		if r.conn > 0 {
			return true
		}
		// Connection 0: after the warm-up, mark a response nobody asked
		// for and close, as a server does that reads nothing more.
		<-markNow
		w.Write(respFrame(999, &meta.ResponseMeta{
			Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose},
		}, &helloworld.HelloReply{}))
		return false
	})
	gate := &gatedConn{marker: []byte("victim"), entered: make(chan uint32, 1),
		release: make(chan struct{}), resumed: make(chan uint32, 1)}
	var dialed atomic.Int32
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil || dialed.Add(1) > 1 {
			return nc, err
		}
		gate.Conn = nc
		return gate, nil
	}
	c := newTestClient(t, f.addr)
	// The client dials through its own net.Dialer: this test puts a
	// balancer whose connections dial through the gate in its place.
	c.lb.Close()
	c.lb = balancer.New(balancer.Config{Mux: mux.Config{MaxConns: 1, Dial: dial, Logger: quietLogger()}})
	c.lb.Update([]string{f.addr})
	if _, err := hello(context.Background(), c, "warm"); err != nil {
		t.Fatal(err)
	}
	f.request(t)

	victim := make(chan error, 1)
	go func() { // the first send runs on the caller's goroutine
		_, err := hello(context.Background(), c, "victim")
		victim <- err
	}()
	first := <-gate.entered // the first send is inside its write on connection 0
	close(markNow)
	// The connection ends while the write waits: the call is not sent
	// again until the write has ended, as a write on a closed socket does.
	select {
	case r := <-f.reqs:
		t.Fatalf("the request was sent again (seq %d on connection %d) while the first send was inside its write", r.seq, r.conn)
	case <-time.After(100 * time.Millisecond):
	}
	close(gate.release)
	if got := <-gate.resumed; got != first {
		t.Fatalf("the first send's frame carried seq %d when its write went on, not its own %d", got, first)
	}
	if r := f.request(t); r.conn != 1 {
		t.Fatalf("the request was sent again as seq %d on connection %d; want connection 1", r.seq, r.conn)
	}
	if err := <-victim; err != nil {
		t.Fatalf("the request sent again: %v", err)
	}
}

// TestResendCutShortByClose: a request that a server never read waits in
// the retry queue to be sent again; when Close comes first, the call ends
// with the error that sent it back, never with success and an empty
// reply.
func TestResendCutShortByClose(t *testing.T) {
	c := newTestClient(t, deadAddr(t))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// The endpoint the request went to, left by response.
	ep, err := c.lb.Pick(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.calls.Add(1) // as Invoke does; the call's end is Done
	cl := newCall(c, ctx, cancel, "/myrpc.helloworld.Greeter/Hello", nil, &helloworld.HelloReply{}, c.callOptions(nil))
	att := &attempt{n: 1}
	cl.mu.Lock()
	cl.attempts, cl.cur = 1, att
	cl.mu.Unlock()
	// Close has begun, and the resending finds it so.
	c.closed.Store(true)
	notRead := status.Errorf(codes.Unavailable, "rpc: %w", mux.ErrNotRead)
	cl.response(att, ep, nil, codec.Frame{}, notRead)
	wait, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := cl.future.Get(wait); err != nil && wait.Err() != nil {
		t.Fatal("the call did not end")
	}
	err = cl.future.Err()
	if err == nil {
		t.Fatal("the call ended with success, with no response")
	}
	if !errors.Is(err, mux.ErrNotRead) {
		t.Fatalf("the call ended with %v, want the error that sent it back (mux.ErrNotRead)", err)
	}
}

// TestNotSentDoesNotEject: a request that never left a connection that
// broke (ErrNotSent) goes to a server again, and says nothing of the
// server's health: the calls written on the connection report its break
// (and a marked close, ErrNotRead, is no failure). Counted as a failure,
// it would eject a server that closed a connection after marking it.
func TestNotSentDoesNotEject(t *testing.T) {
	s := startServer(t)
	c := newTestClient(t, s.addr)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ep, err := c.lb.Pick(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	frame, err := c.encodeRequest(ctx, gateService, "Count", &echo.EchoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	c.calls.Add(1) // as Invoke does; the call's end is Done
	cl := newCall(c, ctx, cancel, "/"+gateService+"/Count", frame, new(echo.EchoReply), c.callOptions(nil))
	att := &attempt{n: 1}
	cl.mu.Lock()
	cl.attempts, cl.cur = 1, att
	cl.mu.Unlock()
	cl.response(att, ep, nil, codec.Frame{}, status.Errorf(codes.Unavailable, "rpc: %w", mux.ErrNotSent))
	wait, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	if err := cl.future.Get(wait); err != nil {
		t.Fatalf("the call sent again: %v", err)
	}
	if st := endpoint(t, c, s.addr); st.Ejections != 0 {
		t.Fatalf("the server was ejected %d times for a request never sent", st.Ejections)
	}
}
