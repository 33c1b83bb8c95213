package report

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"myrpc/benchmarks/internal/cpuprof"
)

// writeProfiles commits the profiles of two stages, as make profile
// writes them, under dir/benchmarks/results/profile.
func writeProfiles(t *testing.T, dir string) {
	t.Helper()
	stages := map[string]StageProfile{
		"v1": {
			Meta: cpuprof.Meta{Stage: "v1", Callers: 64, PayloadBytes: 64, Duration: "5s", Commit: "abc123", Cores: 2, QPS: 5400, Calls: 27000, LoadBefore: []float64{3.5, 2, 1}},
			Server: cpuprof.Summary{Samples: 360, CPUSeconds: 0.72,
				Top:        []cpuprof.Func{{Name: "internal/runtime/syscall/linux.Syscall6", Flat: 49.4, Cum: 49.4}, {Name: "runtime.futex", Flat: 2.5, Cum: 2.5}},
				Categories: []cpuprof.Share{{Category: cpuprof.CatConn, Pct: 27.7}, {Category: cpuprof.CatWrite, Pct: 12.6}, {Category: cpuprof.CatMyrpc, Pct: 59.7}}},
			Client: cpuprof.Summary{Samples: 320, CPUSeconds: 0.64,
				Top:        []cpuprof.Func{{Name: "myrpc/v1-basic/client.(*Client).Call", Flat: 3, Cum: 80}},
				Categories: []cpuprof.Share{{Category: cpuprof.CatRead, Pct: 40}, {Category: cpuprof.CatHarness, Pct: 60}}},
		},
		"v2": {
			Meta: cpuprof.Meta{Stage: "v2", Callers: 64, PayloadBytes: 64, Duration: "5s", Commit: "abc123", Cores: 2, QPS: 29700, Calls: 148500},
			Server: cpuprof.Summary{Samples: 390, CPUSeconds: 0.78,
				Top:        []cpuprof.Func{{Name: "internal/runtime/syscall/linux.Syscall6", Flat: 52.4, Cum: 52.4}},
				Categories: []cpuprof.Share{{Category: cpuprof.CatWrite, Pct: 40.4}, {Category: cpuprof.CatFutex, Pct: 1}, {Category: cpuprof.CatMyrpc, Pct: 58.6}}},
			Client: cpuprof.Summary{Samples: 270, CPUSeconds: 0.54,
				Top:        []cpuprof.Func{{Name: "myrpc/v2-pool-keepalive/client.(*Client).roundTrip", Flat: 1.5, Cum: 75.2}},
				Categories: []cpuprof.Share{{Category: cpuprof.CatWrite, Pct: 49.6}, {Category: cpuprof.CatHarness, Pct: 50.4}}},
		},
	}
	for name, sp := range stages {
		sub := filepath.Join(dir, "benchmarks", "results", "profile", name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for file, v := range map[string]any{"meta.json": sp.Meta, "server.json": sp.Server, "client.json": sp.Client} {
			if err := cpuprof.WriteJSON(filepath.Join(sub, file), v); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func loadTestProfiles(t *testing.T, dir string) Sets {
	t.Helper()
	sets, err := LoadSets(filepath.Join(dir, "benchmarks", "results"), regionRows())
	if err != nil {
		t.Fatal(err)
	}
	if sets["profile"].Profiles == nil {
		t.Fatalf("LoadSets found no profiles: %v", sets)
	}
	return sets
}

func TestRewriteProfiles(t *testing.T) {
	dir := t.TempDir()
	writeProfiles(t, dir)
	sets := loadTestProfiles(t, dir)
	doc := "<!-- bench@profile:profiles v1 v2 n=3 -->\nold\n<!-- /bench -->\n"
	got, err := RewriteSets(doc, sets)
	if err != nil {
		t.Fatal(err)
	}
	want := "<!-- bench@profile:profiles v1 v2 n=3 -->\n" +
		"**Server**, the functions that ran the most, in % of the server's CPU time (flat: running; cum: on the stack):\n\n" +
		"| # | v1 | flat % | cum % | v2 | flat % | cum % |\n| ---: | --- | ---: | ---: | --- | ---: | ---: |\n" +
		"| 1 | `linux.Syscall6` | 49.4 | 49.4 | `linux.Syscall6` | 52.4 | 52.4 |\n" +
		"| 2 | `runtime.futex` | 2.5 | 2.5 |  |  |  |\n\n" +
		"**Client**, the functions that ran the most, in % of the client's CPU time (flat: running; cum: on the stack):\n\n" +
		"| # | v1 | flat % | cum % | v2 | flat % | cum % |\n| ---: | --- | ---: | ---: | --- | ---: | ---: |\n" +
		"| 1 | `client.(*Client).Call` | 3.0 | 80.0 | `client.(*Client).roundTrip` | 1.5 | 75.2 |\n\n" +
		"**By kind of work**, in % of each side's CPU time:\n\n" +
		"| kind of work | v1 server | v2 server | v1 client | v2 client |\n| --- | ---: | ---: | ---: | ---: |\n" +
		"| syscall: write | 12.6 | 40.4 | 0.0 | 49.6 |\n" +
		"| syscall: read | 0.0 | 0.0 | 40.0 | 0.0 |\n" +
		"| syscall: socket, connect, accept, close | 27.7 | 0.0 | 0.0 | 0.0 |\n" +
		"| futex: threads sleep and wake | 0.0 | 1.0 | 0.0 | 0.0 |\n" +
		"| myrpc | 59.7 | 58.6 | 0.0 | 0.0 |\n" +
		"| benchmark harness | 0.0 | 0.0 | 60.0 | 50.4 |\n" +
		"| all system calls | **40.3** | **41.4** | **40.0** | **49.6** |\n\n" +
		"_64 callers, 64 B, 5 s measured: v1 5.4k calls/s, 0.7 s of server CPU in 360 samples and 0.6 s of client CPU in 320; " +
		"v2 29.7k calls/s, 0.8 s of server CPU in 390 samples and 0.5 s of client CPU in 270. Commit `abc123`, 2 cores._\n" +
		"<!-- /bench -->\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s\nfirst difference:\n%s", got, want, firstDiff(got, want))
	}
	if again, _ := RewriteSets(got, sets); again != got {
		t.Fatal("rewriting a rewritten document changed it")
	}
}

func TestRewriteProfileInline(t *testing.T) {
	dir := t.TempDir()
	writeProfiles(t, dir)
	sets := loadTestProfiles(t, dir)
	for _, tt := range []struct{ spec, want string }{
		{"v2/server.write - v1/server.write %.0f", "28"},
		{"v1/server.conn %.1f", "27.7"},
		{"v2/server.syscalls %.1f", "41.4"},
		{"v1/client.gc %.1f", "0.0"},
		{"v2.qps / v1.qps x", "5.50"},
		{"v1.calls int", "27,000"},
		{"v1.load %.1f", "3.5"},
		{"v1.cores word", "two"},
		{"v2/client.cpu %.2f", "0.54"},
		{"commit", "abc123"},
	} {
		doc := "a <!-- bench@profile:" + tt.spec + " -->?<!-- /bench --> b"
		got, err := RewriteSets(doc, sets)
		if err != nil {
			t.Errorf("%s: %v", tt.spec, err)
			continue
		}
		if want := "a <!-- bench@profile:" + tt.spec + " -->" + tt.want + "<!-- /bench --> b"; got != want {
			t.Errorf("%s: got %q, want %q", tt.spec, got, want)
		}
	}
	for _, spec := range []string{
		"profiles v1 v3",     // no profile of v3
		"profiles",           // no stages
		"profiles v1 n=x",    // a bad count
		"v3/server.write",    // no such stage
		"v1/proxy.write",     // no such side
		"v1/server.teleport", // no such category
		"v1.speed",           // no such value
		"v2.load",            // no load recorded
		"v1",                 // not a term
		"table impls=v1",     // a table of rows, over profiles
		"for-commit def456",  // prose about another run
	} {
		if _, err := RewriteSets("<!-- bench@profile:"+spec+" -->x<!-- /bench -->", sets); err == nil {
			t.Errorf("%s: no error", spec)
		}
	}
	if _, err := RewriteSets("<!-- bench:profiles v1 -->x<!-- /bench -->", sets); err == nil {
		t.Error("a profiles region over results/latest: no error")
	}
}

// TestStaleProfiles: a profiles table that is not what the committed
// profiles make, or a number in it typed over by hand, makes its file
// stale, as it does the tables of the benchmark runs.
func TestStaleProfiles(t *testing.T) {
	dir := t.TempDir()
	writeProfiles(t, dir)
	sets := loadTestProfiles(t, dir)
	if err := os.Mkdir(filepath.Join(dir, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	good, err := RewriteSets("V2 spends <!-- bench@profile:v2/server.write %.0f -->?<!-- /bench --> % writing.\n"+
		"<!-- bench@profile:profiles v1 v2 -->\n<!-- /bench -->\n", sets)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "docs", "v2-pool-keepalive.md")
	write := func(s string) {
		if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "README.md"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join("docs", "v2-pool-keepalive.md")}
	for _, edit := range []struct{ name, from, to string }{
		{"a number typed over", "| 1 | `linux.Syscall6` | 49.4 |", "| 1 | `linux.Syscall6` | 45.0 |"},
		{"prose typed over", "-->40<!--", "-->45<!--"},
		{"a row taken out", "| syscall: read | 0.0 | 0.0 | 40.0 | 0.0 |\n", ""},
	} {
		write(good)
		if stale, err := StaleRegions(dir, sets); err != nil || len(stale) != 0 {
			t.Fatalf("StaleRegions of generated tables = %v, %v; want none", stale, err)
		}
		if !strings.Contains(good, edit.from) {
			t.Fatalf("%s: %q is not in\n%s", edit.name, edit.from, good)
		}
		write(strings.Replace(good, edit.from, edit.to, 1))
		if stale, err := StaleRegions(dir, sets); err != nil || !slices.Equal(stale, want) {
			t.Errorf("%s: StaleRegions = %v, %v; want %v", edit.name, stale, err, want)
		}
	}
	// New profiles make the old table stale.
	sp := sets["profile"].Profiles["v2"]
	sp.Server.Top[0].Flat = 30
	sets["profile"].Profiles["v2"] = sp
	write(good)
	if stale, err := StaleRegions(dir, sets); err != nil || !slices.Equal(stale, want) {
		t.Errorf("after new profiles: StaleRegions = %v, %v; want %v", stale, err, want)
	}
}
