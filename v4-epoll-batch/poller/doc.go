// Package poller is V4's network layer: non-blocking sockets on epoll,
// without a goroutine per connection.
//
// One accept reactor takes new connections and hands each to one of N
// sub-reactors (loops). A loop waits in epoll_wait for any of its
// connections to become readable, reads what is ready into the
// connection's input, and lets the Handler cut out every complete frame; a
// partial frame stays in the input until more bytes arrive. Nothing a loop
// does blocks: frames go to the server's worker pool, and responses leave
// through each connection's writev.Sender, which the workers flush and the
// loop resumes when the socket becomes writable again.
//
// Timeouts (idle connections, frames that do not arrive whole, writes the
// peer does not take) are checked by each loop on a coarse tick, not by a
// timer or goroutine per connection. The engine exists on Linux only;
// Supported says whether this build has it.
package poller
