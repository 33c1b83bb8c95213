//go:build !linux

package poller

import (
	"context"
	"errors"
	"net"
)

// Supported is false: the engine is Linux-only, and servers fall back to
// a goroutine per connection.
const Supported = false

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("rpc: engine closed")

var errUnsupported = errors.New("rpc: the epoll engine needs Linux")

// Engine does not exist on this system.
type Engine struct{}

// Conn does not exist on this system.
type Conn struct{}

// NewEngine fails on this system.
func NewEngine(Config, Handler) (*Engine, error) { return nil, errUnsupported }

// Serve fails on this system.
func (*Engine) Serve(net.Listener) error { return errUnsupported }

// Shutdown does nothing on this system.
func (*Engine) Shutdown(context.Context) error { return nil }

// Stats is empty on this system.
func (*Engine) Stats() Stats { return Stats{} }

// Send fails on this system.
func (*Conn) Send([]byte) error { return errUnsupported }

// Hold does nothing on this system.
func (*Conn) Hold(int) {}

// Done does nothing on this system.
func (*Conn) Done(int) {}

// Full reports false on this system.
func (*Conn) Full() bool { return false }

// Close does nothing on this system.
func (*Conn) Close() {}

// SetContext does nothing on this system.
func (*Conn) SetContext(any) {}

// Context returns nil on this system.
func (*Conn) Context() any { return nil }

// RemoteAddr returns "" on this system.
func (*Conn) RemoteAddr() string { return "" }
