// Package mux carries many calls at once over one connection, and keeps a
// small set of such connections per server.
//
// A Conn gives every call a sequence id that no other call in flight on it
// holds, queues the call's request frame for the connection's writer
// goroutine, which writes what is queued several frames per writev (frames
// never interleave), and keeps the call's completion in a pending table
// under that id. A call alone on its connection, with nothing to batch
// with, writes its frame itself, if the socket takes it at once. One
// reader goroutine per connection reads every response and hands it to the
// call whose id it carries; a response that no call waits for (late,
// duplicated, or never asked for) is dropped and counted, never delivered
// to another call. A synchronous call alone on its connection reads its
// own response instead (SendOwn, ReadOwn): the reader goroutine stops
// between two reads while it does, and reads again once the connection
// has been idle for a millisecond. When the connection breaks, every call in flight on it
// fails with code 14, those whose requests were still queued with
// ErrNotSent, to be sent again elsewhere; the Group replaces the
// connection on the next call.
package mux
