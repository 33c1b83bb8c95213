package poller

import (
	"log/slog"
	"time"
)

// Handler is what the engine calls; the server implements it. Its methods
// run on a loop goroutine and must not block.
type Handler interface {
	// OnOpen is called once for a new connection, before any OnRead.
	OnOpen(c *Conn)
	// OnRead gets the connection's unread input. It returns how many bytes
	// it consumed (whole frames; it must copy what it keeps), and, if the
	// rest is the start of a frame, how many bytes that frame needs in all,
	// so that the engine can make room. An error stops the reading and
	// closes the connection once what is queued for it has been written,
	// gently: a FIN after the last answer, then what the peer still sends
	// is read and dropped until it closes too (at most lingerFor).
	OnRead(c *Conn, in []byte) (consumed, need int, err error)
	// OnPeerClosed is called once when the engine learns that the peer has
	// closed the connection, or stopped sending on it: the calls it made
	// may still run, but their answers may have nobody to read them.
	OnPeerClosed(c *Conn)
	// OnClose is called once when the connection has closed.
	OnClose(c *Conn)
}

// Config configures an Engine. Zero fields mean the defaults.
type Config struct {
	// Loops is the number of sub-reactors. Default: GOMAXPROCS.
	Loops int
	// MaxConns caps the open connections; 0 means no cap.
	MaxConns int
	// IdleTimeout closes a connection with no input for this long, no
	// response owed and nothing to write; 0 means never.
	IdleTimeout time.Duration
	// FrameTimeout closes a connection whose partial frame has not become
	// whole this long after its first byte; 0 means never.
	FrameTimeout time.Duration
	// WriteTimeout closes a connection whose peer has taken none of its
	// queued output for this long; 0 means never.
	WriteTimeout time.Duration
	// Release gets every output frame once written or dropped.
	Release func([]byte)
	// Logger receives per-connection events at Debug. Default:
	// slog.Default().
	Logger *slog.Logger

	// MaxConnCalls and MaxConnBytes bound what one connection may hold:
	// calls in flight (Hold to Done), and bytes of their requests (the
	// sizes given to Hold) and of output not yet written. A connection at
	// either bound is not read until it is below both again. 0 means no
	// bound. Default: none.
	MaxConnCalls int
	MaxConnBytes int
}

// Stats counts the engine's work.
type Stats struct {
	// Reads counts read system calls that returned data; Writes counts
	// writev system calls; FramesOut counts the frames they carried.
	Reads, Writes, FramesOut uint64
	// Conns is the number of open connections.
	Conns int
	// Loops is the number of sub-reactors (Config.Loops).
	Loops int
}

// tick is how often a loop checks its connections' timeouts.
const tick = 100 * time.Millisecond
