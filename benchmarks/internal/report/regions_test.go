package report

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"myrpc/benchmarks/internal/results"
)

// regionRows are a run's rows for the region tests.
func regionRows() []results.Row {
	rows := sampleRows()
	for i := range rows {
		rows[i].Machine.GitCommit, rows[i].Machine.Cores, rows[i].Flags.Reps, rows[i].Flags.Burst = "abc123", 2, 3, 20000
		rows[i].RunWallS = 812.4
	}
	rows[0].ServerCPUUSPerCall = 4.25
	return rows
}

func TestRewriteInline(t *testing.T) {
	rows := regionRows()
	for _, tt := range []struct{ spec, want string }{
		{"v1/64/64.qps k", "10.0k"},
		{"raw-pipe/64/64.qps k", "200.0k"},
		{"v1/64/64.qps / grpc/64/64.qps x", "0.20"},
		{"grpc/64/64.qps / v1/64/64.qps %.1f", "5.0"},
		{"v1/64/1000.p99 / 1000 %.1f", "0.9"},
		{"v1/64/1000.p99 us", "900"},
		{"raw-pipe/64/64.cpu", "4.25"},
		{"burst/v1.calls int", "19,000"},
		{"burst/v1.window * 2 - 1 %.0f", "6"},
		{"burst int", "20,000"},
		{"reps word", "three"},
		{"cores int", "2"},
		{"wall / 60 %.0f", "14"},
		{"commit", "abc123"},
		{"commit code", "`abc123`"},
	} {
		doc := "a <!-- bench:" + tt.spec + " -->?<!-- /bench --> b"
		got, err := Rewrite(doc, rows)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if want := "a <!-- bench:" + tt.spec + " -->" + tt.want + "<!-- /bench --> b"; got != want {
			t.Errorf("%s: got %q, want %q", tt.spec, got, want)
		}
	}
}

func TestRewriteErrors(t *testing.T) {
	rows := regionRows()
	for _, spec := range []string{
		"v9/64/64.qps",            // no such row
		"v1/64/64.speed",          // no such field
		"v1/64/64.qps furlongs",   // no such format
		"v1/64/64.qps ^ 2 %.0f",   // no such operator
		"netrpc/64/64.qps",        // a failed row
		"v1/64.qps",               // a malformed reference
		"table impls=v1 cols=mph", // no such column
		"table callers=64",        // no impls
		"bursts impls=v3",         // no such burst
		"for-commit 724a71ecf1fc", // prose about another run
	} {
		if _, err := Rewrite("<!-- bench:"+spec+" -->x<!-- /bench -->", rows); err == nil {
			t.Errorf("%s: no error", spec)
		}
	}
}

func TestRewriteTables(t *testing.T) {
	rows := regionRows()
	doc := "<!-- bench:table payload=64 callers=64 impls=v1,grpc cols=qps,x-grpc,p50,fpw bold=v1 -->\nold\n<!-- /bench -->\n" +
		"<!-- bench:bursts impls=v1 -->\n<!-- /bench -->\n"
	got, err := Rewrite(doc, rows)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- bench:table payload=64 callers=64 impls=v1,grpc cols=qps,x-grpc,p50,fpw bold=v1 -->\n" +
		"| impl | callers | QPS | × grpc | p50 µs | frames/write |\n| --- | ---: | ---: | ---: | ---: | ---: |\n" +
		"| **v1** | 64 | 10.0k | 0.20 | 100 | — |\n| grpc | 64 | 50.0k | 1.00 | 100 | — |\n<!-- /bench -->\n" +
		"<!-- bench:bursts impls=v1 -->\n| impl | ok of 20,000 | all done in | p99 ms | server RSS MiB |\n| --- | ---: | ---: | ---: | ---: |\n" +
		"| v1 | 19,000 | 3.50 s | 9 | 0 |\n<!-- /bench -->\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if again, _ := Rewrite(got, rows); again != got {
		t.Fatal("rewriting a rewritten document changed it")
	}
}

// TestBurstRegionFailedRow: a burst row that failed (its measures could
// not be taken) shows its successful calls and "failed", never the
// nonsense its unset window would give.
func TestBurstRegionFailedRow(t *testing.T) {
	rows := regionRows()
	for i := range rows {
		if rows[i].Kind == results.KindBurst && rows[i].Impl == "v1" {
			rows[i].Failed, rows[i].FailReason, rows[i].WindowS = true, "reading CPU times: too many open files", -9.2e9
		}
	}
	got, err := Rewrite("<!-- bench:bursts impls=v1 -->?<!-- /bench -->", rows)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- bench:bursts impls=v1 -->\n| impl | ok of 20,000 | all done in | p99 ms | server RSS MiB |\n| --- | ---: | ---: | ---: | ---: |\n" +
		"| v1 | 19,000 | failed | — | — |\n<!-- /bench -->"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
}

