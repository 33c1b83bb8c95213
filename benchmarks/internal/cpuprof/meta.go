package cpuprof

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Meta describes the run of one stage's profiles: what ran, where, and
// what the case measured.
type Meta struct {
	Stage        string `json:"stage"`
	Callers      int    `json:"callers"`
	PayloadBytes int    `json:"payload_bytes"`
	Warmup       string `json:"warmup"`
	Duration     string `json:"duration"`

	Commit     string `json:"commit"`
	Date       string `json:"date"`
	CPUModel   string `json:"cpu_model"`
	Cores      int    `json:"cores"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
	// LoadBefore and LoadAfter are the machine's load averages over 1, 5
	// and 15 minutes before and after the case.
	LoadBefore []float64 `json:"load_before,omitempty"`
	LoadAfter  []float64 `json:"load_after,omitempty"`

	Calls              uint64  `json:"calls"`
	Errors             uint64  `json:"errors"`
	QPS                float64 `json:"qps"`
	WindowS            float64 `json:"window_s"`
	ServerCPUUSPerCall float64 `json:"server_cpu_us_per_call"`
	ClientCPUUSPerCall float64 `json:"client_cpu_us_per_call"`
}

// LoadAverage returns the machine's load averages over 1, 5 and 15
// minutes, or nil where /proc/loadavg cannot be read.
func LoadAverage() []float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return nil
	}
	l, err := parseLoadAvg(string(b))
	if err != nil {
		return nil
	}
	return l
}

// parseLoadAvg reads the first three fields of /proc/loadavg.
func parseLoadAvg(s string) ([]float64, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return nil, fmt.Errorf("loadavg %q: want three numbers", s)
	}
	out := make([]float64, 3)
	for i := range out {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return nil, fmt.Errorf("loadavg %q: %w", s, err)
		}
		out[i] = v
	}
	return out, nil
}

// TopText is the top table of s as text, as go tool pprof -top prints it:
// flat %, cum %, the function.
func TopText(s Summary) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%7s %7s  %s\n", "flat%", "cum%", "function")
	for _, f := range s.Top {
		fmt.Fprintf(&b, "%6.1f%% %6.1f%%  %s\n", f.Flat, f.Cum, f.Name)
	}
	b.WriteString("by category:\n")
	for _, c := range s.Categories {
		fmt.Fprintf(&b, "%6.1f%%  %s\n", c.Pct, c.Category)
	}
	return b.String()
}
