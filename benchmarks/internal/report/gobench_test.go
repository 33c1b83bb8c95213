package report

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"myrpc/benchmarks/internal/results"
)

// benchTxt is a bench.txt as make bench-ring writes it, cut short.
const benchTxt = `commit: abc123
date: 2026-12-05T01:19:57Z
load-before: 1.27
goos: linux
pkg: myrpc/v4-epoll-batch/writev
BenchmarkQueue/impl=mutex/producers=1-2   	  200000	        60.0 ns/op	   0.00002 drains/op	      75 B/op	       0 allocs/op
BenchmarkQueue/impl=mutex/producers=1-2   	  200000	       100.0 ns/op	   0.00002 drains/op	      75 B/op	       0 allocs/op
BenchmarkQueue/impl=mutex/producers=1-2   	  200000	        80.0 ns/op	   0.00002 drains/op	      75 B/op	       0 allocs/op
BenchmarkQueue/impl=ring/producers=1-2    	  200000	        9.5 ns/op	   0.001 drains/op	       0 B/op	       0 allocs/op
BenchmarkQueue/impl=ring/producers=1-2    	  200000	        20.5 ns/op	   0.001 drains/op	       0 B/op	       0 allocs/op
BenchmarkQueue/impl=mutex/producers=4-2   	  200000	        70.0 ns/op	   0.00002 drains/op	      75 B/op	       0 allocs/op
PASS
ok  	myrpc/v4-epoll-batch/writev	1.380s
load-after: 2.5
`

func parseBenchTxt(t *testing.T) *GoBench {
	t.Helper()
	g, err := ParseGoBench(strings.NewReader(benchTxt))
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestParseGoBench(t *testing.T) {
	g := parseBenchTxt(t)
	if want := []string{"Queue/impl=mutex/producers=1", "Queue/impl=ring/producers=1", "Queue/impl=mutex/producers=4"}; !slices.Equal(g.Names, want) {
		t.Errorf("names %q, want %q", g.Names, want)
	}
	if got := g.Results["Queue/impl=mutex/producers=1"]["ns/op"]; !slices.Equal(got, []float64{60, 100, 80}) {
		t.Errorf("mutex/1 ns/op %v, want [60 100 80]", got)
	}
	if got := g.Results["Queue/impl=ring/producers=1"]["B/op"]; !slices.Equal(got, []float64{0, 0}) {
		t.Errorf("ring/1 B/op %v, want [0 0]", got)
	}
	if g.Config["commit"] != "abc123" || g.Config["load-before"] != "1.27" || g.Config["load-after"] != "2.5" {
		t.Errorf("config %v", g.Config)
	}
	if _, err := ParseGoBench(strings.NewReader("PASS\nok x 1s\n")); err == nil {
		t.Error("output without results: no error")
	}
}

func TestRewriteGoBench(t *testing.T) {
	sets := Sets{"ring": {Bench: parseBenchTxt(t)}}
	for _, tt := range []struct{ spec, want string }{
		{"Queue/impl=mutex/producers=1.median %.0f", "80"},
		{"Queue/impl=ring/producers=1.median %.1f", "15.0"},
		{"Queue/impl=mutex/producers=1.min %.0f", "60"},
		{"Queue/impl=mutex/producers=1.max %.0f", "100"},
		{"Queue/impl=mutex/producers=1.median / Queue/impl=ring/producers=1.median %.1f", "5.3"},
		{"runs word", "one"},
		{"Queue/impl=mutex/producers=1.runs word", "three"},
		{"load-before %.1f", "1.3"},
		{"commit code", "`abc123`"},
	} {
		doc := "a <!-- bench@ring:" + tt.spec + " -->?<!-- /bench --> b"
		got, err := RewriteSets(doc, sets)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if want := "a <!-- bench@ring:" + tt.spec + " -->" + tt.want + "<!-- /bench --> b"; got != want {
			t.Errorf("%s: got %q, want %q", tt.spec, got, want)
		}
	}

	table := "<!-- bench@ring:gobench bench=Queue rows=producers cols=impl -->\nold\n<!-- /bench -->\n"
	got, err := RewriteSets(table, sets)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- bench@ring:gobench bench=Queue rows=producers cols=impl -->\n" +
		"| producers | mutex | ring |\n| --- | ---: | ---: |\n" +
		"| 1 | 80 (60–100) | 15 (10–20) |\n| 4 | 70 (70–70) | — |\n<!-- /bench -->\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if again, _ := RewriteSets(got, sets); again != got {
		t.Fatal("rewriting a rewritten table changed it")
	}

	for _, spec := range []string{
		"Queue/impl=spin/producers=1.median", // no such benchmark
		"Queue/impl=ring/producers=1.mean",   // no such field
		"date",                               // not a number
		"gobench rows=producers",             // no cols
		"gobench rows=producers cols=shape",  // a key the names lack
		"gobench bench=Stack rows=producers cols=impl",
		"for-commit 724a71ecf1fc",
	} {
		if _, err := RewriteSets("<!-- bench@ring:"+spec+" -->x<!-- /bench -->", sets); err == nil {
			t.Errorf("%s: no error", spec)
		}
	}
}

