package doccheck

import (
	"os"
	"path/filepath"
	"regexp"
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
// have, in order, or "". "// ..." lines skip ahead; other lines must follow
// one another in the source.
func missing(block, src string) string {
	var lines []string
	for _, l := range strings.Split(src, "\n") {
		lines = append(lines, strings.TrimSpace(l))
	}
	pos := 0
	contiguous := false
	for _, l := range strings.Split(strings.TrimRight(block, "\n"), "\n") {
		l = strings.TrimSpace(l)
		if l == "// ..." {
			contiguous = false
			continue
		}
		if contiguous {
			if pos < len(lines) && lines[pos] == l {
				pos++
				continue
			}
			return l
		}
		i := indexFrom(lines, l, pos)
		if i < 0 {
			return l
		}
		pos = i + 1
		contiguous = true
	}
	return ""
}

func indexFrom(lines []string, l string, from int) int {
	for i := from; i < len(lines); i++ {
		if lines[i] == l {
			return i
		}
	}
	return -1
}

func TestMissing(t *testing.T) {
	src := "a\nb\nc\nd\ne\n"
	for _, tc := range []struct {
		block, want string
	}{
		{"a\nb\n", ""},
		{"  b\n\tc\n", ""},
		{"a\n// ...\nd\ne\n", ""},
		{"a\nc\n", "c"},
		{"d\n// ...\nb\n", "b"},
		{"x\n", "x"},
	} {
		if got := missing(tc.block, src); got != tc.want {
			t.Errorf("missing(%q) = %q, want %q", tc.block, got, tc.want)
		}
	}
}
