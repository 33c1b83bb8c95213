package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

var excerpt = regexp.MustCompile("(?s)<!-- code: ([^ ]+) -->\n```[a-z]*\n(.*?)```")

func TestDocExcerpts(t *testing.T) {
	root := "../../../.."
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range excerpt.FindAllStringSubmatch(string(text), -1) {
			found++
			src, err := os.ReadFile(filepath.Join(root, m[1]))
			if err != nil {
				t.Errorf("%s: %v", filepath.Base(doc), err)
				continue
			}
			if bad := missing(m[2], string(src)); bad != "" {
				t.Errorf("%s: the excerpt of %s has drifted from the code; first line not found in order:\n%s",
					filepath.Base(doc), m[1], bad)
			}
		}
	}
	t.Logf("checked %d excerpts in %d pages", found, len(docs))
}

// missing returns the first line of the excerpt that the source does not
// have, in order, or "". "// ..." lines split the excerpt into segments;
// each segment must appear as consecutive lines of the source, after the
// previous segment.
func missing(block, src string) string {
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	var segments [][]string
	seg := []string{}
	for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		if l = strings.TrimSpace(l); l == "// ..." {
			segments = append(segments, seg)
			seg = []string{}
			continue
		}
		seg = append(seg, l)
	}
	segments = append(segments, seg)
	pos := 0
	for _, seg := range segments {
		if len(seg) == 0 {
			continue
		}
		at := -1
		for i := pos; i+len(seg) <= len(lines) && at < 0; i++ {
			if slices.Equal(lines[i:i+len(seg)], seg) {
				at = i
			}
		}
		if at < 0 {
			return firstMissing(seg, lines[pos:])
		}
		pos = at + len(seg)
	}
	return ""
}

// firstMissing names the line of a segment that breaks the match: the
// first line that the source has nowhere, or else the segment's first line.
func firstMissing(seg, lines []string) string {
	for _, l := range seg {
		if !slices.Contains(lines, l) {
			return l
		}
	}
	return seg[0] + " (and the lines after it, in this order)"
}

func TestMissing(t *testing.T) {
	src := "a\nb\nc\nd\ne\n"
	// A first line that occurs more than once: the match must not stop at
	// the first occurrence.
	if got := missing("x\ny\n", "x\nz\nx\ny\n"); got != "" {
		t.Errorf("missing found %q; the excerpt is at the second x", got)
	}
	for _, tc := range []struct {
		block, want string
	}{
		{"a\nb\n", ""},
		{"  b\n\tc\n", ""},
		{"a\n// ...\nd\ne\n", ""},
		{"a\nc\n", "a (and the lines after it, in this order)"},
		{"d\n// ...\nb\n", "b"},
		{"x\n", "x"},
		{"b\nc\n// ...\nb\nc\n", "b"},
	} {
		if got := missing(tc.block, src); got != tc.want {
			t.Errorf("missing(%q) = %q, want %q", tc.block, got, tc.want)
		}
	}
}
