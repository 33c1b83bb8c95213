package gitdiff

import (
	"reflect"
	"testing"
)

// sample has each kind of file, a line of content that looks like a file
// header and one that looks like a hunk header, and a file without a
// final newline.
const sample = `diff --git a/a.go b/a.go
index 1111111..2222222 100644
--- a/a.go
+++ b/a.go
@@ -1,3 +1,3 @@ package a
 package a
-// old
+// new
 
@@ -10 +10,2 @@ func F() {
 x
+diff --git a/x b/x
diff --git a/gone.go b/gone.go
deleted file mode 100644
index 3333333..0000000
--- a/gone.go
+++ /dev/null
@@ -1,2 +0,0 @@
-package gone
-@@ -1 +1 @@
diff --git a/new.go b/new.go
new file mode 100644
index 0000000..4444444
--- /dev/null
+++ b/new.go
@@ -0,0 +1 @@
+package new
\ No newline at end of file
diff --git a/old/x.go b/moved/x.go
similarity index 90%
rename from old/x.go
rename to moved/x.go
index 5555555..6666666 100644
--- a/old/x.go
+++ b/moved/x.go
@@ -1 +1 @@
-package old
+package moved
diff --git a/same.go b/same2.go
similarity index 100%
rename from same.go
rename to same2.go
`

func TestParse(t *testing.T) {
	got, err := Parse(sample)
	if err != nil {
		t.Fatal(err)
	}
	want := []File{
		{Path: "a.go", OldPath: "a.go", Status: Modified, Added: 2, Removed: 1},
		{Path: "gone.go", OldPath: "gone.go", Status: Deleted, Removed: 2},
		{Path: "new.go", OldPath: "new.go", Status: Added, Added: 1},
		{Path: "moved/x.go", OldPath: "old/x.go", Status: Renamed, Added: 1, Removed: 1},
		{Path: "same2.go", OldPath: "same.go", Status: Renamed},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", got, want)
	}
	if n, a, r := Sum(got); n != 5 || a != 4 || r != 4 {
		t.Errorf("Sum = %d, +%d, -%d; want 5, +4, -4", n, a, r)
	}
}

func TestParseErrors(t *testing.T) {
	for _, text := range []string{
		"garbage\n",
		"diff --git a/x\n",
		"diff --git a/x b/x\n@@ -1 +1 @@\n",
		"diff --git a/x b/x\n@@ -1 +1 @@\n-a\n?b\n",
		"diff --git a/x b/x\n@@ bad @@\n",
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("Parse(%q) succeeded; want an error", text)
		}
	}
	if files, err := Parse(""); err != nil || files != nil {
		t.Errorf("Parse(\"\") = %v, %v; want nothing", files, err)
	}
}
