//go:build !unix

package server

import "net"

// inputWaiting cannot peek at a socket on this system; it reports none.
func inputWaiting(net.Conn) bool { return false }
