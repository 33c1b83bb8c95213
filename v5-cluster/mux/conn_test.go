package mux

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/rpc"
	"myrpc/v5-cluster/codec"
)

// TestReliability18SequenceIDs: ids count up from 1 per connection, wrap
// to 1 after MaxSeq, and skip ids still pending.
func TestReliability18SequenceIDs(t *testing.T) {
	type step struct {
		// send, if not 0, is the id the next Send must get; otherwise the
		// peer answers answer, and the test waits for its Done.
		send, answer uint32
	}
	tests := []struct {
		name   string
		maxSeq uint32
		steps  []step
	}{
		{"counts up from 1", 0, []step{{send: 1}, {send: 2}, {send: 3}}},
		{"does not reuse a freed id at once", 0, []step{{send: 1}, {answer: 1}, {send: 2}, {answer: 2}, {send: 3}}},
		{"wraps to 1", 2, []step{{send: 1}, {answer: 1}, {send: 2}, {answer: 2}, {send: 1}, {send: 2}}},
		{"wraps and skips pending ids", 3, []step{
			{send: 1}, {send: 2}, {send: 3},
			{answer: 1}, {answer: 3},
			{send: 1}, {send: 3}, // 2 is still pending
			{answer: 2},
			{send: 2}, // 1 and 3 are pending, 2 is free again
		}},
		{"max id 4, ten calls, 2 pending throughout", 4, []step{
			{send: 1}, {send: 2}, {send: 3}, {send: 4},
			{answer: 1}, {answer: 3}, {answer: 4},
			{send: 1}, {answer: 1},
			{send: 3}, {answer: 3},
			{send: 4}, {answer: 4},
			{send: 1}, {send: 3}, {send: 4},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, _ := pipe(t, Config{MaxSeq: tt.maxSeq}, nil)
			pending := make(map[uint32]chan result)
			for i, st := range tt.steps {
				if st.send == 0 {
					ch, ok := pending[st.answer]
					if !ok {
						t.Fatalf("step %d: the test answers %d, which is not pending", i, st.answer)
					}
					p.answer(t, st.answer, fmt.Sprint("reply ", st.answer))
					r := await(t, ch)
					if r.err != nil || payloadOf(t, r.f) != fmt.Sprint("reply ", st.answer) {
						t.Fatalf("step %d: call %d got %+v", i, st.answer, r)
					}
					delete(pending, st.answer)
					continue
				}
				done, ch := recorder()
				seq, written, err := c.Send(context.Background(), reqFrame(t, fmt.Sprint("step", i), nil), done)
				if err != nil || !written {
					t.Fatalf("step %d: Send = %d, %v, %v", i, seq, written, err)
				}
				if seq != st.send {
					t.Fatalf("step %d: Send gave id %d, want %d", i, seq, st.send)
				}
				if f := p.next(t); f.Seq != seq {
					t.Fatalf("step %d: the frame on the wire has id %d, Send returned %d", i, f.Seq, seq)
				}
				pending[seq] = ch
			}
			if got := c.Streams(); got != len(pending) {
				t.Fatalf("Streams() = %d, want %d", got, len(pending))
			}
		})
	}
}

// TestConnStreamsExhausted: a connection carrying MaxStreams calls refuses
// the next without writing it, and takes calls again once one ends.
func TestConnStreamsExhausted(t *testing.T) {
	c, p, _ := pipe(t, Config{MaxStreams: 2}, nil)
	var chans []chan result
	for i := range 2 {
		done, ch := recorder()
		if _, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done); err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		p.next(t)
		chans = append(chans, ch)
	}
	done, ch := recorder()
	seq, written, err := c.Send(context.Background(), reqFrame(t, "Refused", nil), done)
	if !errors.Is(err, ErrStreamsExhausted) || written || seq != 0 {
		t.Fatalf("Send over MaxStreams = %d, %v, %v; want 0, false, ErrStreamsExhausted", seq, written, err)
	}
	if got := c.Streams(); got != 2 {
		t.Fatalf("Streams() = %d, want 2", got)
	}
	p.answer(t, 1, "one")
	await(t, chans[0])
	seq, _, err = c.Send(context.Background(), reqFrame(t, "Again", nil), done)
	if err != nil || seq != 3 {
		t.Fatalf("Send after a call ended = %d, %v; want 3, nil", seq, err)
	}
	// The refused frame never reached the wire: the next one read is this.
	f := p.next(t)
	rm, _ := codec.DecodeRequestMeta(f.Meta)
	if f.Seq != 3 || rm.Method != "Again" {
		t.Fatalf("the peer read %s with id %d next, want Again with id 3", rm.Method, f.Seq)
	}
	p.answer(t, 3, "three")
	if r := await(t, ch); r.err != nil || payloadOf(t, r.f) != "three" {
		t.Fatalf("the call after the refusal got %+v", r)
	}
}

// TestReliability11CancelDropsLateResponse: Cancel takes a call out of the
// pending table once; its response, when it comes, is dropped and counted,
// and its Done never runs.
func TestReliability11CancelDropsLateResponse(t *testing.T) {
	c, p, h := pipe(t, Config{}, nil)
	done, ch := recorder()
	seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
	if err != nil {
		t.Fatal(err)
	}
	p.next(t)
	if !c.Cancel(seq) {
		t.Fatal("Cancel of a pending call = false")
	}
	if c.Cancel(seq) {
		t.Fatal("second Cancel = true")
	}
	if got := c.Streams(); got != 0 {
		t.Fatalf("Streams() after Cancel = %d, want 0", got)
	}
	if got := h.released.Load(); got != 1 {
		t.Fatalf("onRelease ran %d times, want 1", got)
	}
	p.answer(t, seq, "late")
	waitFor(t, "the late response to be dropped", func() bool { return c.Dropped() == 1 })
	// The reader has handled the frame: a Done would have run by now.
	wantNoResult(t, ch)
	if got := h.released.Load(); got != 1 {
		t.Fatalf("onRelease ran %d times after the late response, want 1", got)
	}
	// The connection still works.
	done2, ch2 := recorder()
	seq2, _, err := c.Send(context.Background(), reqFrame(t, "Next", nil), done2)
	if err != nil {
		t.Fatal(err)
	}
	p.next(t)
	p.answer(t, seq2, "next")
	if r := await(t, ch2); r.err != nil || payloadOf(t, r.f) != "next" {
		t.Fatalf("the next call got %+v", r)
	}
}

