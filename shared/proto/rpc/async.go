package rpc

import (
	"context"

	"google.golang.org/protobuf/proto"
)

// AsyncInvoker is what generated asynchronous stubs call: a client that can
// start a call and return at once (V3 on). InvokeAsync sends req to the
// method and returns a Future that ends when the response has been decoded
// into reply, or the call has failed. ctx bounds the call, as for Invoke.
type AsyncInvoker interface {
	InvokeAsync(ctx context.Context, method string, req, reply proto.Message, opts ...CallOption) Future
}

// Future is a call in flight, started by AsyncInvoker.InvokeAsync.
type Future interface {
	// Get waits for the call to end and returns its error: nil once the
	// reply has been filled in. If ctx ends first, Get returns ctx's error
	// as a status error; that only ends the wait, and the call goes on,
	// bounded by its own context.
	Get(ctx context.Context) error
	// Done returns a channel that is closed when the call has ended.
	Done() <-chan struct{}
	// OnDone arranges for f to run exactly once, with the call's error,
	// when the call ends; if it has already ended, f runs at once. f never
	// runs while a lock of the framework is held, and never on a goroutine
	// that reads a connection, so it may block or start another call.
	OnDone(f func(err error))
}

// Async is a Future with its reply: what a generated XAsync method returns,
// for example helloworld.GreeterAsyncClient.HelloAsync returns an
// *Async[*HelloReply].
type Async[T proto.Message] struct {
	f     Future
	reply T
}

// NewAsync pairs a future with the reply it fills in.
func NewAsync[T proto.Message](f Future, reply T) *Async[T] {
	return &Async[T]{f: f, reply: reply}
}

// Get waits for the call to end, or for ctx to end, and returns the reply
// or the error. See Future.Get.
func (a *Async[T]) Get(ctx context.Context) (T, error) {
	if err := a.f.Get(ctx); err != nil {
		var zero T
		return zero, err
	}
	return a.reply, nil
}

// Done returns a channel that is closed when the call has ended.
func (a *Async[T]) Done() <-chan struct{} { return a.f.Done() }

// OnDone arranges for f to run exactly once, with the reply or the error,
// when the call ends. See Future.OnDone.
func (a *Async[T]) OnDone(f func(reply T, err error)) {
	a.f.OnDone(func(err error) {
		if err != nil {
			var zero T
			f(zero, err)
			return
		}
		f(a.reply, nil)
	})
}
