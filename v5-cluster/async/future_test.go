package async_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/async"
)

var _ rpc.Future = (*async.Future)(nil)

var errCall = status.New(codes.NotFound, "no such widget")

// ended reports whether f's Done channel is closed.
func ended(f *async.Future) bool {
	select {
	case <-f.Done():
		return true
	default:
		return false
	}
}

func TestFutureCompleteOnce(t *testing.T) {
	tests := []struct {
		name        string
		first, then error
	}{
		{"success, then an error", nil, errCall},
		{"an error, then success", errCall, nil},
		{"an error, then another", errCall, errors.New("other")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := async.NewFuture()
			if ended(f) || f.Err() != nil {
				t.Fatal("a new future has ended")
			}
			if !f.Complete(tt.first) {
				t.Fatal("first Complete = false")
			}
			if f.Complete(tt.then) {
				t.Fatal("second Complete = true")
			}
			if !ended(f) {
				t.Fatal("Done is not closed after Complete")
			}
			if err := f.Err(); err != tt.first {
				t.Fatalf("Err() = %v, want %v", err, tt.first)
			}
			if err := f.Get(context.Background()); err != tt.first {
				t.Fatalf("Get = %v, want %v", err, tt.first)
			}
		})
	}
}

func TestFailed(t *testing.T) {
	f := async.Failed(errCall)
	if !ended(f) || f.Err() != errCall {
		t.Fatalf("Failed: ended %v, Err %v", ended(f), f.Err())
	}
	if f.Complete(nil) {
		t.Fatal("Complete on a failed future = true")
	}
	if err := f.Get(context.Background()); err != errCall {
		t.Fatalf("Get = %v", err)
	}
}

// TestFutureGet: Get waits for the end; a ctx that ends first ends only
// the wait, with a status error, and the future stays open.
func TestFutureGet(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  func(t *testing.T) context.Context
		// complete is whether the future ends before Get is called.
		complete bool
		want     codes.Code
		is       error
		// min is the least time Get must block.
		min time.Duration
	}{
		{"ended before Get", func(*testing.T) context.Context { return context.Background() }, true, codes.NotFound, errCall, 0},
		{"ended, ctx cancelled too", func(*testing.T) context.Context { return cancelled }, true, codes.NotFound, errCall, 0},
		{"ctx cancelled", func(*testing.T) context.Context { return cancelled }, false, codes.Canceled, context.Canceled, 0},
		{"ctx deadline", func(t *testing.T) context.Context {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, false, codes.DeadlineExceeded, context.DeadlineExceeded, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := async.NewFuture()
			if tt.complete {
				f.Complete(errCall)
			}
			start := time.Now()
			err := f.Get(tt.ctx(t))
			if d := time.Since(start); d < tt.min || d > 5*time.Second {
				t.Fatalf("Get took %v, want at least %v", d, tt.min)
			}
			if status.Code(err) != tt.want || !errors.Is(err, tt.is) {
				t.Fatalf("Get = %v, want code %v wrapping %v", err, tt.want, tt.is)
			}
			if tt.complete {
				return
			}
			// Only the wait ended: the future is still open and can end.
			if ended(f) || f.Err() != nil {
				t.Fatal("Get's ctx ended the future")
			}
			if !f.Complete(nil) {
				t.Fatal("Complete after an abandoned Get = false")
			}
			if err := f.Get(context.Background()); err != nil {
				t.Fatalf("Get after Complete = %v", err)
			}
		})
	}
}

