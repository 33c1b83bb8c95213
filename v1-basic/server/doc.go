// Package server is the V1 server: it routes request frames to registered
// services and writes one response per request.
//
// V1 keeps the blog's short connection: a connection carries exactly one
// request and is closed after its response. One goroutine serves each
// connection.
//
// As in every stage, the server defends itself: every frame is checked
// before anything is allocated, a frame must arrive whole within the frame
// timeout of its first byte, the number of connections is capped, accept
// errors such as EMFILE back off instead of spinning, a panicking handler
// is answered with code 13, Shutdown lets calls in flight finish, a peer
// that takes nothing for the write timeout is cut off, and a call's
// context is cancelled when its peer goes.
package server
