package writev

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"testing"
	"time"

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

// TestReliability22ShortWriteAndEAGAIN pushes 64 MiB of frames to a
// Writer over a socket whose reader has not started: Flush fills the
// socket and stops (a short write), and a Flush while it is still full
// takes nothing (EAGAIN) and stops too. Once the reader reads, the owner
// flushes on each POLLOUT until the Writer is idle: everything arrives, in
// order, and each wake-up costs one write call, which makes progress.
func TestReliability22ShortWriteAndEAGAIN(t *testing.T) {
	w, r := socketpair(t)
	if err := unix.SetsockoptInt(w, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	stream, frames := randomFrames(64<<20, 256<<10)
	want := sha256.Sum256(stream)

	fd := &countingFD{write: FD(w)}
	rel := newReleaseLog()
	wr := NewWriter(fd.do, Options{Release: rel.release})
	for k, f := range frames {
		if _, err := wr.Push(f, time.Time{}); err != nil {
			t.Fatalf("Push of frame %d: %v", k, err)
		}
	}
	if got := fd.calls.Load(); got != 0 {
		t.Fatalf("Push made %d write calls, want none", got)
	}
	written, wouldBlock, err := wr.Flush()
	if written == 0 || written >= len(stream) || !wouldBlock || err != nil {
		t.Fatalf("Flush with the reader stopped = %d, %v, %v; want part of %d bytes, true, nil", written, wouldBlock, err, len(stream))
	}
	if wr.Pending() != len(stream)-written {
		t.Fatalf("Pending() = %d after %d of %d bytes were written", wr.Pending(), written, len(stream))
	}
	// A wake-up while the socket is still full costs one write call,
	// which takes nothing.
	calls, empty := fd.calls.Load(), fd.empty.Load()
	if n, wouldBlock, err := wr.Flush(); n != 0 || !wouldBlock || err != nil || fd.calls.Load() != calls+1 || fd.empty.Load() != empty+1 {
		t.Fatalf("Flush on a full socket = %d, %v, %v with %d write calls (%d empty); want 0, true, nil with 1 (1)",
			n, wouldBlock, err, fd.calls.Load()-calls, fd.empty.Load()-empty)
	}
	calls = fd.calls.Load()

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
	for !wr.Idle() {
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
		k, wouldBlock, err := wr.Flush()
		if err != nil {
			t.Fatalf("Flush: %v", err)
		}
		if k == 0 {
			t.Fatalf("a Flush after POLLOUT wrote nothing (wake-up %d, %d of %d bytes written)", wakeups, written, len(stream))
		}
		if wouldBlock == wr.Idle() {
			t.Fatalf("Flush returned wouldBlock %v with the Writer idle %v", wouldBlock, wr.Idle())
		}
		written += k
	}
	if written != len(stream) {
		t.Fatalf("idle after the Flushes returned %d bytes in all, want %d", written, len(stream))
	}
	var res result
	select {
	case res = <-read:
	case <-time.After(30 * time.Second):
		t.Fatal("the reader still waits for bytes 30 s after the Writer went idle")
	}
	if res.err != nil || res.n != len(stream) {
		t.Fatalf("the reader got %d of %d bytes: %v", res.n, len(stream), res.err)
	}
	if res.sum != want {
		t.Fatal("the bytes read differ from the frames pushed (checksum mismatch)")
	}
	// No spinning: each wake-up made one write call.
	if got := fd.calls.Load() - calls; got != int64(wakeups) {
		t.Fatalf("%d write calls for %d wake-ups, want one each", got, wakeups)
	}
	rel.checkOnce(t, frames)
	rel.checkOrder(t, frames)
	checkIdle(t, wr)
	writes, n := wr.Stats()
	if n != uint64(len(frames)) || writes != uint64(fd.calls.Load()-fd.empty.Load()) {
		t.Fatalf("Stats() = %d writes, %d frames; want %d, %d", writes, n, fd.calls.Load()-fd.empty.Load(), len(frames))
	}
	t.Logf("%d frames, %d writes, %d write calls, %d wake-ups", n, writes, fd.calls.Load(), wakeups)
}

// TestReliability22CloseWhileBlocked closes a Writer stopped at a full
// socket with frames queued: Close returns the frames not written, in
// order, each released exactly once, and nothing is written afterwards.
func TestReliability22CloseWhileBlocked(t *testing.T) {
	w, r := socketpair(t)
	if err := unix.SetsockoptInt(w, unix.SOL_SOCKET, unix.SO_SNDBUF, 16<<10); err != nil {
		t.Fatal(err)
	}
	_, frames := randomFrames(4<<20, 64<<10)
	fd := &countingFD{write: FD(w)}
	rel := newReleaseLog()
	wr := NewWriter(fd.do, Options{Release: rel.release})
	for _, f := range frames[:len(frames)/2] {
		if _, err := wr.Push(f, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	n, wouldBlock, err := wr.Flush()
	if n == 0 || !wouldBlock || err != nil {
		t.Fatalf("Flush = %d, %v, %v; want a full socket after some bytes", n, wouldBlock, err)
	}
	for _, f := range frames[len(frames)/2:] {
		if _, err := wr.Push(f, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	pending := wr.Pending()
	calls := fd.calls.Load()
	whole := rel.released() // the frames written whole
	cut := n - len(concat(frames[:whole]))

	left, started := wr.Close()
	if !slices.EqualFunc(left, frames[whole:], func(a, b []byte) bool { return frameKey(a) == frameKey(b) }) {
		t.Fatalf("Close returned %d frames, want the %d after the %d written whole, in order", len(left), len(frames)-whole, whole)
	}
	if started != (cut > 0) || len(concat(left))-cut != pending {
		t.Fatalf("Close: started %v, %d bytes left; want %v with %d of them written, %d pending", started, len(concat(left)), cut > 0, cut, pending)
	}
	rel.checkOnce(t, frames)
	rel.checkOrder(t, frames)
	checkIdle(t, wr)

	// The peer drains the socket; a Flush on the POLLOUT that follows
	// finds nothing to do.
	readN(t, r, 1)
	if n, wouldBlock, err := wr.Flush(); n != 0 || wouldBlock || err != nil {
		t.Fatalf("Flush after Close = %d, %v, %v; want 0, false, nil", n, wouldBlock, err)
	}
	if _, err := wr.Push(bytes.Repeat([]byte("x"), 10), time.Time{}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Push after Close = %v, want ErrClosed", err)
	}
	if got := fd.calls.Load(); got != calls {
		t.Fatalf("%d write calls after Close, want none", got-calls)
	}
}

// TestTryConn: TryConn's WriteFunc writes what a socket of the runtime
// takes at once and reports the rest as wouldBlock, never waiting for a
// peer that does not read; a net.Conn without a descriptor has none.
func TestTryConn(t *testing.T) {
	if TryConn(struct{ net.Conn }{}) != nil {
		t.Fatal("TryConn of a net.Conn that is no socket is not nil")
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, _ := lis.Accept()
		accepted <- nc
	}()
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	peer := <-accepted
	if peer == nil {
		t.Fatal("accept failed")
	}
	defer peer.Close()
	try := TryConn(nc)
	if try == nil {
		t.Fatal("TryConn of a TCP connection is nil")
	}
	n, wouldBlock, err := try([][]byte{[]byte("hello, "), []byte("world")})
	if n != 12 || wouldBlock || err != nil {
		t.Fatalf("small write = %d, %v, %v; want 12, false, nil", n, wouldBlock, err)
	}
	got := make([]byte, 12)
	if _, err := io.ReadFull(peer, got); err != nil || string(got) != "hello, world" {
		t.Fatalf("peer read %q, %v", got, err)
	}
	// The peer reads no more: a write far larger than the socket buffers
	// returns at once with part of it taken.
	big := make([]byte, 64<<20)
	start := time.Now()
	n, wouldBlock, err = try([][]byte{big})
	if err != nil || !wouldBlock || n <= 0 || n >= len(big) {
		t.Fatalf("big write = %d, %v, %v; want part of %d, true, nil", n, wouldBlock, err, len(big))
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("big write took %v: it waited", d)
	}
}
