package report

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"myrpc/benchmarks/internal/results"
)

// root is the repository's root, from this package's folder.
const root = "../../.."

// TestDocsMatchResults: every benchmark number in README.md and the docs is
// what benchmarks/results/latest/results.json says, or the run in
// benchmarks/results/NAME/ that its region names, and docs/benchmarks.md is
// the page made from results/latest. A number typed over by hand, or a run
// made again without the docs, fails here: run make bench-docs.
func TestDocsMatchResults(t *testing.T) {
	in := filepath.Join(root, "benchmarks", "results", "latest", "results.json")
	rows, err := results.Load(in)
	if err != nil {
		t.Fatal(err)
	}
	sets, err := LoadSets(filepath.Join(root, "benchmarks", "results"), rows)
	if err != nil {
		t.Fatal(err)
	}
	stale, err := StaleRegions(root, sets)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range stale {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		want, _ := RewriteSets(string(b), sets)
		t.Errorf("%s: benchmark regions differ from benchmarks/results (run make bench-docs); first difference:\n%s", f, firstDiff(string(b), want))
	}
	page, err := os.ReadFile(filepath.Join(root, "docs", "benchmarks.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := Page(rows, "../benchmarks/results/latest/chart.png", "benchmarks/results/latest/results.json"); string(page) != want {
		t.Errorf("docs/benchmarks.md is not the page results.json makes (run make bench-docs); first difference:\n%s", firstDiff(string(page), want))
	}
}

// firstDiff shows the first line where got and want differ.
func firstDiff(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := range min(len(g), len(w)) {
		if g[i] != w[i] {
			return "  have: " + g[i] + "\n  want: " + w[i]
		}
	}
	return "  (one is a prefix of the other)"
}
