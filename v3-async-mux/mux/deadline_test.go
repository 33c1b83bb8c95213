package mux

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/v3-async-mux/codec"
)

// stalledPipe connects a Conn to a server end that never reads. Both
// sockets get small buffers, so that a write of some hundred kilobytes
// blocks. Both ends are closed when the test ends.
func stalledPipe(t *testing.T) *Conn {
	t.Helper()
	lis := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := lis.Accept()
		if err != nil {
			close(accepted)
			return
		}
		nc.(*net.TCPConn).SetReadBuffer(4 << 10)
		accepted <- nc
	}()
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	nc.(*net.TCPConn).SetWriteBuffer(4 << 10)
	snc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	cfg := Config{Logger: quietLogger()}
	c := newConn(nc, cfg.withDefaults(), func(*Conn) {}, func(*Conn) {})
	t.Cleanup(func() {
		c.Close()
		snc.Close()
	})
	return c
}

// sendResult is what a Send returned, and when.
type sendResult struct {
	written bool
	err     error
	at      time.Time
}

func sendAsync(c *Conn, ctx context.Context, frame []byte) chan sendResult {
	ch := make(chan sendResult, 1)
	go func() {
		_, written, err := c.Send(ctx, frame, func(codec.Frame, error) {})
		ch <- sendResult{written, err, time.Now()}
	}()
	return ch
}

// TestSendWaitsWithinItsContext: a call that waits for another call's
// write gives up at its own deadline, or when it is cancelled, having sent
// nothing; the call that writes is cut short when its own context ends.
func TestSendWaitsWithinItsContext(t *testing.T) {
	c := stalledPipe(t)
	big := reqFrame(t, "Big", bytes.Repeat([]byte{1}, 2<<20))
	bigCtx, cancelBig := context.WithCancel(context.Background())
	defer cancelBig()
	bigDone := sendAsync(c, bigCtx, big)
	waitFor(t, "the big frame's write to begin", func() bool { return len(c.wsem) == 1 })

	const wait = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	deadline, _ := ctx.Deadline()
	short := sendAsync(c, ctx, reqFrame(t, "Short", nil))

	cctx, ccancel := context.WithCancel(context.Background())
	cancelled := sendAsync(c, cctx, reqFrame(t, "Cancelled", nil))
	time.Sleep(wait / 2)
	cancelAt := time.Now()
	ccancel()

	for _, tc := range []struct {
		name string
		ch   chan sendResult
		code codes.Code
		by   time.Time
	}{
		{"cancelled", cancelled, codes.Canceled, cancelAt},
		{"deadline", short, codes.DeadlineExceeded, deadline},
	} {
		select {
		case r := <-tc.ch:
			wantCode(t, r.err, tc.code)
			if r.written {
				t.Errorf("%s: written, want never sent", tc.name)
			}
			if late := r.at.Sub(tc.by); late > 100*time.Millisecond {
				t.Errorf("%s: returned %v late", tc.name, late)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: Send waited for the other call's write", tc.name)
		}
	}

	// The write in progress ends when its own call is cancelled.
	cancelAt = time.Now()
	cancelBig()
	select {
	case r := <-bigDone:
		if r.err == nil {
			t.Fatal("the cut write reported success")
		}
		if late := r.at.Sub(cancelAt); late > 100*time.Millisecond {
			t.Errorf("the cut write returned %v after its cancellation", late)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the write of a cancelled call went on")
	}
}
