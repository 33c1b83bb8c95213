package report

import (
	"bytes"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"myrpc/benchmarks/internal/results"
)

func row(impl string, callers, payload int, qps float64) results.Row {
	return results.Row{Kind: results.KindCase, Impl: impl, Callers: callers, PayloadBytes: payload, QPS: qps, Calls: uint64(qps), Reps: 1,
		P50US: 100, P99US: 900, P999US: 2000}
}

func sampleRows() []results.Row {
	failed := row("netrpc", 64, 64, 0)
	failed.Failed, failed.FailReason, failed.Calls, failed.Errors = true, "no call succeeded", 0, 12
	v1 := row("v1", 1000, 64, 9000)
	v1.Errors, v1.ErrorSamples = 42, []string{"42× dial tcp 127.0.0.1:4000: connect: cannot assign requested address"}
	burst := results.Row{Kind: results.KindBurst, Impl: "v1", Callers: 20000, PayloadBytes: 64, Calls: 19000, Errors: 1000,
		WindowS: 3.5, P50US: 1500, P99US: 9000, ErrorSamples: []string{"1000× deadline exceeded"}}
	return []results.Row{
		row("raw-pipe", 64, 64, 200000),
		row("grpc", 64, 64, 50000),
		row("raw-conn", 64, 64, 100000),
		row("v1", 64, 64, 10000),
		failed,
		row("grpc", 1000, 64, 40000),
		v1,
		row("grpc", 64, 1024, 45000),
		row("v1", 64, 1024, 9000),
		burst,
	}
}

