package rpc_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"myrpc/shared/proto/rpc"
)

func TestSetTrailer(t *testing.T) {
	if err := rpc.SetTrailer(context.Background(), rpc.Metadata{"k": "v"}); !errors.Is(err, rpc.ErrNoTrailer) {
		t.Errorf("SetTrailer without a trailer in the context: %v, want ErrNoTrailer", err)
	}

	var tr rpc.ServerTrailer
	ctx := rpc.WithServerTrailer(context.Background(), &tr)
	md := rpc.Metadata{"a": "1", "b": "1"}
	if err := rpc.SetTrailer(ctx, md); err != nil {
		t.Fatal(err)
	}
	md["a"] = "changed after SetTrailer" // SetTrailer keeps its own copy
	if err := rpc.SetTrailer(ctx, rpc.Metadata{"b": "2", "c": "2"}); err != nil {
		t.Fatal(err)
	}
	if err := rpc.SetTrailer(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := rpc.SetTrailer(ctx, rpc.Metadata{"d": "3", rpc.NotRunKey: rpc.NotRunValue}); !errors.Is(err, rpc.ErrReservedKey) {
		t.Errorf("SetTrailer with the not-run key: %v, want ErrReservedKey", err)
	}
	if err := rpc.SetTrailer(ctx, rpc.Metadata{"d": "3", rpc.ConnectionKey: rpc.ConnectionClose}); !errors.Is(err, rpc.ErrReservedKey) {
		t.Errorf("SetTrailer with the connection key: %v, want ErrReservedKey", err)
	}
	checkMD(t, "Take", tr.Take(), rpc.Metadata{"a": "1", "b": "2", "c": "2"})
	if err := rpc.SetTrailer(ctx, rpc.Metadata{"e": "4"}); !errors.Is(err, rpc.ErrTrailerSent) {
		t.Errorf("SetTrailer after Take: %v, want ErrTrailerSent", err)
	}
	checkMD(t, "Take again", tr.Take(), rpc.Metadata{"a": "1", "b": "2", "c": "2"})

	var empty rpc.ServerTrailer
	if got := empty.Take(); got != nil {
		t.Errorf("Take with nothing set = %v, want nil", got)
	}
}

// TestSetTrailerConcurrent: a handler and the goroutines it starts may set
// metadata at once (run with -race).
func TestSetTrailerConcurrent(t *testing.T) {
	var tr rpc.ServerTrailer
	ctx := rpc.WithServerTrailer(context.Background(), &tr)
	var wg sync.WaitGroup
	keys := []string{"a", "b", "c", "d"}
	for _, k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := rpc.SetTrailer(ctx, rpc.Metadata{k: k}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	checkMD(t, "Take", tr.Take(), rpc.Metadata{"a": "a", "b": "b", "c": "c", "d": "d"})
}

func TestTrailerOption(t *testing.T) {
	var md rpc.Metadata
	opt, ok := rpc.Trailer(&md).(rpc.TrailerCallOption)
	if !ok || opt.TrailerAddr != &md {
		t.Fatalf("Trailer(&md) = %#v, want a TrailerCallOption holding &md", opt)
	}
}
