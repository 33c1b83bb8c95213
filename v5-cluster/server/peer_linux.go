package server

import (
	"encoding/binary"
	"net"
	"syscall"
)

// The TCP states (include/net/tcp_states.h) in which the peer has closed
// its side: it sent a FIN (close wait), or a reset (close).
const (
	tcpClose     = 7
	tcpCloseWait = 8
)

// peerGone reports whether the peer of nc has closed the connection,
// even when requests it sent before are still unread: the socket's TCP
// state, from the kernel (TCP_INFO). Its first byte is the state;
// getsockopt is asked for four bytes only, read back in the machine's
// own byte order.
func peerGone(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) {
		v, gerr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_INFO)
	}); err != nil || gerr != nil {
		return false
	}
	var b [4]byte
	binary.NativeEndian.PutUint32(b[:], uint32(v))
	return b[0] == tcpClose || b[0] == tcpCloseWait
}
