// Package writev sends the frames that many goroutines produce for one
// connection in as few system calls as possible: they are queued, and one
// flusher at a time writes everything queued with writev, up to IOV_MAX
// buffers per call.
//
// A Sender never blocks its callers on a busy socket. On a non-blocking
// socket (Linux, the server's reactors) a write that would block leaves the
// rest of the batch in place, with its offset, and the caller waits for the
// socket to become writable (EPOLLOUT) before it flushes again. Over a
// net.Conn (the client) the Go runtime does that waiting.
package writev
