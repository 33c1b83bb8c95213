// Package poller is V4's network layer: non-blocking sockets on epoll,
// without a goroutine per connection.
//
// One accept reactor takes new connections and hands each to one of N
// sub-reactors (loops). A loop waits in epoll_wait for any of its
// connections to become readable, reads what is ready into the
// connection's input, and lets the Handler cut out every complete frame; a
// partial frame stays in the input until more bytes arrive. Nothing a loop
// does blocks: frames go to the server's worker pool.
//
// The loop is the only goroutine that touches a connection's socket: it
// reads, writes and closes it. A worker with a response queues it on the
// connection (Send) and makes the connection ready for its loop, waking
// the loop if it sleeps in epoll_wait; the loop writes everything queued
// in one writev (package writev), and when the socket is full it waits for
// EPOLLOUT and writes the rest then.
//
// A connection may hold so many calls and bytes (Config.MaxConnCalls,
// MaxConnBytes); at either bound the loop stops reading it, so that TCP
// pushes back on its client, and watches only for the peer's FIN, which it
// reports (Handler.OnPeerClosed) so that the calls can be ended. Timeouts
// (idle connections, frames that do not arrive whole, output the peer does
// not take) are checked by each loop on a coarse tick, not by a timer or
// goroutine per connection. The engine exists on Linux only; Supported
// says whether this build has it.
package poller
