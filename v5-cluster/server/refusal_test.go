package server

import (
	"errors"
	"io"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/codec"
)

// TestRefusalAnswersWhatWasRead: a frame the server refuses ends the
// connection, but the requests read before it are still answered: the
// half-close that ends the connection waits for their responses. Without
// the wait, a request's response written after the half-close is lost.
func TestRefusalAnswersWhatWasRead(t *testing.T) {
	ts := startServer(t)
	nc := dial(t, ts.addr)
	slow := requestFrame(t, 1, "myrpc.echo.Echo", "Echo", &echo.EchoRequest{Payload: []byte("owed"), DelayMs: 200})
	bad := requestFrame(t, 2, "myrpc.helloworld.Greeter", "Hello", nil)
	bad[2] = 9 // a version nobody speaks
	if _, err := nc.Write(slow); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond) // the slow request is read and running
	if _, err := nc.Write(bad); err != nil {
		t.Fatal(err)
	}
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := map[uint32]bool{}
	for range 2 {
		f, err := codec.ReadFrame(nc, codec.TypeResponse, codec.DefaultMaxFrameSize)
		if err != nil {
			t.Fatalf("after responses %v: %v", got, err)
		}
		rm, err := codec.DecodeResponseMeta(f.Meta)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Seq {
		case 1:
			if rm.Code != 0 {
				t.Fatalf("the slow request: code %d %q", rm.Code, rm.Message)
			}
		case 2:
			if codes.Code(rm.Code) != codes.Unimplemented || !rpc.Closing(rm.Metadata) {
				t.Fatalf("the refusal: code %d, metadata %v; want 12, marked connection: close", rm.Code, rm.Metadata)
			}
		default:
			t.Fatalf("a response to seq %d", f.Seq)
		}
		got[f.Seq] = true
	}
	if _, err := codec.ReadFrame(nc, codec.TypeResponse, codec.DefaultMaxFrameSize); !errors.Is(err, io.EOF) {
		t.Fatalf("after both responses: %v, want EOF", err)
	}
}
