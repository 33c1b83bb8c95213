// Package writev sends the frames that many goroutines produce for one
// connection in as few system calls as possible: they are queued, and the
// connection's one writer writes everything queued with writev, up to
// IOV_MAX buffers per call.
//
// Whoever produces a frame only queues it; the Writer's owner does every
// write. On a non-blocking socket (Linux, the server's reactors) a write
// that would block leaves the rest of the batch in place, with its offset,
// and the owner waits for the socket to become writable (EPOLLOUT) before
// it flushes again. Over a net.Conn (the client) the owner is a goroutine
// of the connection's, and the Go runtime does that waiting, bounded by
// the deadlines of the calls whose frames it writes; a call alone on its
// connection may be the owner for a moment, long enough for one write that
// never waits (TryConn).
package writev
