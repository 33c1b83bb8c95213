package poller

import (
	"log/slog"
	"testing"

	"go.uber.org/goleak"
)

// TestStatsLoops: Stats reports the engine's loops, as configured.
func TestStatsLoops(t *testing.T) {
	defer goleak.VerifyNone(t)
	for _, loops := range []int{1, 3} {
		e, err := NewEngine(Config{Loops: loops, Logger: slog.New(slog.DiscardHandler)}, partialFrames{})
		if err != nil {
			t.Fatal(err)
		}
		got := e.Stats()
		e.stopLoops()
		if got.Loops != loops || got.Conns != 0 {
			t.Errorf("Stats() = %+v, want %d loops and no connections", got, loops)
		}
	}
}
