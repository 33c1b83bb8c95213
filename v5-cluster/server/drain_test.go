package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/services"
)

// TestDrainRefusalMarkedNotRun: a request that arrives while the server
// shuts down is refused with code 14 and two marks, connection: close and
// not-run, on either path, so that a client may send it to another server
// at once; the call in flight still completes.
func TestDrainRefusalMarkedNotRun(t *testing.T) {
	for _, reactor := range []bool{false, true} {
		t.Run(fmt.Sprintf("reactor=%v", reactor), func(t *testing.T) {
			s := New(WithLogger(quietLogger()))
			s.useReactor = reactor
			helloworld.RegisterGreeterServer(s, services.Greeter{})
			ts := serveOn(t, s)
			b := newBlockingService()
			if err := ts.Register(b.desc(), b); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.unblock)
			nc := dial(t, ts.addr)
			write(t, nc, requestFrame(t, 1, "test.Blocking", "Block", &echo.EchoRequest{}))
			select {
			case <-b.started:
			case <-time.After(5 * time.Second):
				t.Fatal("the blocking handler did not start")
			}
			shut := make(chan error, 1)
			go func() { shut <- s.Shutdown(context.Background()) }()
			if !waitFor(5*time.Second, s.shuttingDown) {
				t.Fatal("Shutdown did not start")
			}
			write(t, nc, helloFrame(t, 7, "late"))
			f, rm := readResponse(t, nc, 5*time.Second)
			if f.Seq != 7 || codes.Code(rm.Code) != codes.Unavailable || !rpc.Closing(rm.Metadata) || !rpc.NotRun(rm.Metadata) {
				t.Fatalf("the late request: response %d, code %d %q, metadata %v; want 7, code 14, marked connection: close and not-run",
					f.Seq, rm.Code, rm.Message, rm.Metadata)
			}
			b.unblock()
			if f, rm := readResponse(t, nc, 5*time.Second); f.Seq != 1 || rm.Code != 0 || rpc.NotRun(rm.Metadata) {
				t.Fatalf("the call in flight: response %d, code %d %q, metadata %v", f.Seq, rm.Code, rm.Message, rm.Metadata)
			}
			if err := <-shut; err != nil {
				t.Fatal(err)
			}
		})
	}
}
