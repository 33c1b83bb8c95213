// Package server is the V4 server: it routes request frames to registered
// services and writes one response per request.
//
// On Linux, connections are served by the epoll engine (package poller):
// reactors read every connection without a goroutine each, cut the
// complete frames out of what has arrived, and hand each request to a
// bounded pool of worker goroutines (ants); the responses go into each
// connection's queue and leave several per writev (package writev). A
// request that finds every worker busy is answered 14 at once, since a
// reactor must never wait. On other systems the server falls back to a
// goroutine per connection, as V3 serves, and says so in its log. Either
// way the server defends itself as V1 does: frames checked before anything
// is allocated, a frame timeout from the first byte, a cap on connections,
// backoff on accept errors, panics answered with code 13, and a Shutdown
// that lets calls in flight finish.
package server
