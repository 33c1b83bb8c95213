package mux

import (
	"bytes"
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/v5-cluster/codec"
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

// TestSendNeverWaits: a call's Send queues its frame and returns, however
// long the writes before it take; the write that carries it ends at the
// latest deadline of the calls it carries, and then the call whose frame
// was cut fails, and the calls whose frames never left fail as never
// sent.
func TestSendNeverWaits(t *testing.T) {
	c := stalledPipe(t)
	const wait = 300 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	deadline, _ := ctx.Deadline()
	bigDone, bigCh := recorder()
	smallDone, smallCh := recorder()
	big, small := reqFrame(t, "Big", bytes.Repeat([]byte{1}, 2<<20)), reqFrame(t, "Small", nil)
	start := time.Now()
	if _, _, err := c.Send(ctx, big, bigDone); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Send(ctx, small, smallDone); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("two Sends took %v", took)
	}
	r := await(t, bigCh)
	wantCode(t, r.err, codes.Unavailable)
	if errors.Is(r.err, ErrNotSent) {
		t.Fatalf("the cut frame's call ended with %v: part of it was sent", r.err)
	}
	if late := time.Since(deadline); late > 100*time.Millisecond || late < 0 {
		t.Fatalf("the write ended %v after the calls' deadline", late)
	}
	r = await(t, smallCh)
	if !errors.Is(r.err, ErrNotSent) {
		t.Fatalf("the queued call ended with %v, want ErrNotSent", r.err)
	}
}

// TestSendAfterWriterClosed: a Send that finds the connection's writer
// closed, before the connection has marked itself as no longer sending,
// fails as never sent, with a status code, so that its call goes to
// another connection.
func TestSendAfterWriterClosed(t *testing.T) {
	c, _, _ := pipe(t, Config{}, nil)
	c.out.Close()
	_, written, err := c.Send(context.Background(), reqFrame(t, "Late", nil), func(codec.Frame, error) {
		t.Error("the Done of a Send that failed ran")
	})
	wantCode(t, err, codes.Unavailable)
	if written {
		t.Fatal("written, want never sent")
	}
	if got := c.Streams(); got != 0 {
		t.Fatalf("Streams() = %d, want 0", got)
	}
}