// TestReliability16And17UnwantedResponses: a response that no call waits
// for is dropped and counted, and never reaches another call; of two
// responses with one id, the first wins.
func TestReliability16And17UnwantedResponses(t *testing.T) {
	tests := []struct {
		name string
		// before is sent ahead of the real response to call 1.
		before func(t *testing.T) []byte
		// after is sent after it.
		after func(t *testing.T) []byte
	}{
		{
			name: "unknown id before the answer",
			before: func(t *testing.T) []byte {
				return respFrame(t, 999, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("stray")})
			},
		},
		{
			name: "id 0",
			before: func(t *testing.T) []byte {
				return respFrame(t, 0, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("stray")})
			},
		},
		{
			name: "id of the next call, before it is sent",
			before: func(t *testing.T) []byte {
				return respFrame(t, 2, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("stray")})
			},
		},
		{
			name: "duplicate",
			after: func(t *testing.T) []byte {
				return respFrame(t, 1, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("second")})
			},
		},
		{
			name: "duplicate with an error code",
			after: func(t *testing.T) []byte {
				return respFrame(t, 1, &meta.ResponseMeta{Code: uint32(codes.Internal)}, nil)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, _ := pipe(t, Config{}, nil)
			done, ch := recorder()
			seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
			if err != nil || seq != 1 {
				t.Fatalf("Send = %d, %v", seq, err)
			}
			p.next(t)
			if tt.before != nil {
				p.write(t, tt.before(t))
			}
			p.answer(t, 1, "first")
			if tt.after != nil {
				p.write(t, tt.after(t))
			}
			r := await(t, ch)
			if r.err != nil || payloadOf(t, r.f) != "first" {
				t.Fatalf("the call got %+v, want the reply \"first\"", r)
			}
			// A second call, answered after everything above: once its Done
			// has run, the reader has handled every earlier frame.
			done2, ch2 := recorder()
			seq2, _, err := c.Send(context.Background(), reqFrame(t, "Sentinel", nil), done2)
			if err != nil {
				t.Fatal(err)
			}
			p.next(t)
			p.answer(t, seq2, "sentinel")
			if r := await(t, ch2); r.err != nil || payloadOf(t, r.f) != "sentinel" {
				t.Fatalf("the second call got %+v, want \"sentinel\"", r)
			}
			wantNoResult(t, ch)
			wantNoResult(t, ch2)
			if got := c.Dropped(); got != 1 {
				t.Fatalf("Dropped() = %d, want 1", got)
			}
		})
	}
}

// TestReliability14ServerBreaksConnection: when the server's end goes, every
// call in flight fails at once with code 14, the connection leaves the
// group before their Dones run, and later Sends fail without writing.
func TestReliability14ServerBreaksConnection(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, p *peer)
		// is must be in every call's error chain.
		is error
		// retired: a response marked connection: close came first, so a
		// clean close means the calls left were never read.
		retired bool
	}{
		{"close", func(t *testing.T, p *peer) { p.nc.Close() }, io.EOF, false},
		{"reset", func(t *testing.T, p *peer) {
			p.nc.(*net.TCPConn).SetLinger(0)
			p.nc.Close()
		}, syscall.ECONNRESET, false},
		{"close mid-response", func(t *testing.T, p *peer) {
			b := respFrame(t, 1, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("cut short")})
			p.write(t, b[:len(b)-3])
			p.nc.Close()
		}, io.ErrUnexpectedEOF, false},
		{"close mid-header", func(t *testing.T, p *peer) {
			p.write(t, respFrame(t, 1, &meta.ResponseMeta{}, nil)[:7])
			p.nc.Close()
		}, io.ErrUnexpectedEOF, false},
		{"close after the mark", func(t *testing.T, p *peer) { p.nc.Close() }, ErrNotRead, true},
		{"reset after the mark", func(t *testing.T, p *peer) {
			p.nc.(*net.TCPConn).SetLinger(0)
			p.nc.Close()
		}, syscall.ECONNRESET, true},
		{"close mid-response after the mark", func(t *testing.T, p *peer) {
			b := respFrame(t, 1, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("cut short")})
			p.write(t, b[:len(b)-3])
			p.nc.Close()
		}, io.ErrUnexpectedEOF, true},
	}
	const calls = 3
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, h := pipe(t, Config{}, nil)
			results := make(chan result, 2*calls)
			for range calls {
				done := func(f codec.Frame, err error) {
					h.dones.Add(1)
					results <- result{f, err}
				}
				if _, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done); err != nil {
					t.Fatal(err)
				}
				p.next(t)
			}
			if tt.retired {
				// One more call, whose response carries the mark.
				done, ch := recorder()
				if _, _, err := c.Send(context.Background(), reqFrame(t, "Marked", nil), done); err != nil {
					t.Fatal(err)
				}
				f := p.next(t)
				p.write(t, respFrame(t, f.Seq, &meta.ResponseMeta{
					Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose},
				}, nil))
				if r := await(t, ch); r.err != nil {
					t.Fatalf("the marked response: %v", r.err)
				}
				h.released.Add(-1)
			}
			tt.breakIt(t, p)
			for i := range calls {
				r := await(t, results)
				wantCode(t, r.err, codes.Unavailable)
				if !errors.Is(r.err, tt.is) {
					t.Fatalf("call %d: errors.Is(%v, %v) = false", i, r.err, tt.is)
				}
				if tt.is != ErrNotRead && errors.Is(r.err, ErrNotRead) {
					t.Fatalf("call %d: %v says the request was not read", i, r.err)
				}
			}
			wantNoResult(t, results)
			if got := h.broken.Load(); got != 1 {
				t.Fatalf("onBroken ran %d times, want 1", got)
			}
			if got := h.brokenAt.Load(); got != 0 {
				t.Fatalf("onBroken ran after %d Dones, want before any", got)
			}
			waitFor(t, "every call to be released", func() bool { return h.released.Load() == calls })
			if got := c.Streams(); got != 0 {
				t.Fatalf("Streams() = %d, want 0", got)
			}
			done, ch := recorder()
			seq, written, err := c.Send(context.Background(), reqFrame(t, "After", nil), done)
			if seq != 0 || written {
				t.Fatalf("Send on a broken connection = %d, written %v", seq, written)
			}
			wantCode(t, err, codes.Unavailable)
			wantNoResult(t, ch)
			if got := h.released.Load(); got != calls {
				t.Fatalf("onRelease ran %d times, want %d", got, calls)
			}
		})
	}
}