func TestRewriteNamedRun(t *testing.T) {
	one := regionRows()
	for i := range one {
		one[i].Machine.GOMAXPROCS = 1
		one[i].P50US = 32
	}
	sets := Sets{"": {Rows: regionRows()}, "gomaxprocs1": {Rows: one}}
	doc := "<!-- bench:v1/64/64.p50 us -->?<!-- /bench --> against " +
		"<!-- bench@gomaxprocs1:v1/64/64.p50 us -->?<!-- /bench --> with GOMAXPROCS=<!-- bench@gomaxprocs1:gomaxprocs int -->?<!-- /bench -->"
	got, err := RewriteSets(doc, sets)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- bench:v1/64/64.p50 us -->100<!-- /bench --> against " +
		"<!-- bench@gomaxprocs1:v1/64/64.p50 us -->32<!-- /bench --> with GOMAXPROCS=<!-- bench@gomaxprocs1:gomaxprocs int -->1<!-- /bench -->"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	for _, spec := range []string{"bench@nosuchrun:v1/64/64.p50", "bench@gomaxprocs1:gobench rows=a cols=b"} {
		if _, err := RewriteSets("<!-- "+spec+" -->x<!-- /bench -->", sets); err == nil {
			t.Errorf("%s: no error", spec)
		}
	}
}

// TestHandEditedNamedRunIsStale: the runs in benchmarks/results/NAME/ are
// loaded by LoadSets, and a number typed over in a region of one, inline or
// in a gobench table, makes its file stale as one of results/latest does.
func TestHandEditedNamedRunIsStale(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"docs", "benchmarks/results/ring", "benchmarks/results/gomaxprocs1", "benchmarks/results/soak"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name, s string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("benchmarks/results/ring/bench.txt", benchTxt)
	one := regionRows()
	for i := range one {
		one[i].P50US = 32
	}
	if err := results.Save(filepath.Join(dir, "benchmarks/results/gomaxprocs1/results.json"), one); err != nil {
		t.Fatal(err)
	}
	write("benchmarks/results/soak/latest.json", "{}") // not a run regions read
	sets, err := LoadSets(filepath.Join(dir, "benchmarks", "results"), regionRows())
	if err != nil {
		t.Fatal(err)
	}
	if len(sets) != 3 || sets["ring"].Bench == nil || len(sets["gomaxprocs1"].Rows) == 0 {
		t.Fatalf("LoadSets = %v; want latest, ring and gomaxprocs1", sets)
	}

	good := "With one core V1's p50 was <!-- bench@gomaxprocs1:v1/64/64.p50 us -->32<!-- /bench --> µs.\n\n" +
		"<!-- bench@ring:gobench bench=Queue rows=producers cols=impl -->\n" +
		"| producers | mutex | ring |\n| --- | ---: | ---: |\n" +
		"| 1 | 80 (60–100) | 15 (10–20) |\n| 4 | 70 (70–70) | — |\n<!-- /bench -->\n"
	write("README.md", "")
	for _, edit := range []struct{ old, new string }{
		{">32<", ">27<"},
		{"| 80 (60–100) |", "| 45 (60–100) |"},
	} {
		write("docs/v4-epoll-batch.md", good)
		if stale, err := StaleRegions(dir, sets); err != nil || len(stale) != 0 {
			t.Fatalf("StaleRegions of generated numbers = %v, %v; want none", stale, err)
		}
		write("docs/v4-epoll-batch.md", strings.Replace(good, edit.old, edit.new, 1))
		stale, err := StaleRegions(dir, sets)
		if err != nil || !slices.Equal(stale, []string{filepath.Join("docs", "v4-epoll-batch.md")}) {
			t.Fatalf("StaleRegions after %s → %s = %v, %v; want docs/v4-epoll-batch.md", edit.old, edit.new, stale, err)
		}
		if _, err := RewriteRegions(dir, sets); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "docs", "v4-epoll-batch.md")); string(b) != good {
			t.Fatalf("after RewriteRegions: %q, want %q", b, good)
		}
	}
}
