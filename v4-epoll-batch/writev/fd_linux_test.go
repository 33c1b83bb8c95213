package writev

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// socketpair returns a connected pair of Unix stream sockets, the first
// non-blocking, both closed when the test ends.
func socketpair(t *testing.T) (w, r int) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	if err := unix.SetNonblock(fds[0], true); err != nil {
		t.Fatal(err)
	}
	return fds[0], fds[1]
}

// readN reads exactly n bytes from the blocking socket fd.
func readN(t *testing.T, fd, n int) []byte {
	t.Helper()
	buf := make([]byte, n)
	for got := 0; got < n; {
		k, err := unix.Read(fd, buf[got:])
		if err == unix.EINTR {
			continue
		}
		if err != nil || k == 0 {
			t.Fatalf("read after %d of %d bytes: %d, %v", got, n, k, err)
		}
		got += k
	}
	return buf
}

func TestFD(t *testing.T) {
	tests := []struct {
		name string
		bufs []string
	}{
		{"one buffer", []string{"hello"}},
		{"several buffers", []string{"ab", "cde", "f"}},
		{"empty buffers are skipped", []string{"", "ab", "", "", "c", ""}},
		{"only empty buffers", []string{"", ""}},
		{"no buffers", nil},
		{"more buffers than last time", []string{"1", "22", "333", "4444", "55555", "666666", "7777777"}},
	}
	w, r := socketpair(t)
	write := FD(w) // one WriteFunc for every case: its iovec array is reused
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bufs := make([][]byte, len(tt.bufs))
			want := ""
			for k, s := range tt.bufs {
				bufs[k] = []byte(s)
				want += s
			}
			n, wouldBlock, err := write(bufs)
			if n != len(want) || wouldBlock || err != nil {
				t.Fatalf("write(%q) = %d, %v, %v; want %d, false, nil", tt.bufs, n, wouldBlock, err, len(want))
			}
			if got := readN(t, r, n); string(got) != want {
				t.Fatalf("the peer read %q, want %q", got, want)
			}
		})
	}
}

