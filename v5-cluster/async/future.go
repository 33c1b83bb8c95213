package async

import (
	"context"
	"errors"
	"sync"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
)

// Future is a call that has not ended yet. It implements rpc.Future. The
// call ends once, with Complete; Get waits for that, and callbacks added
// with OnDone run after it, exactly once each.
type Future struct {
	done chan struct{}

	// mu protects err, ended and callbacks.
	mu        sync.Mutex
	err       error
	ended     bool
	callbacks []func(error)
}

var _ rpc.Future = (*Future)(nil)

// NewFuture returns a future that has not ended.
func NewFuture() *Future {
	return &Future{done: make(chan struct{})}
}

// Failed returns a future that has already ended with err.
func Failed(err error) *Future {
	f := NewFuture()
	f.Complete(err)
	return f
}

// Complete ends the call with err (nil for success) and reports whether
// this was the first Complete; later ones change nothing. The callbacks run
// after the lock is released, each on its own goroutine, so that a slow
// or blocking callback delays neither Complete's caller (a connection's
// reader) nor the other callbacks.
func (f *Future) Complete(err error) bool {
	f.mu.Lock()
	if f.ended {
		f.mu.Unlock()
		return false
	}
	f.ended = true
	f.err = err
	callbacks := f.callbacks
	f.callbacks = nil
	close(f.done)
	f.mu.Unlock()
	for _, cb := range callbacks {
		go cb(err)
	}
	return true
}

// Get waits for the call to end and returns its error, or returns ctx's
// error (as a status error) if ctx ends first; the call itself goes on.
func (f *Future) Get(ctx context.Context) error {
	select {
	case <-f.done:
		return f.err // written before done was closed
	default:
	}
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return status.Errorf(codes.DeadlineExceeded, "rpc: waiting for the call: %w", ctx.Err())
		}
		return status.Errorf(codes.Canceled, "rpc: waiting for the call: %w", ctx.Err())
	}
}

// Done returns a channel that is closed when the call has ended.
func (f *Future) Done() <-chan struct{} { return f.done }

// Err returns the call's error once Done is closed; before that, nil.
func (f *Future) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// OnDone arranges for cb to run exactly once with the call's error. If the
// call has already ended, cb runs at once, on the caller's goroutine;
// otherwise it runs on a goroutine of its own when the call ends. Either
// way no lock is held while it runs.
func (f *Future) OnDone(cb func(error)) {
	f.mu.Lock()
	if !f.ended {
		f.callbacks = append(f.callbacks, cb)
		f.mu.Unlock()
		return
	}
	err := f.err
	f.mu.Unlock()
	cb(err)
}
