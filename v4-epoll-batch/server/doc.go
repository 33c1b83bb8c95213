// Package server is the V4 server: it routes request frames to registered
// services and writes one response per request.
//
// On Linux, connections are served by the epoll engine (package poller):
// reactors read every connection without a goroutine each, cut the
// complete frames out of what has arrived, and hand each request to a
// bounded pool of worker goroutines (ants); a worker queues its response on
// the connection, and the connection's loop, the only goroutine that
// touches the socket, writes what is queued several frames per writev
// (package writev). A request that finds every worker busy is answered 14
// at once, since a reactor must never wait. On other systems, and for
// listeners other than TCP, the server serves a goroutine per connection,
// as V3 does, and says so in its log. Either
// way the server defends itself as V1 does: frames checked before anything
// is allocated, a frame timeout from the first byte, a cap on connections,
// backoff on accept errors, panics answered with code 13, and a Shutdown
// that lets calls in flight finish; and as V2 does, it bounds what one
// connection may take (calls in flight, bytes held), cuts off a peer that
// takes nothing for the write timeout, and ends the calls of a peer that
// has gone.
package server