// TestConnBadResponseBreaksConnection: a response the reader cannot frame
// breaks the connection, with a code that says why.
func TestConnBadResponseBreaksConnection(t *testing.T) {
	const maxFrame = 1024
	header := func(h codec.Header) []byte {
		b := make([]byte, codec.HeaderLen)
		codec.PutHeader(b, h)
		return b
	}
	tests := []struct {
		name  string
		frame []byte
		code  codes.Code
		is    error
	}{
		{"over MaxFrameSize", respFrame(t, 1, &meta.ResponseMeta{}, &echo.EchoReply{Payload: bytes.Repeat([]byte("x"), maxFrame)}),
			codes.ResourceExhausted, codec.ErrFrameTooLarge},
		{"length near 4 GiB", header(codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 1, BodyLen: 1<<32 - 1}),
			codes.ResourceExhausted, codec.ErrFrameTooLarge},
		{"meta over 64 KiB", header(codec.Header{Version: codec.Version, Type: codec.TypeResponse, Seq: 1, MetaLen: codec.MaxMetaLen + 1}),
			codes.ResourceExhausted, codec.ErrMetaTooLarge},
		{"wrong magic", []byte("HTTP/1.1 400 Bad Request\r\n\r\n"), codes.Internal, codec.ErrBadMagic},
		{"wrong version", header(codec.Header{Version: codec.Version + 1, Type: codec.TypeResponse, Seq: 1}), codes.Internal, codec.ErrBadVersion},
		{"request type", header(codec.Header{Version: codec.Version, Type: codec.TypeRequest, Seq: 1}), codes.Internal, codec.ErrBadType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, p, h := pipe(t, Config{MaxFrameSize: maxFrame}, nil)
			var chans []chan result
			for range 2 {
				done, ch := recorder()
				if _, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done); err != nil {
					t.Fatal(err)
				}
				p.next(t)
				chans = append(chans, ch)
			}
			p.write(t, tt.frame)
			for i, ch := range chans {
				r := await(t, ch)
				wantCode(t, r.err, tt.code)
				if !errors.Is(r.err, tt.is) {
					t.Fatalf("call %d: errors.Is(%v, %v) = false", i, r.err, tt.is)
				}
			}
			if got := h.broken.Load(); got != 1 {
				t.Fatalf("onBroken ran %d times, want 1", got)
			}
			// The client closed its end.
			p.waitClosed(t)
			_, written, err := c.Send(context.Background(), reqFrame(t, "After", nil), func(codec.Frame, error) {})
			if written {
				t.Fatal("Send on a broken connection reports written")
			}
			wantCode(t, err, tt.code)
		})
	}
}

// faultyConn is a client end whose writes the test controls.
type faultyConn struct {
	net.Conn
	// failAfter, when not negative, makes the next write pass that many
	// bytes and then fail with errInjected.
	failAfter atomic.Int64
	// chunk, when not 0, cuts every write into pieces of that many bytes,
	// yielding the processor between them, as a short-writing socket would.
	chunk int
	// beforeWrite, if set, runs before every write.
	beforeWrite func()
}

// CloseWrite shuts the write side of the wrapped TCP connection.
func (f *faultyConn) CloseWrite() error { return f.Conn.(*net.TCPConn).CloseWrite() }

func newFaultyConn(nc net.Conn) *faultyConn {
	f := &faultyConn{Conn: nc}
	f.failAfter.Store(-1)
	return f
}

func (f *faultyConn) Write(p []byte) (int, error) {
	if f.beforeWrite != nil {
		f.beforeWrite()
	}
	if k := f.failAfter.Swap(-1); k >= 0 {
		n, err := f.Conn.Write(p[:k])
		if err != nil {
			return n, err
		}
		return n, errInjected
	}
	if f.chunk == 0 {
		return f.Conn.Write(p)
	}
	written := 0
	for len(p) > 0 {
		k := min(f.chunk, len(p))
		n, err := f.Conn.Write(p[:k])
		written += n
		if err != nil {
			return written, err
		}
		p = p[k:]
		runtime.Gosched()
	}
	return written, nil
}