func TestRatio(t *testing.T) {
	rows := sampleRows()
	tests := []struct {
		name   string
		r      results.Row
		base   string
		want   float64
		wantOK bool
	}{
		{"v1 against grpc", rows[3], "grpc", 0.2, true},
		{"v1 against raw-conn", rows[3], "raw-conn", 0.1, true},
		{"v1 against raw-pipe", rows[3], "raw-pipe", 0.05, true},
		{"grpc against itself", rows[1], "grpc", 1, true},
		{"raw-pipe against grpc", rows[0], "grpc", 4, true},
		{"same callers, other payload", rows[8], "grpc", 0.2, true},
		{"no raw-conn row at 1000 callers", rows[6], "raw-conn", 0, false},
		{"a failed row has no ratio", rows[4], "grpc", 0, false},
		{"against a failed baseline", rows[3], "netrpc", 0, false},
		{"a burst has no ratio", rows[9], "grpc", 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Ratio(rows, tt.r, tt.base)
			if ok != tt.wantOK || (ok && (got < tt.want-1e-9 || got > tt.want+1e-9)) {
				t.Fatalf("Ratio = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestMarkdown(t *testing.T) {
	md := Markdown(sampleRows())
	for _, want := range []string{
		"## Payload 64 B",
		"## Payload 1 KiB",
		"| v1 | 64 | 10.0k | 0.20 | 0.10 | 0.05 | 100 | 900 | 2,000 | 0 |",
		"| grpc | 64 | 50.0k | 1.00 | 0.50 | 0.25 |",
		"| netrpc | 64 | failed |",
		"| v1 | 1000 | 9.00k | 0.23 | — | — |",
		"## Burst: 20,000 goroutines",
		"| v1 | 20,000 | 19,000 | 1,000 | 3.5s | 1.5 | 9.0 |",
		"- **netrpc**, 64 callers, 64 B: 12 errors; failed: no call succeeded",
		"`42× dial tcp 127.0.0.1:4000: connect: cannot assign requested address`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("results.md lacks %q:\n%s", want, md)
		}
	}
	// Rows come by callers, then in table order: v1 before grpc before
	// raw-conn before raw-pipe.
	iv1, igrpc, ipipe := strings.Index(md, "| v1 | 64 |"), strings.Index(md, "| grpc | 64 |"), strings.Index(md, "| raw-pipe | 64 |")
	if !(iv1 < igrpc && igrpc < ipipe) {
		t.Error("rows are not in table order")
	}
}

func TestChartAndPage(t *testing.T) {
	dir := t.TempDir()
	rows := sampleRows()
	chart := filepath.Join(dir, "results", "chart.png")
	os.MkdirAll(filepath.Dir(chart), 0o755)
	if err := WriteChart(rows, chart); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(chart)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if w, h := img.Bounds().Dx(), img.Bounds().Dy(); w < 800 || h < 800 {
		t.Fatalf("chart is %dx%d", w, h)
	}

	page := filepath.Join(dir, "docs", "benchmarks.md")
	os.MkdirAll(filepath.Dir(page), 0o755)
	if err := WritePage(rows, page, chart, filepath.Join(dir, "results", "results.json")); err != nil {
		t.Fatal(err)
	}
	b, err = os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{
		"make bench-all",
		"](../results/chart.png)",
		"## Method",
		"## How to read the ratios",
		"Absolute numbers vary by machine",
		"## Burst",
		"| raw-pipe | limit |",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestChartNeedsCases(t *testing.T) {
	var buf bytes.Buffer
	if err := Chart(nil, &buf); err == nil {
		t.Fatal("a chart of nothing was drawn")
	}
	// One callers value and one implementation still make a chart.
	if err := Chart([]results.Row{row("grpc", 64, 64, 1000)}, &buf); err != nil {
		t.Fatal(err)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct{ got, want string }{
		{fmtCount(987), "987"},
		{fmtCount(5432), "5.43k"},
		{fmtCount(56100), "56.1k"},
		{fmtCount(1020000), "1.02M"},
		{fmtInt(0), "0"},
		{fmtInt(1234567), "1,234,567"},
		{fmtUS(5.25), "5.2"},
		{fmtUS(12345.6), "12,346"},
		{sizeName(64), "64 B"},
		{sizeName(1024), "1 KiB"},
		{sizeName(1500), "1500 B"},
		{fmtLatency(50), "50 µs"},
		{fmtDecade(1e5), "100k"},
		{fmtDecade(1e6), "1M"},
		{fmtDecade(10), "10"},
		{fmtLatency(2000), "2 ms"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// TestClusterTable: cluster rows get their own table, in the page and in
// results.md, and a run without them has none.
func TestClusterTable(t *testing.T) {
	cluster := func(policy string, killed int, slower, errs uint64) results.Row {
		return results.Row{Kind: results.KindCluster, Impl: "v5", Policy: policy, Servers: 3, Callers: 64, PayloadBytes: 64,
			SlowDelayMs: 5, Killed: killed, QPS: 20000, Calls: 40000, SlowServed: slower, Errors: errs, Reps: 1,
			P50US: 300, P99US: 5400, P999US: 6000, FastP50US: 250, FastP99US: 800, SlowP99US: 5600}
	}
	open := cluster("p2c", 0, 120, 0)
	open.OfferedQPS = 15000
	rows := append(sampleRows(), cluster("round_robin", 0, 13000, 0), cluster("p2c", 0, 400, 0), open, cluster("p2c", 1, 380, 7))
	want := []string{
		"## Cluster: one client, three servers, one of them slow",
		"over 3 servers, each in its own process; the first of them is slow: it holds every call for 5ms",
		"The rows at 15.0k/s offered are an open loop",
		"| v5 | round_robin | 3 | 64 | closed loop | no | 20.0k | 300 | 5,400 | 6,000 | 13,000 (32.5%) | 5,600 | 250 | 800 | 0 |",
		"| v5 | p2c | 3 | 64 | closed loop | no | 20.0k | 300 | 5,400 | 6,000 | 400 (1.0%) | 5,600 | 250 | 800 | 0 |",
		"| v5 | p2c | 3 | 64 | 15.0k/s offered | no | 20.0k | 300 | 5,400 | 6,000 | 120 (0.3%) | 5,600 | 250 | 800 | 0 |",
		"| v5 | p2c | 3 | 64 | closed loop | halfway | 20.0k | 300 | 5,400 | 6,000 | 380 (0.9%) | 5,600 | 250 | 800 | 7 |",
	}
	for name, text := range map[string]string{"page": Page(rows, "chart.png", "results.json"), "results.md": Markdown(rows)} {
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s lacks %q", name, w)
			}
		}
	}
	if strings.Contains(Page(sampleRows(), "chart.png", "results.json"), "## Cluster") {
		t.Error("a run without cluster rows has a cluster table")
	}
}
