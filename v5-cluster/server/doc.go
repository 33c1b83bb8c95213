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
// as V3 does, and says so in its log.
//
// As in every stage, the server defends itself: every frame is checked
// before anything is allocated, a frame must arrive whole within the frame
// timeout of its first byte, the number of connections is capped, accept
// errors such as EMFILE back off instead of spinning, a panicking handler
// is answered with code 13, Shutdown lets calls in flight finish, a peer
// that takes nothing for the write timeout is cut off, and a call's
// context is cancelled when its peer goes.
//
// A connection that carries many calls is bounded too: calls in flight and
// bytes held per connection (past either, the connection is not read, and
// TCP pushes back), and never more than half the workers.
//
// Interceptors (WithInterceptors) run around every method with the decoded
// request, as grpc-go's unary interceptors do, and a handler sends
// metadata with its response through rpc.SetTrailer, in the response's
// ResponseMeta.metadata, whether the call succeeded or not. The key
// "connection" stays the server's own: a handler cannot set it, so a
// response carries the connection: close mark only when the server closes
// the connection after it.
//
// A server given a registry (WithRegistry) lists every address it serves
// in etcd, under a lease it keeps alive (package registry), from the
// moment Serve starts on it. Shutdown takes the addresses out first, and
// goes on serving for the deregister wait (WithDeregisterWait), so that
// the clients watching etcd stop picking the server before it stops
// accepting; then it drains as above. A server that dies without
// Shutdown stays listed until its lease ends.
package server
