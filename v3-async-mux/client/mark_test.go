package client

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v3-async-mux/mux"
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
