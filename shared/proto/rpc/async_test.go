package rpc_test

import (
	"context"
	"errors"
	"testing"

	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/rpc"
)

// fakeFuture is a Future that has ended with err, and records how Async
// uses it.
type fakeFuture struct {
	err  error
	done chan struct{}
	// gotCtx is the context Get was called with.
	gotCtx context.Context
}

func newFakeFuture(err error) *fakeFuture {
	f := &fakeFuture{err: err, done: make(chan struct{})}
	close(f.done)
	return f
}

func (f *fakeFuture) Get(ctx context.Context) error {
	f.gotCtx = ctx
	return f.err
}

func (f *fakeFuture) Done() <-chan struct{} { return f.done }

func (f *fakeFuture) OnDone(cb func(error)) { cb(f.err) }

type ctxKey struct{}

func TestAsync(t *testing.T) {
	errCall := errors.New("the call failed")
	tests := []struct {
		name string
		err  error
	}{
		{"success", nil},
		{"error", errCall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := &helloworld.HelloReply{Msg: "Hello world"}
			f := newFakeFuture(tt.err)
			a := rpc.NewAsync(f, reply)

			ctx := context.WithValue(context.Background(), ctxKey{}, "mine")
			got, err := a.Get(ctx)
			if f.gotCtx != ctx {
				t.Fatal("Get did not pass its context to the future")
			}
			if err != tt.err {
				t.Fatalf("Get error = %v, want %v", err, tt.err)
			}
			if tt.err == nil && got != reply {
				t.Fatalf("Get = %p, want the reply %p", got, reply)
			}
			if tt.err != nil && got != nil {
				t.Fatalf("Get = %v with an error, want the zero reply", got)
			}

			runs := 0
			a.OnDone(func(r *helloworld.HelloReply, err error) {
				runs++
				if err != tt.err {
					t.Errorf("OnDone error = %v, want %v", err, tt.err)
				}
				if tt.err == nil && r != reply || tt.err != nil && r != nil {
					t.Errorf("OnDone reply = %v (error %v)", r, err)
				}
			})
			if runs != 1 {
				t.Fatalf("the OnDone callback ran %d times, want 1", runs)
			}

			if a.Done() != f.Done() {
				t.Fatal("Done is not the future's channel")
			}
		})
	}
}

// TestAsyncDoneOpen: Done passes the future's channel through while the
// call is in flight too.
func TestAsyncDoneOpen(t *testing.T) {
	f := &fakeFuture{done: make(chan struct{})}
	a := rpc.NewAsync(f, &helloworld.HelloReply{})
	select {
	case <-a.Done():
		t.Fatal("Done is closed while the future's is open")
	default:
	}
	close(f.done)
	select {
	case <-a.Done():
	default:
		t.Fatal("Done is open after the future's closed")
	}
}
