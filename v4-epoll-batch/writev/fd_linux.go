package writev

import (
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
		iov = iov[:0]
		for _, b := range bufs {
			if len(b) == 0 {
				continue
			}
			v := unix.Iovec{Base: &b[0]}
			v.SetLen(len(b))
			iov = append(iov, v)
		}
		if len(iov) == 0 {
			return 0, false, nil
		}
		for {
			n, _, errno := unix.Syscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
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
}

func total(bufs [][]byte) int {
	n := 0
	for _, b := range bufs {
		n += len(b)
	}
	return n
}
