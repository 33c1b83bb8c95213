package poller

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestWakeAfterClose: a wake-up that comes after the epoll instance is
// closed (a connection's last Done, posted to a loop that has stopped)
// writes nothing: the eventfd's number may already belong to another
// file, and 8 stray bytes would go to whoever reads it.
func TestWakeAfterClose(t *testing.T) {
	p, err := newEpoll()
	if err != nil {
		t.Fatal(err)
	}
	wakeFD := p.wakeFD
	p.close()
	// The kernel hands out the lowest free number: open socket pairs
	// until one end has the eventfd's old number.
	other := -1
	for range 8 {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
		switch wakeFD {
		case fds[0]:
			other = fds[1]
		case fds[1]:
			other = fds[0]
		}
		if other >= 0 {
			break
		}
	}
	if other < 0 {
		t.Fatalf("no socket took the number %d", wakeFD)
	}
	p.wake()
	p.close() // twice is harmless
	var buf [16]byte
	if n, err := unix.Read(other, buf[:]); err != unix.EAGAIN {
		t.Fatalf("the socket that reuses the eventfd's number got % x (%v)", buf[:max(n, 0)], err)
	}
}