// TestHandEditedNumberIsStale: a number typed over inside a region makes
// its file stale, and RewriteRegions puts the generated number back.
func TestHandEditedNumberIsStale(t *testing.T) {
	rows := regionRows()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	good := "V1 makes <!-- bench:v1/64/64.qps k -->10.0k<!-- /bench --> calls a second.\n"
	write := func(name, s string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", good)
	write("docs/v1-basic.md", good)
	sets := Sets{"": {Rows: rows}}
	if stale, err := StaleRegions(dir, sets); err != nil || len(stale) != 0 {
		t.Fatalf("StaleRegions of generated numbers = %v, %v; want none", stale, err)
	}
	write("docs/v1-basic.md", strings.Replace(good, "10.0k", "12.0k", 1))
	stale, err := StaleRegions(dir, sets)
	if err != nil || !slices.Equal(stale, []string{filepath.Join("docs", "v1-basic.md")}) {
		t.Fatalf("StaleRegions after a hand edit = %v, %v; want docs/v1-basic.md", stale, err)
	}
	if _, err := RewriteRegions(dir, sets); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "docs", "v1-basic.md")); string(b) != good {
		t.Fatalf("after RewriteRegions: %q, want %q", b, good)
	}
}

func TestForCommit(t *testing.T) {
	doc := "<!-- bench:for-commit abc123 -->Since then, V4 writes differently.<!-- /bench -->"
	if got, err := Rewrite(doc, regionRows()); err != nil || got != doc {
		t.Fatalf("Rewrite of prose about the results' own commit = %q, %v; want it unchanged", got, err)
	}
}

// TestBurstTableFailedRow: the page's burst table shows a failed row's
// successful calls and "failed" where its window would be.
func TestBurstTableFailedRow(t *testing.T) {
	rows := regionRows()
	for i := range rows {
		if rows[i].Kind == results.KindBurst && rows[i].Impl == "v1" {
			rows[i].Failed, rows[i].WindowS = true, -9.2e9
		}
	}
	var b strings.Builder
	burstTable(&b, rows)
	if got := b.String(); !strings.Contains(got, "| v1 | 20,000 | 19,000 |") || !strings.Contains(got, "| failed |") || strings.Contains(got, "h33m") {
		t.Fatalf("burst table:\n%s", got)
	}
}

// TestClusterRefs: an expression names a cluster row by its policy, or
// the row with a server killed by kill.
func TestClusterRefs(t *testing.T) {
	rows := regionRows()
	for _, c := range []struct {
		policy  string
		killed  int
		offered float64
		p99     float64
		slower  uint64
		errs    uint64
	}{
		{"round_robin", 0, 0, 5400, 13000, 0}, {"p2c", 0, 0, 900, 400, 0},
		{"round_robin", 0, 15000, 5300, 10000, 0}, {"p2c", 0, 15000, 700, 100, 0},
		{"p2c", 1, 0, 1200, 380, 7},
	} {
		rows = append(rows, results.Row{Kind: results.KindCluster, Impl: "v5", Policy: c.policy, Killed: c.killed, OfferedQPS: c.offered, Servers: 3,
			SlowDelayMs: 5, Callers: 64, P99US: c.p99, SlowServed: c.slower, FastP99US: c.p99 / 10, SlowP99US: c.p99 * 2, Errors: c.errs, Calls: 40000, Reps: 1})
	}
	for _, tt := range []struct{ spec, want string }{
		{"cluster/v5/round_robin.p99 us", "5,400"},
		{"cluster/v5/p2c.p99 us", "900"},
		{"cluster/v5/kill.errors int", "7"},
		{"cluster/v5/p2c.slowserved / cluster/v5/p2c.calls * 100 %.1f", "1.0"},
		{"cluster/v5/round_robin.fastp99 us", "540"},
		{"cluster/v5/p2c.fastcalls int", "39,600"},
		{"cluster/v5/p2c.servers word", "three"},
		{"cluster/v5/kill.delay %.0f", "5"},
		{"cluster/v5/round_robin/open.p99 us", "5,300"},
		{"cluster/v5/p2c/open.p99 us", "700"},
		{"cluster/v5/p2c/open.offered k", "15.0k"},
		{"cluster/v5/p2c/open.slowp99 us", "1,400"},
	} {
		doc := "<!-- bench:" + tt.spec + " -->?<!-- /bench -->"
		got, err := Rewrite(doc, rows)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if want := "<!-- bench:" + tt.spec + " -->" + tt.want + "<!-- /bench -->"; got != want {
			t.Errorf("%s: got %q, want %q", tt.spec, got, want)
		}
	}
	if _, err := Rewrite("<!-- bench:cluster/v5/random.p99 -->x<!-- /bench -->", rows); err == nil {
		t.Error("a policy with no row: no error")
	}
	got, err := Rewrite("<!-- bench:clusters -->?<!-- /bench -->", rows)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Rewrite("<!-- bench:cluster/v5/kill/open.p99 -->x<!-- /bench -->", rows); err == nil {
		t.Error("an open-loop kill, which does not run: no error")
	}
	if n := strings.Count(got, "\n| v5 | "); n != 5 || !strings.Contains(got, "| p2c | 3 | 64 | closed loop | halfway |") {
		t.Errorf("the clusters region has %d rows of v5, want 5 with the killed one:\n%s", n, got)
	}
	if _, err := Rewrite("<!-- bench:clusters -->?<!-- /bench -->", regionRows()); err == nil {
		t.Error("a clusters region with no cluster rows: no error")
	}
}