// TestFutureGetWaits: a Get that started before the end returns the end's
// error.
func TestFutureGetWaits(t *testing.T) {
	f := async.NewFuture()
	got := make(chan error, 1)
	go func() { got <- f.Get(context.Background()) }()
	f.Complete(errCall)
	select {
	case err := <-got:
		if err != errCall {
			t.Fatalf("Get = %v, want %v", err, errCall)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Get did not return after Complete")
	}
}

// TestFutureOnDoneBeforeEnd: a callback added before the end runs once,
// on a goroutine of its own, with no lock of the future held: it may call
// the future back, and may block without holding up Complete.
func TestFutureOnDoneBeforeEnd(t *testing.T) {
	f := async.NewFuture()
	var runs atomic.Int64
	release := make(chan struct{})
	type seen struct {
		err, errMethod, inner error
	}
	out := make(chan seen, 2)
	f.OnDone(func(err error) {
		runs.Add(1)
		s := seen{err: err, errMethod: f.Err()}
		// OnDone from inside a callback: the future has ended, so the
		// inner callback runs at once.
		innerRan := make(chan error, 1)
		f.OnDone(func(err error) { innerRan <- err })
		select {
		case s.inner = <-innerRan:
		default:
			s.inner = errors.New("the inner callback did not run at once")
		}
		<-release
		out <- s
	})
	if runs.Load() != 0 {
		t.Fatal("the callback ran before the end")
	}
	// The callback blocks until released: Complete returns all the same,
	// so the callback is not on Complete's goroutine.
	completed := make(chan bool, 1)
	go func() { completed <- f.Complete(errCall) }()
	select {
	case ok := <-completed:
		if !ok {
			t.Fatal("Complete = false")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Complete waited for a blocking callback")
	}
	close(release)
	select {
	case s := <-out:
		if s.err != errCall || s.errMethod != errCall || s.inner != errCall {
			t.Fatalf("the callback saw %+v, want %v throughout", s, errCall)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the callback did not run, or deadlocked calling the future")
	}
	f.Complete(nil)
	if n := runs.Load(); n != 1 {
		t.Fatalf("the callback ran %d times, want 1", n)
	}
}

// TestFutureOnDoneAfterEnd: a callback added after the end runs at once,
// before OnDone returns, and may call the future back.
func TestFutureOnDoneAfterEnd(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"success", nil},
		{"error", errCall},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := async.NewFuture()
			f.Complete(tt.err)
			var runs int
			var got, viaErr, inner error = errors.New("unset"), errors.New("unset"), errors.New("unset")
			f.OnDone(func(err error) {
				runs++
				got, viaErr = err, f.Err()
				f.OnDone(func(err error) { inner = err })
			})
			if runs != 1 || got != tt.err || viaErr != tt.err || inner != tt.err {
				t.Fatalf("after OnDone: %d runs, got %v, Err %v, inner %v; want 1 run with %v", runs, got, viaErr, inner, tt.err)
			}
		})
	}
}

// TestFutureConcurrentOnDone: callbacks added from many goroutines while
// the future ends each run exactly once.
func TestFutureConcurrentOnDone(t *testing.T) {
	const (
		adders = 8
		each   = 200
	)
	for round := range 20 {
		f := async.NewFuture()
		var counts [adders * each]atomic.Int32
		var ran sync.WaitGroup
		ran.Add(adders * each)
		var added sync.WaitGroup
		start := make(chan struct{})
		for a := range adders {
			added.Add(1)
			go func() {
				defer added.Done()
				<-start
				for i := range each {
					k := a*each + i
					f.OnDone(func(err error) {
						if err != errCall {
							t.Errorf("callback %d got %v", k, err)
						}
						counts[k].Add(1)
						ran.Done()
					})
				}
			}()
		}
		var completes atomic.Int32
		for range 2 {
			added.Add(1)
			go func() {
				defer added.Done()
				<-start
				if f.Complete(errCall) {
					completes.Add(1)
				}
			}()
		}
		close(start)
		wait(t, &added, "the goroutines adding callbacks")
		wait(t, &ran, "every callback to run")
		if n := completes.Load(); n != 1 {
			t.Fatalf("round %d: %d Completes reported true, want 1", round, n)
		}
		for k := range counts {
			if n := counts[k].Load(); n != 1 {
				t.Fatalf("round %d: callback %d ran %d times", round, k, n)
			}
		}
	}
}
