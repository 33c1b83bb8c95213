// Command benchdoc writes results.md, chart.png and the docs page again
// from a results.json written by benchall, without running anything:
//
//	benchdoc -in results/latest/results.json -doc ../docs/benchmarks.md
//
// results.md and chart.png go beside the results.json. With -doc it also
// rewrites the benchmark regions of README.md and docs/*.md in the
// repository that holds the page (see report.Rewrite): make bench-docs.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"myrpc/benchmarks/internal/report"
	"myrpc/benchmarks/internal/results"
)

func main() {
	in := flag.String("in", "results/latest/results.json", "the results.json to read")
	doc := flag.String("doc", "", "also write the docs page here, e.g. ../docs/benchmarks.md, and rewrite the benchmark regions of README.md and docs/*.md beside it")
	flag.Parse()
	if err := run(*in, *doc); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(in, doc string) error {
	rows, err := results.Load(in)
	if err != nil {
		return err
	}
	dir := filepath.Dir(in)
	if err := os.WriteFile(filepath.Join(dir, "results.md"), []byte(report.Markdown(rows)), 0o644); err != nil {
		return err
	}
	chart := filepath.Join(dir, "chart.png")
	if err := report.WriteChart(rows, chart); err != nil {
		return err
	}
	if doc != "" {
		return report.WriteDocs(rows, doc, chart, in)
	}
	return nil
}