// TestConnWriteErrorStopsSending: a write that fails ends sending on the
// connection, not the calls sent before it, whose answers may be on the
// way. The call whose frame the write carried fails through its Done:
// never sent when no byte of its frame left, so that it may go again
// elsewhere, and otherwise with the write's error. The connection leaves
// the group, a new Send fails, the write side is shut (the peer reads to
// the end and sees no request in a frame cut short), an answer that comes
// afterwards is delivered, and the calls left when the peer closes fail
// with code 14.
func TestConnWriteErrorStopsSending(t *testing.T) {
	tests := []struct {
		name      string
		failAfter int64
		// cut says whether the peer received part of a frame.
		cut bool
	}{
		{"before any byte", 0, false},
		{"mid-frame", 10, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fc *faultyConn
			c, p, h := pipe(t, Config{}, func(nc net.Conn) net.Conn { fc = newFaultyConn(nc); return fc })
			seqs, chans := sendCalls(t, c, p, 2)
			fc.failAfter.Store(tt.failAfter)
			done, ch := recorder()
			seq, _, err := c.Send(context.Background(), reqFrame(t, "Failing", nil), done)
			if err != nil || seq == 0 {
				t.Fatalf("Send = %d, %v; want the call queued", seq, err)
			}
			r := await(t, ch)
			wantCode(t, r.err, codes.Unavailable)
			if tt.cut != errors.Is(r.err, errInjected) || tt.cut == errors.Is(r.err, ErrNotSent) {
				t.Fatalf("the failed write's call ended with %v; want the write's error if its frame was cut, else ErrNotSent", r.err)
			}
			waitFor(t, "the connection to leave the group", func() bool { return h.broken.Load() == 1 })
			if _, _, err := c.Send(context.Background(), reqFrame(t, "After", nil), func(codec.Frame, error) {
				t.Error("the Done of a Send after the failed write ran")
			}); !errors.Is(err, errInjected) {
				t.Fatalf("a Send after the failed write: %v, want the write's error", err)
			}
			// The peer reads to the end of what was sent: the write side
			// is shut, and a frame cut short is never taken for a request.
			err = p.waitClosed(t)
			if tt.cut && !errors.Is(err, io.ErrUnexpectedEOF) || !tt.cut && !errors.Is(err, io.EOF) {
				t.Fatalf("the peer's reader ended with %v", err)
			}
			// An answer sent after the failed write still reaches its call.
			p.answer(t, seqs[0], "first")
			if r := await(t, chans[0]); r.err != nil || payloadOf(t, r.f) != "first" {
				t.Fatalf("the call answered after the failed write got %+v", r)
			}
			// The peer closes: the call it did not answer fails.
			p.nc.Close()
			r = await(t, chans[1])
			wantCode(t, r.err, codes.Unavailable)
			// Every call ended once.
			wantNoResult(t, ch)
			wantNoResult(t, chans[0])
			if got := h.broken.Load(); got != 1 {
				t.Fatalf("onBroken ran %d times, want 1", got)
			}
			if got := c.Streams(); got != 0 {
				t.Fatalf("Streams() = %d, want 0", got)
			}
			waitFor(t, "every call to be released", func() bool { return h.released.Load() == 3 })
			select {
			case <-c.readerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the reader did not end with the connection")
			}
		})
	}
}

// TestConnNothingFollowsCutFrame: a call queued while another call's write
// fails mid-frame writes nothing: its bytes would be read as the rest of
// the cut request. It fails as never sent, with code 14, and can go on
// another connection.
func TestConnNothingFollowsCutFrame(t *testing.T) {
	var fc *faultyConn
	c, _, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn { fc = newFaultyConn(nc); return fc })
	var writes atomic.Int32
	proceed := make(chan struct{})
	fc.beforeWrite = func() {
		if writes.Add(1) == 1 {
			<-proceed // the failing write waits for the next call to queue up
		}
	}
	fc.failAfter.Store(10)
	failingDone, failing := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Failing", nil), failingDone); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitFor(t, "the failing write to begin", func() bool { return writes.Load() == 1 })
	nextDone, next := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Next", nil), nextDone); err != nil {
		t.Fatalf("Send: %v", err)
	}
	close(proceed)

	if r := await(t, failing); !errors.Is(r.err, errInjected) {
		t.Errorf("the cut call ended with %v, want the write's error", r.err)
	}
	r := await(t, next)
	wantCode(t, r.err, codes.Unavailable)
	if !errors.Is(r.err, ErrNotSent) {
		t.Errorf("the next call ended with %v, want ErrNotSent", r.err)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("%d writes after the cut frame, want none", n-1)
	}
}

// TestConnBreakLeavesQueuedNotSent: when the reader finds the connection
// broken while calls wait in the queue behind a write, those calls were
// never sent: they fail with ErrNotSent, to be sent again elsewhere, and
// only the call written whole fails with the connection's error.
func TestConnBreakLeavesQueuedNotSent(t *testing.T) {
	var fc *faultyConn
	c, p, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn { fc = newFaultyConn(nc); return fc })
	sentDone, sent := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Sent", nil), sentDone); err != nil {
		t.Fatalf("Send: %v", err)
	}
	p.next(t)

	// The next write waits, holding the queue, until the connection has
	// broken.
	var writes atomic.Int32
	proceed := make(chan struct{})
	fc.beforeWrite = func() {
		if writes.Add(1) == 1 {
			<-proceed
		}
	}
	waitingDone, waiting := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Waiting", nil), waitingDone); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitFor(t, "the write to begin", func() bool { return writes.Load() == 1 })
	queuedDone, queued := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Queued", nil), queuedDone); err != nil {
		t.Fatalf("Send: %v", err)
	}
	// The peer goes away: the reader sees the end first.
	p.nc.Close()
	waitBroken(t, c)
	close(proceed)

	r := await(t, sent)
	wantCode(t, r.err, codes.Unavailable)
	if errors.Is(r.err, ErrNotSent) {
		t.Errorf("the call written whole ended with %v: it may have run", r.err)
	}
	for name, ch := range map[string]chan result{"waiting to be written": waiting, "queued": queued} {
		r := await(t, ch)
		wantCode(t, r.err, codes.Unavailable)
		if !errors.Is(r.err, ErrNotSent) {
			t.Errorf("the call %s ended with %v, want ErrNotSent", name, r.err)
		}
	}
	wantNoResult(t, sent)
	wantNoResult(t, waiting)
	wantNoResult(t, queued)
}

