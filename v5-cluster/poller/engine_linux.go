package poller

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"myrpc/v5-cluster/writev"
)

// Supported is true where the engine exists: Linux.
const Supported = true

// ErrClosed is returned by Serve after Shutdown.
var ErrClosed = errors.New("rpc: engine closed")

// Engine owns the listener, the accept reactor and the loops.
type Engine struct {
	cfg   Config
	h     Handler
	log   *slog.Logger
	loops []*loop
	next  atomic.Uint32

	counters writev.Counters
	reads    atomic.Uint64
	conns    atomic.Int64

	// draining is set by Shutdown: loops close connections as they go
	// idle. closed is closed when Shutdown starts.
	draining atomic.Bool
	closed   chan struct{}
	// allGone is signalled each time a connection closes during Shutdown.
	allGone chan struct{}

	// mu protects acceptor.
	mu       sync.Mutex
	acceptor *acceptor
	wg       sync.WaitGroup
}

// NewEngine starts the loops of an engine that calls h.
func NewEngine(cfg Config, h Handler) (*Engine, error) {
	if cfg.Loops <= 0 {
		cfg.Loops = runtime.GOMAXPROCS(0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	e := &Engine{cfg: cfg, h: h, log: cfg.Logger, closed: make(chan struct{}), allGone: make(chan struct{}, 1)}
	for range cfg.Loops {
		l, err := newLoop(e)
		if err != nil {
			e.stopLoops()
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			l.run()
		}()
	}
	return e, nil
}

// Serve accepts connections on lis until Shutdown, and then returns
// ErrClosed. lis must be a *net.TCPListener; Serve takes over its socket
// and closes lis when it returns.
func (e *Engine) Serve(lis net.Listener) error {
	tl, ok := lis.(*net.TCPListener)
	if !ok {
		lis.Close()
		return errors.New("rpc: the epoll engine serves TCP listeners only")
	}
	f, err := tl.File() // a duplicate of the socket, in blocking mode
	if err != nil {
		lis.Close()
		return err
	}
	fd := int(f.Fd())
	if err := unix.SetNonblock(fd, true); err != nil {
		f.Close()
		lis.Close()
		return os.NewSyscallError("setnonblock", err)
	}
	a, err := newAcceptor(e, fd)
	if err != nil {
		f.Close()
		lis.Close()
		return err
	}
	e.mu.Lock()
	if e.draining.Load() || e.acceptor != nil {
		e.mu.Unlock()
		a.close()
		f.Close()
		lis.Close()
		return ErrClosed
	}
	e.acceptor = a
	e.mu.Unlock()
	err = a.run()
	a.close()
	f.Close()
	lis.Close()
	return err
}

// pick returns the loop for a new connection, round robin.
func (e *Engine) pick() *loop {
	return e.loops[int(e.next.Add(1))%len(e.loops)]
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	return Stats{
		Reads:     e.reads.Load(),
		Writes:    e.counters.Writes.Load(),
		FramesOut: e.counters.Frames.Load(),
		Conns:     int(e.conns.Load()),
		Loops:     len(e.loops),
	}
}

// Shutdown stops accepting, closes each connection once it is idle (no
// response owed, nothing to write, no partial frame), and waits for them
// all, until ctx ends; then it closes the rest. It stops the loops.
func (e *Engine) Shutdown(ctx context.Context) error {
	if e.draining.Swap(true) {
		return ErrClosed
	}
	close(e.closed)
	e.mu.Lock()
	a := e.acceptor
	e.mu.Unlock()
	if a != nil {
		a.stop()
	}
	for _, l := range e.loops {
		l.post(func() { l.closeIdle() })
	}
	var err error
	for e.conns.Load() > 0 && err == nil {
		select {
		case <-e.allGone:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	e.stopLoops()
	return err
}

// stopLoops closes every connection and ends the loops.
func (e *Engine) stopLoops() {
	for _, l := range e.loops {
		l.post(l.stop)
	}
	e.wg.Wait()
	for _, l := range e.loops {
		l.ep.close()
	}
}

// connClosed counts a closed connection.
func (e *Engine) connClosed() {
	e.conns.Add(-1)
	if e.draining.Load() {
		select {
		case e.allGone <- struct{}{}:
		default:
		}
	}
	e.mu.Lock()
	a := e.acceptor
	e.mu.Unlock()
	if a != nil && e.cfg.MaxConns > 0 {
		a.ep.wake() // a slot may have freed
	}
}
