package interop

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// TestInterop runs the twenty-five pairs: every client stage against every
// server stage.
func TestInterop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results, err := Run(ctx, Quiet)
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 25 {
		t.Fatalf("%d pairs, want 25", len(results))
	}
	for _, r := range results {
		t.Log(r)
		if r.Err != nil {
			t.Error(r)
		}
	}
}
