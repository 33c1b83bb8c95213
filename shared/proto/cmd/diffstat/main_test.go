package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const codeDiff = `diff --git a/a.go b/a.go
index 1111111..2222222 100644
--- a/a.go
+++ b/a.go
@@ -1,2 +1,2 @@
 package a
-var A = 1
+var A = 2
diff --git a/p/old.go b/q/new.go
similarity index 90%
rename from p/old.go
rename to q/new.go
diff --git a/b.go b/b.go
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/b.go
@@ -0,0 +1,2 @@
+package a
+var B = 1
`

const testsDiff = `diff --git a/a_test.go b/a_test.go
deleted file mode 100644
index 4444444..0000000
--- a/a_test.go
+++ /dev/null
@@ -1 +0,0 @@
-package a
`

const want = `# V2

<!-- diffstat: v1-to-v2 -->

Code: 3 files, +3 −1 lines; tests: 1 file, +0 −1 lines (full diffs: [code](diffs/v1-to-v2.diff), [tests](diffs/v1-to-v2.tests.diff))

| code file | + | − | |
| --- | ---: | ---: | --- |
| ` + "`a.go`" + ` | 1 | 1 |  |
| ` + "`q/new.go`" + ` | 0 | 0 | renamed from ` + "`p/old.go`" + ` |
| ` + "`b.go`" + ` | 2 | 0 | new |

<!-- /diffstat -->

## The problem
`

func TestRun(t *testing.T) {
	root := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	chapter := filepath.Join(root, "docs", "v2-fixture.md")
	write("docs/diffs/v1-to-v2.diff", codeDiff)
	write("docs/diffs/v1-to-v2.tests.diff", testsDiff)
	write("docs/v2-fixture.md", "# V2\n\n<!-- diffstat: v1-to-v2 -->\nold\n<!-- /diffstat -->\n\n## The problem\n")

	if err := run(root, "v1-to-v2", true); err == nil || !strings.Contains(err.Error(), "stale") {
		t.Errorf("check of a stale region: %v, want stale", err)
	}
	if err := run(root, "v1-to-v2", false); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(chapter)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("the chapter is\n%s\nwant\n%s", got, want)
	}
	if err := run(root, "v1-to-v2", true); err != nil {
		t.Errorf("check after writing: %v", err)
	}

	write("docs/v2-fixture.md", "# V2\n\nno region\n")
	if err := run(root, "v1-to-v2", false); err == nil || !strings.Contains(err.Error(), "no line") {
		t.Errorf("a chapter without the region: %v, want an error", err)
	}
	if err := run(root, "v2-to-v3", true); err == nil {
		t.Error("a pair without a chapter: no error")
	}
}
