//go:build !linux

package writev

import "net"

// TryConn returns nil here: a call then leaves its frame to the
// connection's writer goroutine, as every call on a shared connection
// does.
func TryConn(net.Conn) WriteFunc { return nil }