// TestConnStoppedClosesWhenDrained: a connection whose sending stopped
// closes itself once the last call sent before the failed write has left,
// answered or cancelled, even while the peer keeps its end open.
func TestConnStoppedClosesWhenDrained(t *testing.T) {
	for _, last := range []string{"answered", "cancelled"} {
		t.Run(last, func(t *testing.T) {
			var fc *faultyConn
			c, p, h := pipe(t, Config{}, func(nc net.Conn) net.Conn { fc = newFaultyConn(nc); return fc })
			seqs, chans := sendCalls(t, c, p, 2)
			fc.failAfter.Store(0)
			done, ch := recorder()
			if _, _, err := c.Send(context.Background(), reqFrame(t, "Failing", nil), done); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if r := await(t, ch); !errors.Is(r.err, ErrNotSent) {
				t.Fatalf("the failed write's call ended with %v, want ErrNotSent", r.err)
			}
			p.answer(t, seqs[0], "first")
			if r := await(t, chans[0]); r.err != nil {
				t.Fatalf("first call: %v", r.err)
			}
			select {
			case <-c.readerDone:
				t.Fatal("the connection closed with a call still waiting")
			default:
			}
			if last == "answered" {
				p.answer(t, seqs[1], "second")
				if r := await(t, chans[1]); r.err != nil {
					t.Fatalf("second call: %v", r.err)
				}
			} else if !c.Cancel(seqs[1]) {
				t.Fatal("Cancel found no call")
			}
			select {
			case <-c.readerDone:
			case <-time.After(5 * time.Second):
				t.Fatal("the connection stayed open after its last call left")
			}
			if got := h.broken.Load(); got != 1 {
				t.Fatalf("onBroken ran %d times, want 1", got)
			}
		})
	}
}

// TestConnWriteErrorNothingWaiting: a write that fails on a connection
// that carries no other call closes it at once: nothing is left to read.
func TestConnWriteErrorNothingWaiting(t *testing.T) {
	var fc *faultyConn
	c, p, h := pipe(t, Config{}, func(nc net.Conn) net.Conn { fc = newFaultyConn(nc); return fc })
	fc.failAfter.Store(0)
	done, ch := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Failing", nil), done); err != nil {
		t.Fatalf("Send: %v", err)
	}
	if r := await(t, ch); !errors.Is(r.err, ErrNotSent) {
		t.Fatalf("the call ended with %v, want ErrNotSent", r.err)
	}
	select {
	case <-c.readerDone:
	case <-time.After(5 * time.Second):
		t.Fatal("the connection was not closed")
	}
	if err := p.waitClosed(t); !errors.Is(err, io.EOF) {
		t.Fatalf("the peer's reader ended with %v", err)
	}
	if got := h.broken.Load(); got != 1 {
		t.Fatalf("onBroken ran %d times, want 1", got)
	}
	wantNoResult(t, ch)
}

// TestConnBreaksDuringSend: when the connection breaks between a Send
// registering its call and writing it, the call ends exactly once: either
// Send returns the error, or Done receives it, never both.
func TestConnBreaksDuringSend(t *testing.T) {
	var c *Conn
	var fc *faultyConn
	var raw net.Conn
	var armed atomic.Bool
	c, p, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn {
		raw = nc
		fc = newFaultyConn(nc)
		return fc
	})
	fc.beforeWrite = func() {
		if !armed.Load() {
			return
		}
		// The connection breaks under the write, and the reader finds out
		// first (it then waits for the write to end before it ends the
		// calls).
		raw.Close()
		for {
			c.mu.Lock()
			broken := c.broken != nil
			c.mu.Unlock()
			if broken {
				break
			}
			runtime.Gosched()
		}
	}
	other, otherCh := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Other", nil), other); err != nil {
		t.Fatal(err)
	}
	p.next(t)
	armed.Store(true)
	var dones atomic.Int64
	results := make(chan result, 2)
	seq, written, err := c.Send(context.Background(), reqFrame(t, "Broken", nil), func(f codec.Frame, err error) {
		dones.Add(1)
		results <- result{f, err}
	})
	r := await(t, otherCh)
	wantCode(t, r.err, codes.Unavailable)
	switch {
	case err != nil && dones.Load() == 0:
		wantCode(t, err, codes.Unavailable)
		if written {
			t.Fatal("Send wrote nothing but reports written")
		}
	case err == nil && dones.Load() == 1:
		r := await(t, results)
		wantCode(t, r.err, codes.Unavailable)
		if seq == 0 {
			t.Fatal("Send returned no error and id 0")
		}
	default:
		t.Fatalf("the call ended %d times through Done and Send returned %v: want exactly one", dones.Load(), err)
	}
}

