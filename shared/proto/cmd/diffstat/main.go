// Command diffstat writes, at the top of each stage's chapter, the
// diffstat of the stage's diff from the one before: the region
//
//	<!-- diffstat: v1-to-v2 -->
//	...
//	<!-- /diffstat -->
//
// of docs/v2-*.md is rewritten from docs/diffs/v1-to-v2.diff (the code)
// and docs/diffs/v1-to-v2.tests.diff (the tests), which make diffs writes
// first. With -check it writes nothing and fails if a region is not what
// it would write.
//
//	go run ./cmd/diffstat -root ../.. [-check] v1-to-v2 v2-to-v3 v3-to-v4
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"myrpc/shared/proto/internal/gitdiff"
)

func main() {
	root := flag.String("root", ".", "the repository's root")
	check := flag.Bool("check", false, "fail if a chapter's diffstat is stale instead of writing it")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: diffstat [-root dir] [-check] vA-to-vB...")
		os.Exit(2)
	}
	failed := false
	for _, pair := range flag.Args() {
		if err := run(*root, pair, *check); err != nil {
			fmt.Fprintln(os.Stderr, err)
			failed = true
		}
	}
	if failed {
		os.Exit(1)
	}
}

var pairName = regexp.MustCompile(`^v([0-9])-to-v([0-9])$`)

// run rewrites, or checks, the diffstat of one pair in its chapter.
func run(root, pair string, check bool) error {
	m := pairName.FindStringSubmatch(pair)
	if m == nil {
		return fmt.Errorf("%s: not a pair of stages such as v1-to-v2", pair)
	}
	chapters, err := filepath.Glob(filepath.Join(root, "docs", "v"+m[2]+"-*.md"))
	if err != nil || len(chapters) != 1 {
		return fmt.Errorf("%s: want one chapter docs/v%s-*.md, found %v", pair, m[2], chapters)
	}
	chapter := chapters[0]
	var parts [2][]gitdiff.File
	for i, name := range []string{pair + ".diff", pair + ".tests.diff"} {
		text, err := os.ReadFile(filepath.Join(root, "docs", "diffs", name))
		if err != nil {
			return err
		}
		if parts[i], err = gitdiff.Parse(string(text)); err != nil {
			return fmt.Errorf("docs/diffs/%s: %v", name, err)
		}
	}
	page, err := os.ReadFile(chapter)
	if err != nil {
		return err
	}
	rel := "docs/" + filepath.Base(chapter)
	open := []byte("<!-- diffstat: " + pair + " -->\n")
	const closing = "<!-- /diffstat -->"
	start := bytes.Index(page, open)
	if start < 0 {
		return fmt.Errorf("%s: no line %q to put the diffstat under", rel, strings.TrimSpace(string(open)))
	}
	start += len(open)
	end := bytes.Index(page[start:], []byte(closing))
	if end < 0 {
		return fmt.Errorf("%s: the diffstat region has no closing %s", rel, closing)
	}
	end += start
	region := render(pair, parts[0], parts[1])
	if string(page[start:end]) == region {
		return nil
	}
	if check {
		return fmt.Errorf("stale: the diffstat in %s (run make diffs)", rel)
	}
	out := append(append(append([]byte{}, page[:start]...), region...), page[end:]...)
	return os.WriteFile(chapter, out, 0o644)
}

// render returns the body of the region: a line of totals and a table of
// the code's files.
func render(pair string, code, tests []gitdiff.File) string {
	var b strings.Builder
	cn, ca, cr := gitdiff.Sum(code)
	tn, ta, tr := gitdiff.Sum(tests)
	fmt.Fprintf(&b, "\nCode: %s, +%d −%d lines; tests: %s, +%d −%d lines (full diffs: [code](diffs/%s.diff), [tests](diffs/%s.tests.diff))\n\n",
		files(cn), ca, cr, files(tn), ta, tr, pair, pair)
	b.WriteString("| code file | + | − | |\n| --- | ---: | ---: | --- |\n")
	for _, f := range code {
		note := ""
		switch f.Status {
		case gitdiff.Added:
			note = "new"
		case gitdiff.Deleted:
			note = "deleted"
		case gitdiff.Renamed:
			note = "renamed from `" + f.OldPath + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %d | %d | %s |\n", f.Path, f.Added, f.Removed, note)
	}
	b.WriteString("\n")
	return b.String()
}

// files returns "1 file" or "n files".
func files(n int) string {
	if n == 1 {
		return "1 file"
	}
	return fmt.Sprintf("%d files", n)
}
