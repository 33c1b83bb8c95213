// Package pool keeps client connections open between calls: a pool per
// target address, held by a Manager that the client owns.
//
// A call takes a connection with Get and gives it back with Put. Put with a
// non-nil error closes the connection instead: a connection that saw any
// error is never reused, since nobody knows what state its byte stream is
// in. Idle connections are kept on a stack, so the most recently used one
// goes out first and the others age out: a timer, armed while any are idle
// and stopped by Close, closes each when it has been idle IdleTimeout or
// reached MaxLifetime, whether or not a Get comes. Before an idle
// connection is handed out it is checked as well: too old, idle too long,
// or closed by the server (found by a non-blocking peek that consumes
// nothing) and it is closed and the next one tried. When MaxActive connections are open, Get waits, within
// the caller's context and the pool's wait bound, for one to come back.
package pool