// TestConnConcurrentSends: frames sent from many goroutines at once reach
// the wire whole, even over a socket that takes a few bytes per write, and
// every response goes to the call that asked for it.
func TestConnConcurrentSends(t *testing.T) {
	const (
		senders = 16
		calls   = 40
	)
	c, p, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn {
		fc := newFaultyConn(nc)
		fc.chunk = 61
		return fc
	})
	// The peer checks every frame: its body must be its method name
	// repeated, and no two calls in flight may share an id. It answers
	// what it has read in batches, last first, so that responses come out
	// of order.
	peerDone := make(chan error, 1)
	go func() { peerDone <- checkFrames(p, senders*calls) }()

	var wg sync.WaitGroup
	errs := make(chan error, senders)
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range calls {
				method := fmt.Sprintf("g%d-%d", g, i)
				ch := make(chan result, 2)
				_, _, err := c.Send(context.Background(), reqFrame(t, method, payloadFor(method)), func(f codec.Frame, err error) { ch <- result{f, err} })
				if err != nil {
					errs <- fmt.Errorf("%s: Send: %w", method, err)
					return
				}
				select {
				case r := <-ch:
					if r.err != nil {
						errs <- fmt.Errorf("%s: %w", method, r.err)
						return
					}
					var reply echo.EchoReply
					if err := proto.Unmarshal(r.f.Body, &reply); err != nil || string(reply.Payload) != method {
						errs <- fmt.Errorf("%s got the response for %q (%v)", method, reply.Payload, err)
						return
					}
				case <-time.After(10 * time.Second):
					errs <- fmt.Errorf("%s: no response", method)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if err := <-peerDone; err != nil {
		t.Fatalf("peer: %v", err)
	}
	if got := c.Dropped(); got != 0 {
		t.Fatalf("Dropped() = %d, want 0", got)
	}
}

// checkFrames reads n request frames from p, checks each, and answers it
// with its method name.
func checkFrames(p *peer, n int) error {
	inFlight := make(map[uint32]bool)
	read := 0
	for read < n {
		var batch []codec.Frame
		select {
		case f := <-p.frames:
			batch = append(batch, f)
		case <-p.ended:
			return fmt.Errorf("after %d frames: %w", read, p.endErr)
		case <-time.After(10 * time.Second):
			return fmt.Errorf("after %d frames: no more", read)
		}
	more:
		for {
			select {
			case f := <-p.frames:
				batch = append(batch, f)
			default:
				break more
			}
		}
		var out []byte
		for i := len(batch) - 1; i >= 0; i-- {
			f := batch[i]
			read++
			rm, err := codec.DecodeRequestMeta(f.Meta)
			if err != nil {
				return err
			}
			var req echo.EchoRequest
			if err := proto.Unmarshal(f.Body, &req); err != nil {
				return fmt.Errorf("frame %s: body: %w", rm.Method, err)
			}
			if want := payloadFor(rm.Method); !bytes.Equal(req.Payload, want) {
				return fmt.Errorf("frame %s: body %.40q… (%d bytes) is not what was sent (%d bytes)", rm.Method, req.Payload, len(req.Payload), len(want))
			}
			if inFlight[f.Seq] {
				return fmt.Errorf("frame %s: id %d is already in flight", rm.Method, f.Seq)
			}
			inFlight[f.Seq] = true
			out, err = codec.AppendFrame(out, codec.TypeResponse, f.Seq, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte(rm.Method)}, 64<<20)
			if err != nil {
				return err
			}
		}
		for _, f := range batch {
			delete(inFlight, f.Seq)
		}
		p.wmu.Lock()
		_, err := p.nc.Write(out)
		p.wmu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// payloadFor returns the request payload the concurrent test sends for a
// method: its name repeated, a different length for each.
func payloadFor(method string) []byte {
	n := 0
	for _, r := range method {
		n = n*31 + int(r)
	}
	return []byte(strings.Repeat(method, n%97))
}

// TestConnClose: Close fails the calls in flight, ends the reader, and may
// be called twice.
func TestConnClose(t *testing.T) {
	c, p, h := pipe(t, Config{}, nil)
	done, ch := recorder()
	if _, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done); err != nil {
		t.Fatal(err)
	}
	p.next(t)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	wantCode(t, await(t, ch).err, codes.Unavailable)
	select {
	case <-c.readerDone:
	default:
		t.Fatal("Close returned before the reader ended")
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := h.broken.Load(); got != 1 {
		t.Fatalf("onBroken ran %d times, want 1", got)
	}
	p.waitClosed(t)
	_, written, err := c.Send(context.Background(), reqFrame(t, "After", nil), done)
	if written {
		t.Fatal("Send after Close reports written")
	}
	wantCode(t, err, codes.Unavailable)
	wantNoResult(t, ch)
}

// TestConnIdleSince: a connection is idle only while it carries no call
// and is not broken.
func TestConnIdleSince(t *testing.T) {
	c, p, _ := pipe(t, Config{}, nil)
	before := c.idleSince()
	if before.IsZero() {
		t.Fatal("a new connection is not idle")
	}
	done, ch := recorder()
	seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
	if err != nil {
		t.Fatal(err)
	}
	if !c.idleSince().IsZero() {
		t.Fatal("a connection carrying a call is idle")
	}
	p.next(t)
	p.answer(t, seq, "x")
	await(t, ch)
	if since := c.idleSince(); since.IsZero() || since.Before(before) {
		t.Fatalf("idleSince() after the call = %v, want a time after %v", since, before)
	}
	c.Close()
	if !c.idleSince().IsZero() {
		t.Fatal("a closed connection is idle")
	}
}

// TestConnMarkRetires: a response marked connection: close retires the
// connection, also when nobody waits for it any more (its caller gave up):
// the server will read nothing more on it, whoever asked.
func TestConnMarkRetires(t *testing.T) {
	marked := &meta.ResponseMeta{Metadata: map[string]string{rpc.ConnectionKey: rpc.ConnectionClose}}
	for _, waited := range []bool{true, false} {
		t.Run(fmt.Sprintf("waited=%v", waited), func(t *testing.T) {
			c, p, _ := pipe(t, Config{}, nil)
			done, ch := recorder()
			seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
			if err != nil {
				t.Fatal(err)
			}
			p.next(t)
			if !waited && !c.Cancel(seq) {
				t.Fatal("Cancel found no call")
			}
			// An unmarked response with meta first: no retirement.
			p.write(t, respFrame(t, seq+100, &meta.ResponseMeta{Code: 5, Message: "x"}, nil))
			waitFor(t, "the stray response to be dropped", func() bool { return c.Dropped() == 1 })
			if c.retired.Load() {
				t.Fatal("a response without the mark retired the connection")
			}
			p.write(t, respFrame(t, seq, marked, nil))
			if waited {
				if r := await(t, ch); r.err != nil {
					t.Fatal(r.err)
				}
			} else {
				waitFor(t, "the response to be dropped", func() bool { return c.Dropped() == 2 })
			}
			if !c.retired.Load() {
				t.Fatal("the marked response did not retire the connection")
			}
		})
	}
}

// sendCalls sends n calls on c, each read by the peer before the next, and
// returns their sequence ids and where their results arrive.
func sendCalls(t *testing.T, c *Conn, p *peer, n int) ([]uint32, []chan result) {
	t.Helper()
	var seqs []uint32
	var chans []chan result
	for range n {
		done, ch := recorder()
		seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
		if err != nil {
			t.Fatal(err)
		}
		p.next(t)
		seqs = append(seqs, seq)
		chans = append(chans, ch)
	}
	return seqs, chans
}

// TestConnLoneCallWritesItself: a call alone on a connection writes its
// frame itself, at once; a call that shares the connection leaves its
// frame to the writer goroutine; a frame the socket does not take at once
// is finished by the writer; and a connection that is not a socket of the
// runtime has no such path.
func TestConnLoneCallWritesItself(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no write without waiting on " + runtime.GOOS)
	}
	t.Run("one call at a time", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		for i := range 3 {
			done, ch := recorder()
			seq, _, err := c.Send(context.Background(), reqFrame(t, fmt.Sprint("lone", i), nil), done)
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SentAlone(); got != uint64(i+1) {
				t.Fatalf("call %d: SentAlone() = %d as Send returns, want %d", i, got, i+1)
			}
			if f := p.next(t); f.Seq != seq {
				t.Fatalf("peer read seq %d, want %d", f.Seq, seq)
			}
			p.answer(t, seq, "ok")
			if r := await(t, ch); r.err != nil {
				t.Fatal(r.err)
			}
		}
	})
	t.Run("two calls in flight", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		var seqs []uint32
		var chans []chan result
		for i := range 2 {
			done, ch := recorder()
			seq, _, err := c.Send(context.Background(), reqFrame(t, fmt.Sprint("shared", i), nil), done)
			if err != nil {
				t.Fatal(err)
			}
			seqs, chans = append(seqs, seq), append(chans, ch)
		}
		for _, seq := range seqs {
			if f := p.next(t); f.Seq != seq {
				t.Fatalf("peer read seq %d, want %d", f.Seq, seq)
			}
		}
		if got := c.SentAlone(); got != 1 {
			t.Fatalf("SentAlone() = %d, want 1: the second call shares the connection", got)
		}
		for i, seq := range seqs {
			p.answer(t, seq, "ok")
			if r := await(t, chans[i]); r.err != nil {
				t.Fatal(r.err)
			}
		}
	})
	t.Run("a frame larger than the socket takes at once", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20) // 32 MiB
		done, ch := recorder()
		seq, _, err := c.Send(context.Background(), reqFrame(t, "big", big), done)
		if err != nil {
			t.Fatal(err)
		}
		f := p.next(t)
		var req echo.EchoRequest
		if err := proto.Unmarshal(f.Body, &req); err != nil || f.Seq != seq || !bytes.Equal(req.Payload, big) {
			t.Fatalf("peer read seq %d with %d bytes of payload (%v), want seq %d with the 32 MiB sent", f.Seq, len(req.Payload), err, seq)
		}
		if got := c.SentAlone(); got != 1 {
			t.Fatalf("SentAlone() = %d, want 1", got)
		}
		p.answer(t, seq, "ok")
		if r := await(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
	})
	t.Run("not a socket of the runtime", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn { return struct{ net.Conn }{nc} })
		done, ch := recorder()
		seq, _, err := c.Send(context.Background(), reqFrame(t, "wrapped", nil), done)
		if err != nil {
			t.Fatal(err)
		}
		p.next(t)
		p.answer(t, seq, "ok")
		if r := await(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
		if got := c.SentAlone(); got != 0 {
			t.Fatalf("SentAlone() = %d, want 0", got)
		}
	})
}

