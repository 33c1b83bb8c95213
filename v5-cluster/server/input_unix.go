//go:build unix

package server

import (
	"net"
	"syscall"
)

// inputWaiting reports whether bytes have arrived on nc that nobody has
// read yet, without reading them: a non-blocking peek at the socket.
func inputWaiting(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	n := 0
	var buf [1]byte
	rc.Control(func(fd uintptr) {
		n, _, _ = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
	})
	return n > 0
}
