package writev

import (
	"net"
	"os"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// FD returns a WriteFunc for a non-blocking socket: one writev system call
// per batch. Its iovec array is reused from call to call, which is safe
// because a Writer has one owner, who alone flushes.
func FD(fd int) WriteFunc {
	var iov []unix.Iovec
	return func(bufs [][]byte) (int, bool, error) {
		return writevFD(fd, &iov, bufs)
	}
}

// TryConn returns a WriteFunc that makes one attempt to write to c, a
// socket of the Go runtime, without waiting: what the socket does not
// take at once is left, and reported as wouldBlock. It returns nil if c
// is not a socket whose descriptor it can reach.
func TryConn(c net.Conn) WriteFunc {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	var iov []unix.Iovec
	return func(bufs [][]byte) (n int, wouldBlock bool, err error) {
		werr := rc.Write(func(fd uintptr) bool {
			n, wouldBlock, err = writevFD(int(fd), &iov, bufs)
			return true // one attempt: the runtime must not wait for room
		})
		if err == nil && werr != nil {
			err = werr
		}
		return n, wouldBlock, err
	}
}

// writevFD writes bufs to the non-blocking socket fd with one writev,
// building the iovec array in *iov.
func writevFD(fd int, iov *[]unix.Iovec, bufs [][]byte) (int, bool, error) {
	v := (*iov)[:0]
	for _, b := range bufs {
		if len(b) == 0 {
			continue
		}
		e := unix.Iovec{Base: &b[0]}
		e.SetLen(len(b))
		v = append(v, e)
	}
	*iov = v
	if len(v) == 0 {
		return 0, false, nil
	}
	for {
		n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&v[0])), uintptr(len(v)))
		switch errno {
		case 0:
			return int(n), int(n) < total(bufs), nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, true, nil
		default:
			return 0, false, os.NewSyscallError("writev", syscall.Errno(errno))
		}
	}
}

func total(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
