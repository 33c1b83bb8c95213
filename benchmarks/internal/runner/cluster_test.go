package runner

import (
	"context"
	"strings"
	"testing"
	"time"

	"myrpc/benchmarks/internal/results"
)

// TestRunCluster runs the cluster scenario end to end: three server
// processes, the first slow, one client over all of them, under both
// policies, and once with a server killed halfway.
func TestRunCluster(t *testing.T) {
	cfg := testConfig(t)
	cfg.Duration = 600 * time.Millisecond
	const slow = 20 * time.Millisecond
	for _, c := range []ClusterCase{
		{Impl: "v5", Policy: "round_robin", Servers: 3, SlowDelay: slow, Callers: 6, Payload: 64},
		{Impl: "v5", Policy: "p2c", Servers: 3, SlowDelay: slow, Callers: 6, Payload: 64},
		{Impl: "v5", Policy: "p2c", Servers: 3, SlowDelay: slow, Callers: 6, Payload: 64, Kill: true},
		{Impl: "v5", Policy: "round_robin", Servers: 3, SlowDelay: slow, Callers: 16, Payload: 64, Rate: 500},
		{Impl: "v5", Policy: "p2c", Servers: 3, SlowDelay: slow, Callers: 16, Payload: 64, Rate: 500},
	} {
		t.Run(c.String(), func(t *testing.T) {
			r := RunCluster(context.Background(), cfg, c)
			if r.Failed {
				t.Fatalf("failed: %s", r.FailReason)
			}
			if r.Kind != results.KindCluster || r.Policy != c.Policy || r.Servers != 3 || r.SlowDelayMs != 20 || r.Callers != c.Callers {
				t.Errorf("row names the wrong case: %+v", r)
			}
			if c.Kill != (r.Killed == 1) {
				t.Errorf("killed %d, want the kill %v", r.Killed, c.Kill)
			}
			if r.Calls == 0 || r.QPS <= 0 || !(0 < r.P50US && r.P50US <= r.P99US) {
				t.Errorf("calls %d, QPS %v, p50 %v, p99 %v", r.Calls, r.QPS, r.P50US, r.P99US)
			}
			if c.Rate > 0 {
				// The open loop makes the calls it offers, no more: the
				// callers have room for them.
				if r.OfferedQPS != float64(c.Rate) || r.QPS < 0.8*float64(c.Rate) || r.QPS > 1.2*float64(c.Rate) {
					t.Errorf("offered %v calls a second, made %.0f; want %d, and about as many made", r.OfferedQPS, r.QPS, c.Rate)
				}
			} else if r.OfferedQPS != 0 {
				t.Errorf("a closed loop's row offers %v calls a second", r.OfferedQPS)
			}
			if !c.Kill && r.Errors != 0 {
				t.Errorf("%d errors without a kill: %v", r.Errors, r.ErrorSamples)
			}
			// Round-robin sends every third call to the slow server; a
			// share far below that means the mark was not seen.
			if c.Policy == "round_robin" && float64(r.SlowServed) < 0.2*float64(r.Calls) {
				t.Errorf("the slow server answered %d of %d calls", r.SlowServed, r.Calls)
			}
			// The slow server's calls each wait out the delay.
			if r.SlowServed > 0 && r.SlowP99US < float64(slow.Microseconds()) {
				t.Errorf("the slow server's calls: p99 %.0f µs, under its %v delay", r.SlowP99US, slow)
			}
			// The fast servers' calls do not wait out the delay: with
			// them measured apart, a p99 at the delay means the slow
			// server's calls were counted as theirs. (An open loop's
			// few hundred calls each take the whole of any stall of the
			// machine: there the median must be under the delay.)
			fastBound := r.FastP99US
			if c.Rate > 0 {
				fastBound = r.FastP50US
			}
			if !(0 < r.FastP50US && r.FastP50US <= r.FastP99US && fastBound < float64(slow.Microseconds())) {
				t.Errorf("fast calls' p50 %.0f µs, p99 %.0f µs; want them under the slow server's %v", r.FastP50US, r.FastP99US, slow)
			}
			t.Logf("%d calls, %d answered by the slow server, %d errors %v; p50 %.0f µs, p99 %.0f µs; fast calls p50 %.0f µs, p99 %.0f µs",
				r.Calls, r.SlowServed, r.Errors, r.ErrorSamples, r.P50US, r.P99US, r.FastP50US, r.FastP99US)
		})
	}
	// One caller cannot keep up with 500 calls a second when every third
	// waits 20 ms: the calls due queue for it, and an open loop's latency
	// counts that wait, where timing from the call's own start would show
	// no more than the delay; the calls due in the window that it has not
	// made when the window's grace ends count as failed.
	over := RunCluster(context.Background(), cfg, ClusterCase{Impl: "v5", Policy: "round_robin", Servers: 3, SlowDelay: slow, Callers: 1, Payload: 64, Rate: 500})
	if over.Failed {
		t.Fatalf("overloaded open loop failed: %s", over.FailReason)
	}
	if over.P99US < 5*float64(slow.Microseconds()) || over.QPS > 400 {
		t.Errorf("one caller offered 500 calls a second made %.0f, p99 %.0f µs; want fewer made, and a p99 of the queue, many times the %v delay", over.QPS, over.P99US, slow)
	}
	if over.Errors == 0 || len(over.ErrorSamples) == 0 || !strings.Contains(over.ErrorSamples[0], "not made") {
		t.Errorf("overloaded open loop: %d errors %v; want the calls it could not make counted", over.Errors, over.ErrorSamples)
	}
	if r := RunCluster(context.Background(), cfg, ClusterCase{Impl: "v5", Policy: "p2c", Servers: 3, SlowDelay: slow, Callers: 1, Rate: maxRate + 1}); !r.Failed {
		t.Error("a rate over the bound did not fail")
	}
	t.Logf("overloaded open loop: %.0f calls a second made, p99 %.0f µs, %d errors %v", over.QPS, over.P99US, over.Errors, over.ErrorSamples)
	if r := RunCluster(context.Background(), cfg, ClusterCase{Impl: "v4", Policy: "p2c", Servers: 3, SlowDelay: slow, Callers: 1}); !r.Failed {
		t.Error("a cluster of v4, which has no client of many servers, did not fail")
	}
}
