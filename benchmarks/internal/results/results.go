// Package results holds what a benchmark run produces: one Row per case or
// burst, written to results.json and read back by the report writers.
package results

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"
)

// Row kinds.
const (
	// KindCase is a closed-loop case: some callers, one payload size.
	KindCase = "case"
	// KindBurst is the burst: N goroutines, one call each, all at once.
	KindBurst = "burst"
	// KindHOL is the head-of-line scenario: many fast callers and a few
	// slow ones; the row measures the fast calls only.
	KindHOL = "hol"
	// KindCluster is the cluster scenario: one client spreading its calls
	// over several servers, one of them slow, by a balancing policy.
	KindCluster = "cluster"
)

// Machine describes where a run happened.
type Machine struct {
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	GitCommit  string `json:"git_commit"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
	Kernel     string `json:"kernel,omitempty"`
	// MaxOpenFiles is the harness's limit on open descriptors
	// (RLIMIT_NOFILE), which bounds the connections of a burst.
	MaxOpenFiles uint64 `json:"max_open_files,omitempty"`
}

// Flags are the harness flags a run used.
type Flags struct {
	Impls    []string `json:"impls"`
	Callers  []int    `json:"callers"`
	Payloads []int    `json:"payload"`
	Duration string   `json:"duration"`
	Warmup   string   `json:"warmup"`
	Reps     int      `json:"reps"`
	Pin      bool     `json:"pin"`
	Burst    int      `json:"burst"`
	// Scenarios lists what ran: matrix, burst, hol, cluster.
	Scenarios []string `json:"scenarios,omitempty"`
	// HOLCallers, HOLSlow and HOLDelay are the head-of-line scenario's
	// callers, how many of them are slow, and the slow calls' delay.
	HOLCallers int    `json:"hol_callers,omitempty"`
	HOLSlow    int    `json:"hol_slow,omitempty"`
	HOLDelay   string `json:"hol_delay,omitempty"`
	HOLConns   int    `json:"hol_conns,omitempty"`

	// ClusterCallers and ClusterDelay are the cluster scenario's callers
	// and its slow server's delay; ClusterRate is the calls a second its
	// open-loop rows offer.
	ClusterCallers int    `json:"cluster_callers,omitempty"`
	ClusterDelay   string `json:"cluster_delay,omitempty"`
	ClusterRate    int    `json:"cluster_rate,omitempty"`
}

// Row is the result of one case (with -reps, of all its repetitions) or of
// one burst. Latencies are of successful calls only, in microseconds.
type Row struct {
	Kind         string `json:"kind"`
	Impl         string `json:"impl"`
	Callers      int    `json:"callers"`
	PayloadBytes int    `json:"payload_bytes"`

	// QPS is successful calls per second over the measured window (for a
	// burst: over the time until its last call ended).
	QPS float64 `json:"qps"`
	// QPSMin and QPSMax are the range over repetitions, when Reps > 1.
	QPSMin float64 `json:"qps_min,omitempty"`
	QPSMax float64 `json:"qps_max,omitempty"`
	Reps   int     `json:"reps"`

	P50US  float64 `json:"p50_us"`
	P99US  float64 `json:"p99_us"`
	P999US float64 `json:"p999_us"`
	MeanUS float64 `json:"mean_us"`
	MaxUS  float64 `json:"max_us"`

	// Calls counts the successful calls measured, Errors the failed ones.
	Calls  uint64 `json:"calls"`
	Errors uint64 `json:"errors"`
	// ErrorSamples lists the most frequent distinct errors with counts.
	ErrorSamples []string `json:"error_samples,omitempty"`

	// ServerCPUUSPerCall and ClientCPUUSPerCall are CPU time (user +
	// system) per successful call, in microseconds.
	ServerCPUUSPerCall float64 `json:"server_cpu_us_per_call"`
	ClientCPUUSPerCall float64 `json:"client_cpu_us_per_call"`
	// ServerRSSKiB is the server's peak resident set size.
	ServerRSSKiB int64 `json:"server_rss_kib"`
	// FramesPerWrite is the server's mean response frames per write
	// syscall, for implementations that count it.
	FramesPerWrite float64 `json:"frames_per_write,omitempty"`
	// ServerStats is everything the server reported about its work.
	ServerStats map[string]float64 `json:"server_stats,omitempty"`
	// ClientGCs counts the harness's garbage collections in the window.
	ClientGCs uint32 `json:"client_gcs"`
	// OtherCPUPct is the share of all CPUs, in percent, that processes
	// other than the server and the harness used during the window: noise.
	OtherCPUPct float64 `json:"other_cpu_pct"`

	// WindowS is the measured window, or the burst's elapsed time, in
	// seconds.
	WindowS float64 `json:"window_s"`

	// SlowCallers and SlowDelayMs describe a head-of-line row: that many of
	// Callers made calls the server held for SlowDelayMs each, and SlowCalls
	// of them finished in the window. The row's other measures are of the
	// fast calls only.
	SlowCallers int     `json:"slow_callers,omitempty"`
	SlowDelayMs float64 `json:"slow_delay_ms,omitempty"`
	SlowCalls   uint64  `json:"slow_calls,omitempty"`
	// MaxConns is the connection budget of a head-of-line row's client.
	MaxConns int `json:"max_conns,omitempty"`

	// Policy, Servers and Killed describe a cluster row: the client's
	// balancing policy, the servers it spread its calls over (the first
	// of them holding every call for SlowDelayMs), and how many of them
	// were killed halfway through the window. SlowServed counts the calls
	// the slow server answered, and SlowP99US is their p99; FastP50US and
	// FastP99US are the latencies of the others, those the fast servers
	// answered.
	// OfferedQPS is set for an open-loop row: the calls a second started
	// on a fixed schedule, whatever became of the calls before them; its
	// latencies count from each call's scheduled start.
	Policy     string  `json:"policy,omitempty"`
	Servers    int     `json:"servers,omitempty"`
	Killed     int     `json:"killed,omitempty"`
	SlowServed uint64  `json:"slow_served,omitempty"`
	FastP50US  float64 `json:"fast_p50_us,omitempty"`
	FastP99US  float64 `json:"fast_p99_us,omitempty"`
	SlowP99US  float64 `json:"slow_p99_us,omitempty"`
	OfferedQPS float64 `json:"offered_qps,omitempty"`

	Failed     bool   `json:"failed,omitempty"`
	FailReason string `json:"fail_reason,omitempty"`

	Machine   Machine   `json:"machine"`
	StartedAt time.Time `json:"started_at"`
	Flags     Flags     `json:"flags"`
	// RunWallS is how long the whole run took, in seconds.
	RunWallS float64 `json:"run_wall_s,omitempty"`
}

// Save writes rows to path as an indented JSON array.
func Save(path string, rows []Row) error {
	if rows == nil {
		rows = []Row{}
	}
	b, err := json.MarshalIndent(rows, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// Load reads rows written by Save.
func Load(path string) ([]Row, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var rows []Row
	if err := json.Unmarshal(b, &rows); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rows, nil
}

// Aggregate combines the repetitions of one case: each measure is the
// median over the repetitions that did not fail, QPSMin and QPSMax their
// range, and calls and errors are summed over all. If every repetition
// failed, the first failure is the result.
func Aggregate(reps []Row) Row {
	if len(reps) == 0 {
		return Row{}
	}
	var good []Row
	for _, r := range reps {
		if !r.Failed {
			good = append(good, r)
		}
	}
	if len(good) == 0 {
		out := reps[0]
		out.Reps = len(reps)
		return out
	}
	if len(reps) == 1 {
		out := reps[0]
		out.Reps = 1
		return out
	}
	med := func(f func(Row) float64) float64 {
		v := make([]float64, len(good))
		for i, r := range good {
			v[i] = f(r)
		}
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	out := good[0]
	out.Reps = len(reps)
	out.QPS = med(func(r Row) float64 { return r.QPS })
	out.QPSMin, out.QPSMax = good[0].QPS, good[0].QPS
	for _, r := range good {
		out.QPSMin = min(out.QPSMin, r.QPS)
		out.QPSMax = max(out.QPSMax, r.QPS)
	}
	out.P50US = med(func(r Row) float64 { return r.P50US })
	out.P99US = med(func(r Row) float64 { return r.P99US })
	out.P999US = med(func(r Row) float64 { return r.P999US })
	out.MeanUS = med(func(r Row) float64 { return r.MeanUS })
	out.MaxUS = med(func(r Row) float64 { return r.MaxUS })
	out.FastP50US = med(func(r Row) float64 { return r.FastP50US })
	out.FastP99US = med(func(r Row) float64 { return r.FastP99US })
	out.SlowP99US = med(func(r Row) float64 { return r.SlowP99US })
	out.ServerCPUUSPerCall = med(func(r Row) float64 { return r.ServerCPUUSPerCall })
	out.ClientCPUUSPerCall = med(func(r Row) float64 { return r.ClientCPUUSPerCall })
	out.ServerRSSKiB = int64(med(func(r Row) float64 { return float64(r.ServerRSSKiB) }))
	out.FramesPerWrite = med(func(r Row) float64 { return r.FramesPerWrite })
	out.WindowS = med(func(r Row) float64 { return r.WindowS })
	out.OtherCPUPct = med(func(r Row) float64 { return r.OtherCPUPct })
	out.Calls, out.Errors, out.ClientGCs, out.SlowServed = 0, 0, 0, 0
	out.ErrorSamples = nil
	failed := 0
	for _, r := range reps {
		out.Calls += r.Calls
		out.Errors += r.Errors
		out.SlowServed += r.SlowServed
		out.ClientGCs += r.ClientGCs
		if len(out.ErrorSamples) == 0 {
			out.ErrorSamples = r.ErrorSamples
		}
		if r.Failed {
			failed++
		}
	}
	if failed > 0 {
		out.FailReason = fmt.Sprintf("%d of %d repetitions failed", failed, len(reps))
	}
	return out
}
