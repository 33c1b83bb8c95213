package writev

import "net"

// Conn returns a WriteFunc for a net.Conn: the batch goes out with
// net.Buffers, which the Go runtime writes with writev on the systems that
// have it, waiting itself while the socket is full. It never reports
// wouldBlock.
func Conn(c net.Conn) WriteFunc {
	var arr [][]byte
	return func(b [][]byte) (int, bool, error) {
		arr = append(arr[:0], b...)
		bufs := net.Buffers(arr) // WriteTo consumes bufs, not arr
		n, err := bufs.WriteTo(c)
		clear(arr)
		return int(n), false, err
	}
}