// goReadOwn runs ReadOwn on a goroutine of its own; the channel is closed
// when it returns.
func goReadOwn(c *Conn, seq uint32) chan struct{} {
	returned := make(chan struct{})
	go func() {
		defer close(returned)
		c.ReadOwn(seq)
	}()
	return returned
}

// readingOwn runs ReadOwn on a goroutine of its own, and returns once it
// reads the connection; the channel is closed when it returns.
func readingOwn(t *testing.T, c *Conn, seq uint32) chan struct{} {
	t.Helper()
	n := c.ReadAlone()
	returned := goReadOwn(c, seq)
	waitFor(t, "ReadOwn reading", func() bool { return c.ReadAlone() == n+1 })
	return returned
}

// waitReturned waits for a goReadOwn to return.
func waitReturned(t *testing.T, returned chan struct{}) {
	t.Helper()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("ReadOwn did not return within 5 s")
	}
}

func TestConnLoneCallReadsItself(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("no write without waiting on " + runtime.GOOS)
	}
	t.Run("one call at a time", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		for i := range 3 {
			done, ch := recorder()
			seq, _, err := c.SendOwn(context.Background(), reqFrame(t, fmt.Sprint("lone", i), nil), done)
			if err != nil {
				t.Fatal(err)
			}
			// Answered once ReadOwn reads, not before: the reader goroutine
			// could take a response that comes first.
			returned := readingOwn(t, c, seq)
			p.next(t)
			p.answer(t, seq, fmt.Sprint("reply", i))
			waitReturned(t, returned)
			// The response came to ReadOwn, which ran Done before returning.
			select {
			case r := <-ch:
				if r.err != nil || payloadOf(t, r.f) != fmt.Sprint("reply", i) {
					t.Fatalf("call %d: got %q, %v", i, payloadOf(t, r.f), r.err)
				}
			default:
				t.Fatalf("call %d: ReadOwn returned before the call's Done ran", i)
			}
		}
	})
	t.Run("the reader goes on when the calls stop", func(t *testing.T) {
		c, p, h := pipe(t, Config{}, nil)
		done, ch := recorder()
		seq, _, err := c.SendOwn(context.Background(), reqFrame(t, "lone", nil), done)
		if err != nil {
			t.Fatal(err)
		}
		returned := goReadOwn(c, seq)
		p.next(t)
		p.answer(t, seq, "ok")
		waitReturned(t, returned)
		await(t, ch)
		// Nobody calls now: the reader goroutine must read what comes.
		p.answer(t, seq, "again")
		waitFor(t, "the duplicate dropped", func() bool { return c.Dropped() == 1 })
		p.nc.Close()
		waitFor(t, "the connection broken", func() bool { return h.broken.Load() == 1 })
	})
	t.Run("a call sent with Send is read while the connection was left to ReadOwn", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		c.idleRead = time.Hour // only Send can wake the reader
		for i := range 20 {
			done, ch := recorder()
			seq, _, err := c.SendOwn(context.Background(), reqFrame(t, "lone", nil), done)
			if err != nil {
				t.Fatal(err)
			}
			returned := goReadOwn(c, seq)
			p.next(t)
			p.answer(t, seq, "ok")
			waitReturned(t, returned)
			await(t, ch)
			done, ch = recorder()
			seq, _, err = c.Send(context.Background(), reqFrame(t, "queued", nil), done)
			if err != nil {
				t.Fatal(err)
			}
			p.next(t)
			p.answer(t, seq, fmt.Sprint("queued", i))
			if r := await(t, ch); r.err != nil || payloadOf(t, r.f) != fmt.Sprint("queued", i) {
				t.Fatalf("round %d: got %+v", i, r)
			}
		}
	})
	t.Run("cancelled inside a response", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		resp := respFrame(t, 0, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte("the answer nobody waits for")})
		for i, cut := range []int{3, codec.HeaderLen, codec.HeaderLen + 5, len(resp) - 1} {
			done, ch := recorder()
			seq, _, err := c.SendOwn(context.Background(), reqFrame(t, "cancelled", nil), done)
			if err != nil {
				t.Fatal(err)
			}
			returned := readingOwn(t, c, seq)
			p.next(t)
			late := bytes.Clone(resp)
			binary.BigEndian.PutUint32(late[4:8], seq)
			p.write(t, late[:cut])
			if !c.Cancel(seq) {
				t.Fatalf("cut %d: Cancel = false, want true", cut)
			}
			waitReturned(t, returned)
			wantNoResult(t, ch)
			p.write(t, late[cut:])
			// The rest of the cut frame is dropped, and the next call gets
			// its own response: nothing read before the Cancel was lost.
			done, ch = recorder()
			seq, _, err = c.SendOwn(context.Background(), reqFrame(t, "next", nil), done)
			if err != nil {
				t.Fatal(err)
			}
			returned = goReadOwn(c, seq)
			p.next(t)
			p.answer(t, seq, fmt.Sprint("next", i))
			waitReturned(t, returned)
			if r := await(t, ch); r.err != nil || payloadOf(t, r.f) != fmt.Sprint("next", i) {
				t.Fatalf("cut %d: the next call got %+v", cut, r)
			}
			if got := c.Dropped(); got != uint64(i+1) {
				t.Fatalf("cut %d: Dropped() = %d, want %d", cut, got, i+1)
			}
		}
	})
	t.Run("the connection breaks while it reads", func(t *testing.T) {
		c, p, h := pipe(t, Config{}, nil)
		done, ch := recorder()
		seq, _, err := c.SendOwn(context.Background(), reqFrame(t, "lone", nil), done)
		if err != nil {
			t.Fatal(err)
		}
		returned := readingOwn(t, c, seq)
		p.next(t)
		p.nc.Close()
		waitReturned(t, returned)
		wantCode(t, await(t, ch).err, codes.Unavailable)
		if h.broken.Load() != 1 {
			t.Fatalf("onBroken ran %d times, want 1", h.broken.Load())
		}
	})
	t.Run("two calls in flight", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, nil)
		doneA, chA := recorder()
		seqA, _, err := c.SendOwn(context.Background(), reqFrame(t, "a", nil), doneA)
		if err != nil {
			t.Fatal(err)
		}
		returnedA := readingOwn(t, c, seqA)
		p.next(t)
		doneB, chB := recorder()
		seqB, _, err := c.SendOwn(context.Background(), reqFrame(t, "b", nil), doneB)
		if err != nil {
			t.Fatal(err)
		}
		p.next(t)
		// B shares the connection: its ReadOwn leaves the reading to others.
		waitReturned(t, goReadOwn(c, seqB))
		p.answer(t, seqB, "for b")
		p.answer(t, seqA, "for a")
		waitReturned(t, returnedA)
		if r := await(t, chA); r.err != nil || payloadOf(t, r.f) != "for a" {
			t.Fatalf("a got %+v", r)
		}
		if r := await(t, chB); r.err != nil || payloadOf(t, r.f) != "for b" {
			t.Fatalf("b got %+v", r)
		}
		if got := c.ReadAlone(); got != 1 {
			t.Fatalf("ReadAlone() = %d, want 1", got)
		}
	})
	t.Run("not a socket of the runtime", func(t *testing.T) {
		c, p, _ := pipe(t, Config{}, func(nc net.Conn) net.Conn { return struct{ net.Conn }{nc} })
		done, ch := recorder()
		seq, _, err := c.SendOwn(context.Background(), reqFrame(t, "wrapped", nil), done)
		if err != nil {
			t.Fatal(err)
		}
		waitReturned(t, goReadOwn(c, seq))
		p.next(t)
		p.answer(t, seq, "ok")
		if r := await(t, ch); r.err != nil {
			t.Fatal(r.err)
		}
		if got := c.ReadAlone(); got != 0 {
			t.Fatalf("ReadAlone() = %d, want 0", got)
		}
	})
}

