package poller

import (
	"log/slog"
	"testing"
	"time"

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
