package poller

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

// partialFrames takes nothing: whatever arrives is the start of a frame
// that needs more bytes.
type partialFrames struct{}

func (partialFrames) OnOpen(*Conn)       {}
func (partialFrames) OnClose(*Conn)      {}
func (partialFrames) OnPeerClosed(*Conn) {}
func (partialFrames) OnRead(_ *Conn, in []byte) (int, int, error) {
	return 0, len(in) + 100, nil
}

// TestUnreportedInputIsNotIdle: a connection whose input epoll has not
// reported yet (adopted a moment ago, or its request arriving as its idle
// timeout runs out) is not idle. A draining engine, or the idle timeout,
// that closed it would drop the request on its way: a shutdown must answer
// it 14, an idle connection serve it.
func TestUnreportedInputIsNotIdle(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		setup func(e *Engine, c *Conn)
	}{
		{"draining", Config{}, func(e *Engine, _ *Conn) { e.draining.Store(true) }},
		{"idle timeout", Config{IdleTimeout: time.Millisecond}, func(_ *Engine, c *Conn) {
			c.lastActive.Store(time.Now().Add(-time.Second).UnixNano())
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Loops = 1
			tt.cfg.Logger = slog.New(slog.DiscardHandler)
			e, err := NewEngine(tt.cfg, partialFrames{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.stopLoops()
			fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(fds[1])
			if _, err := unix.Write(fds[1], []byte("the start of a request")); err != nil {
				t.Fatal(err)
			}
			l := e.loops[0]
			type state struct {
				open bool
				in   int
			}
			got := make(chan state, 1)
			e.conns.Add(1)
			// One task on the loop: adopt the connection and check the
			// timeouts at once, before any epoll_wait can report its input.
			l.post(func() {
				c := newConn(l, fds[0])
				if err := l.ep.add(fds[0], c.events); err != nil {
					t.Error(err)
				}
				l.conns[fds[0]] = c
				tt.setup(e, c)
				l.checkTimeouts(time.Now())
				got <- state{open: !c.closed && !c.lingering, in: len(c.in)}
			})
			select {
			case s := <-got:
				if !s.open || s.in == 0 {
					t.Fatalf("open %v with %d bytes read; want open, with the request's start read", s.open, s.in)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("the loop did not run the task")
			}
		})
	}
}

// fixedFrames reads frames of one size, the way the server does once a
// header has promised that many bytes: until they are all there, the input
// is the start of a frame that needs them. Only the loop goroutine uses
// it.
type fixedFrames struct {
	size int
	// frames counts the whole frames read.
	frames int
}

func (*fixedFrames) OnOpen(*Conn)       {}
func (*fixedFrames) OnClose(*Conn)      {}
func (*fixedFrames) OnPeerClosed(*Conn) {}
func (h *fixedFrames) OnRead(_ *Conn, in []byte) (int, int, error) {
	n := len(in) / h.size
	h.frames += n
	return n * h.size, h.size, nil
}

// TestInputGrowsWithArrivals: a connection's own buffer grows with the
// bytes that arrive, doubling, never to more than its frame needs, and not
// at once to the size the frame's header promised: sixteen bytes promising
// 4 MiB cost a few KiB. The frame, once whole, is read whole, and its big
// buffer goes.
func TestInputGrowsWithArrivals(t *testing.T) {
	const size = 4 << 20
	h := &fixedFrames{size: size}
	e, err := NewEngine(Config{Loops: 1, Logger: slog.New(slog.DiscardHandler)}, h)
	if err != nil {
		t.Fatal(err)
	}
	defer e.stopLoops()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	l := e.loops[0]
	// onLoop runs f on the loop goroutine and waits for it.
	onLoop := func(f func()) {
		t.Helper()
		done := make(chan struct{})
		l.post(func() {
			defer close(done)
			f()
		})
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("the loop did not run the task")
		}
	}
	var c *Conn
	e.conns.Add(1)
	onLoop(func() {
		c = newConn(l, fds[0])
		if err := l.ep.add(fds[0], c.events); err != nil {
			t.Error(err)
		}
		l.conns[fds[0]] = c
	})
	// input reads what has arrived and returns the connection's buffer.
	input := func() (n, capacity int) {
		onLoop(func() {
			l.read(c)
			n, capacity = len(c.in), cap(c.in)
		})
		return n, capacity
	}

	// The header alone.
	if _, err := unix.Write(fds[1], make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	if n, capacity := input(); n != 16 || capacity > 2*minInput {
		t.Fatalf("after a header promising %d bytes: %d bytes held in a buffer of %d, want 16 in at most %d",
			size, n, capacity, 2*minInput)
	}

	// The rest, 64 KiB at a time.
	chunk := make([]byte, 64<<10)
	for sent := 16; sent < size; {
		w, err := unix.Write(fds[1], chunk[:min(len(chunk), size-sent)])
		if err != nil && err != unix.EAGAIN {
			t.Fatal(err)
		}
		sent += max(w, 0)
		n, capacity := input()
		if n == 0 {
			break // the frame is whole
		}
		if capacity > max(2*n, minInput) || capacity > size {
			t.Fatalf("%d bytes held in a buffer of %d, want at most twice what arrived and at most %d", n, capacity, size)
		}
	}
	var frames, held int
	onLoop(func() { frames, held = h.frames, cap(c.in) })
	if frames != 1 || held != 0 {
		t.Fatalf("%d frames read, a buffer of %d left; want the one frame and no buffer", frames, held)
	}
}

// stopAfterOne takes the first four bytes of a connection as a call, holds
// it, hands the connection to the test, and stops reading: the way the
// server refuses a request as it shuts down, or a frame it cannot frame.
type stopAfterOne struct{ conns chan *Conn }

func (*stopAfterOne) OnOpen(*Conn)       {}
func (*stopAfterOne) OnClose(*Conn)      {}
func (*stopAfterOne) OnPeerClosed(*Conn) {}
func (h *stopAfterOne) OnRead(c *Conn, in []byte) (int, int, error) {
	if len(in) < 4 {
		return 0, 4, nil
	}
	c.Hold(4)
	h.conns <- c
	return 4, 0, errors.New("stop reading")
}

// TestStoppedReadingClosesGently: a connection whose handler stopped
// reading it, while its peer still sends, closes with a FIN after the
// last answer, and reads what the peer sends until the peer closes.
// Closed at once, with the peer's bytes unread, the kernel would send a
// reset instead, and throw away the answers it had not yet sent: the
// client of a server that refused a request as it shut down lost the
// answers to calls that had run.
func TestStoppedReadingClosesGently(t *testing.T) {
	defer goleak.VerifyNone(t)
	h := &stopAfterOne{conns: make(chan *Conn, 1)}
	e, err := NewEngine(Config{Loops: 1, Logger: slog.New(slog.DiscardHandler)}, h)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- e.Serve(lis) }()
	defer func() {
		e.Shutdown(context.Background())
		<-served
	}()

	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte("call")); err != nil {
		t.Fatal(err)
	}
	var c *Conn
	select {
	case c = <-h.conns:
	case <-time.After(5 * time.Second):
		t.Fatal("the call was not read")
	}
	// The peer goes on sending, and the server reads none of it.
	if _, err := nc.Write(make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	if !waitUntil(5*time.Second, func() bool {
		n, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
		return err == nil && n > 0
	}) {
		t.Fatal("the peer's bytes did not reach the server's socket")
	}
	// The call is answered: the connection has nothing owed, and closes.
	if err := c.Send([]byte("answer")); err != nil {
		t.Fatal(err)
	}
	c.Done(4)

	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(nc)
	if err != nil {
		t.Fatalf("read %q, then %v; want the answer, then the end of the stream (a FIN, not a reset)", got, err)
	}
	if string(got) != "answer" {
		t.Fatalf("read %q, want %q", got, "answer")
	}
	// The server reads and drops what the peer sends after its FIN, and
	// closes when the peer does.
	if _, err := nc.Write(make([]byte, 1000)); err != nil {
		t.Fatalf("a write after the server's FIN: %v", err)
	}
	nc.Close()
	if !waitUntil(5*time.Second, func() bool { return e.Stats().Conns == 0 }) {
		t.Fatal("the server did not close the connection after its peer did")
	}
}

// waitUntil polls cond until it holds, or d passes.
func waitUntil(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if cond() {
			return true
		}
	}
	return cond()
}