// TestFDFullSocket checks what FD reports as a socket fills up: a short
// write takes part of the batch and says the socket would block; the next
// write takes nothing (EAGAIN) and says so, without an error.
func TestFDFullSocket(t *testing.T) {
	w, _ := socketpair(t)
	if err := unix.SetsockoptInt(w, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	write := FD(w)
	big := make([]byte, 1<<20)
	tests := []struct {
		name  string
		check func(n int) bool
	}{
		{"short write", func(n int) bool { return n > 0 && n < len(big) }},
		{"EAGAIN", func(n int) bool { return n == 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, wouldBlock, err := write([][]byte{big[:len(big)/2], big[len(big)/2:]})
			if !tt.check(n) || !wouldBlock || err != nil {
				t.Fatalf("write of 1 MiB = %d, %v, %v", n, wouldBlock, err)
			}
		})
	}
}

// TestFDBrokenPipe checks that a write to a socket whose peer has gone
// fails with the system call's error.
func TestFDBrokenPipe(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	unix.Close(fds[1])
	n, wouldBlock, err := FD(fds[0])([][]byte{[]byte("hello")})
	var se *os.SyscallError
	if n != 0 || wouldBlock || !errors.Is(err, unix.EPIPE) || !errors.As(err, &se) || se.Syscall != "writev" {
		t.Fatalf("write to a closed peer = %d, %v, %v; want 0, false, writev: EPIPE", n, wouldBlock, err)
	}
}

// countingFD wraps FD(fd), counting its calls and the calls that took
// nothing.
type countingFD struct {
	write WriteFunc
	calls atomic.Int64
	empty atomic.Int64
}

func (c *countingFD) do(bufs [][]byte) (int, bool, error) {
	if c.calls.Add(1) > maxFakeCalls {
		return 0, false, errSpinning
	}
	n, wouldBlock, err := c.write(bufs)
	if n == 0 {
		c.empty.Add(1)
	}
	return n, wouldBlock, err
}

// randomFrames cuts total random bytes into frames of 1 B to max bytes.
func randomFrames(total, max int) (stream []byte, frames [][]byte) {
	rng := rand.New(rand.NewChaCha8([32]byte{22}))
	stream = make([]byte, total)
	for k := 0; k < total; k += 8 {
		v := rng.Uint64()
		for j := 0; j < 8 && k+j < total; j++ {
			stream[k+j] = byte(v >> (8 * j))
		}
	}
	for rest := stream; len(rest) > 0; {
		n := min(1+rng.IntN(max), len(rest))
		frames = append(frames, rest[:n:n])
		rest = rest[n:]
	}
	return stream, frames
}

// TestReliability22ShortWriteAndEAGAIN fills a socket whose reader has
// stopped reading with 64 MiB of frames: the sender parks at the first
// full socket and only queues afterwards; once the reader reads again,
// Flush on each POLLOUT sends everything, in order, with no write call
// wasted.
func TestReliability22ShortWriteAndEAGAIN(t *testing.T) {
	w, r := socketpair(t)
	if err := unix.SetsockoptInt(w, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	stream, frames := randomFrames(64<<20, 256<<10)
	want := sha256.Sum256(stream)

	fd := &countingFD{write: FD(w)}
	rel := newReleaseLog()
	var blocked atomic.Int64
	s := NewSender(fd.do, Options{Release: rel.release, Blocked: func() { blocked.Add(1) }})
	for k, f := range frames {
		if _, err := s.Send(f); err != nil {
			t.Fatalf("Send of frame %d: %v", k, err)
		}
	}
	// Before the socket filled, each frame left in its own write; the
	// write that found it full parked the sender, and the Sends after it
	// only queued.
	_, written := s.Stats()
	if blocked.Load() != 1 || s.state.Load() != parked || fd.calls.Load() != int64(written)+1 {
		t.Fatalf("the reader stopped: Blocked %d, state %d, %d write calls for %d frames written; want 1, parked, %d",
			blocked.Load(), s.state.Load(), fd.calls.Load(), written, written+1)
	}
	if written == uint64(len(frames)) {
		t.Fatalf("all %d frames fit in the socket: the test does not fill it", len(frames))
	}
	// A wake-up while the socket is still full costs one write call,
	// which takes nothing.
	emptyAtPark := fd.empty.Load() // 1 if the parking write took nothing
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if blocked.Load() != 2 || fd.calls.Load() != int64(written)+2 || fd.empty.Load() != emptyAtPark+1 {
		t.Fatalf("a Flush on a full socket: Blocked %d, %d write calls (%d empty); want 2, %d (%d)",
			blocked.Load(), fd.calls.Load(), fd.empty.Load(), written+2, emptyAtPark+1)
	}
	emptyBefore := fd.empty.Load()

	type result struct {
		sum [sha256.Size]byte
		n   int
		err error
	}
	read := make(chan result, 1)
	go func() {
		h := sha256.New()
		buf := make([]byte, 1<<20)
		n := 0
		for n < len(stream) {
			k, err := unix.Read(r, buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil || k == 0 {
				read <- result{n: n, err: err}
				return
			}
			h.Write(buf[:k])
			n += k
		}
		var res result
		h.Sum(res.sum[:0])
		res.n = n
		read <- res
	}()

	pfd := []unix.PollFd{{Fd: int32(w), Events: unix.POLLOUT}}
	wakeups := 0
	for !s.Idle() {
		n, err := unix.Poll(pfd, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("poll for POLLOUT: %d, %v (not writable for 10 s?)", n, err)
		}
		if pfd[0].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
			t.Fatalf("poll: revents %#x", pfd[0].Revents)
		}
		wakeups++
		if err := s.Flush(); err != nil {
			t.Fatalf("Flush: %v", err)
		}
	}
	res := <-read
	if res.err != nil || res.n != len(stream) {
		t.Fatalf("the reader got %d of %d bytes: %v", res.n, len(stream), res.err)
	}
	if res.sum != want {
		t.Fatal("the bytes read differ from the frames sent (checksum mismatch)")
	}
	rel.checkOnce(t, frames)
	rel.checkOrder(t, frames)
	// No spinning: every wake-up but the last parked once more, and a
	// wake-up on POLLOUT does not find the socket full again.
	if got := blocked.Load(); got != int64(wakeups)+1 {
		t.Fatalf("Blocked called %d times for %d wake-ups, want %d", got, wakeups, wakeups+1)
	}
	if got := fd.empty.Load() - emptyBefore; got > 1 {
		t.Fatalf("%d write calls after POLLOUT took nothing, want at most 1", got)
	}
	writes, n := s.Stats()
	t.Logf("%d frames, %d writes, %d write calls, %d wake-ups", n, writes, fd.calls.Load(), wakeups)
}

// TestReliability22CloseWhileParked closes a sender parked on a full
// socket with frames queued: Close returns at once, every frame is
// released exactly once, and no write is attempted afterwards.
func TestReliability22CloseWhileParked(t *testing.T) {
	w, r := socketpair(t)
	if err := unix.SetsockoptInt(w, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	_, frames := randomFrames(4<<20, 64<<10)
	fd := &countingFD{write: FD(w)}
	rel := newReleaseLog()
	s := NewSender(fd.do, Options{Release: rel.release})
	for _, f := range frames {
		if _, err := s.Send(f); err != nil {
			t.Fatal(err)
		}
	}
	if s.state.Load() != parked || s.Pending() == 0 {
		t.Fatalf("state %d with %d bytes pending; want parked with frames queued", s.state.Load(), s.Pending())
	}
	calls := fd.calls.Load()
	s.Close()
	rel.checkOnce(t, frames)
	if s.Pending() != 0 {
		t.Fatalf("Pending() = %d after Close", s.Pending())
	}

	// The peer drains the socket; a Flush on the POLLOUT that follows
	// finds nothing to do.
	readN(t, r, 1)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Send(bytes.Repeat([]byte("x"), 10)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close = %v, want ErrClosed", err)
	}
	if got := fd.calls.Load(); got != calls {
		t.Fatalf("%d write calls after Close, want none", got-calls)
	}
}