// TestConnSendRacingBreak: a Send that finds the connection whole, and
// pushes its frame only as the connection breaks, ends with ErrNotSent,
// since not a byte of it was written: the break waits for the push, and
// settles the frame with the rest of the queue. (Failed with the break's
// own error, the call would count as one that may have run.)
func TestConnSendRacingBreak(t *testing.T) {
	c, p, _ := pipe(t, Config{}, nil)
	atPush := make(chan struct{})
	proceed := make(chan struct{})
	c.beforePush = func() {
		close(atPush)
		<-proceed
	}
	done, ch := recorder()
	sent := make(chan error, 1)
	go func() {
		_, _, err := c.Send(context.Background(), reqFrame(t, "Racing", nil), done)
		sent <- err
	}()
	select {
	case <-atPush:
	case <-time.After(5 * time.Second):
		t.Fatal("the Send did not reach its push")
	}
	// The peer goes away while the Send is between its check and its
	// push: the reader breaks the connection.
	p.nc.Close()
	waitBroken(t, c)
	close(proceed)
	if err := <-sent; err != nil {
		t.Fatalf("Send: %v; want the call's end to report it", err)
	}
	r := await(t, ch)
	wantCode(t, r.err, codes.Unavailable)
	if !errors.Is(r.err, ErrNotSent) {
		t.Fatalf("the call ended with %v, want ErrNotSent", r.err)
	}
	wantNoResult(t, ch)
}

// waitBroken waits for c's reader to mark it broken.
func waitBroken(t *testing.T, c *Conn) {
	t.Helper()
	waitFor(t, "the reader to break the connection", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.broken != nil
	})
}
