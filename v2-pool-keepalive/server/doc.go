// Package server is the V2 server: it routes request frames to registered
// services and writes one response per request.
//
// Connections are long: a connection carries any number of requests, and
// closes after the idle timeout with no request arriving and no response
// owed. One goroutine reads each connection and hands every request to a
// bounded pool of worker goroutines (ants), which run the handlers and
// write the responses, whole and in any order; several requests may be in
// flight on one connection.
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
package server
