//go:build unix

package pool

import (
	"net"
	"syscall"
)

// healthy reports whether an idle connection is still usable, without
// consuming any data: a non-blocking peek at the socket, made on its file
// descriptor through syscall.RawConn. "Would block" means nothing has
// arrived, as it should be for an idle connection: healthy. 0 bytes means
// the server closed it; data means the stream is out of step (a response
// nobody waits for); an error means it broke. A plain Read would eat the
// data it finds, and on a healthy connection would block.
func healthy(c net.Conn) bool {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return true
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	ok = false
	var buf [1]byte
	err = rc.Control(func(fd uintptr) {
		n, _, err := syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		ok = n < 0 && (err == syscall.EAGAIN || err == syscall.EWOULDBLOCK)
	})
	return err == nil && ok
}
