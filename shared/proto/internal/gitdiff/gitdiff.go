// Package gitdiff reads the diffs that scripts/stagediff.sh writes under
// docs/diffs/: the output of git diff, with renames found. It tells which
// files a diff touches, how, and how many lines it adds and removes in
// each.
package gitdiff

import (
	"fmt"
	"strconv"
	"strings"
)

// Status says what a diff does to a file.
type Status int

// The statuses of a file in a diff.
const (
	Modified Status = iota
	Added
	Deleted
	Renamed
)

// File is one file of a diff. Path is its path after the change (before
// it, for a deleted file), OldPath its path before the change (the same as
// Path unless the file was renamed).
type File struct {
	Path    string
	OldPath string
	Status  Status
	Added   int
	Removed int
}

// Parse reads a diff in git's format, with a/ and b/ prefixes, and returns
// its files in the order they appear. Paths git would quote (spaces,
// control or non-ASCII characters) are not supported and make it fail.
func Parse(text string) ([]File, error) {
	lines := strings.Split(text, "\n")
	if lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	var files []File
	for i := 0; i < len(lines); {
		line := lines[i]
		if !strings.HasPrefix(line, "diff --git ") {
			return nil, fmt.Errorf("line %d: want a diff --git line, got %q", i+1, line)
		}
		f, err := header(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		i++
		// The extended header, up to the first hunk or the next file.
		for ; i < len(lines) && !strings.HasPrefix(lines[i], "@@ ") && !strings.HasPrefix(lines[i], "diff --git "); i++ {
			l := lines[i]
			switch {
			case strings.HasPrefix(l, "new file mode "):
				f.Status = Added
			case strings.HasPrefix(l, "deleted file mode "):
				f.Status = Deleted
			case strings.HasPrefix(l, "rename from "):
				f.Status, f.OldPath = Renamed, strings.TrimPrefix(l, "rename from ")
			case strings.HasPrefix(l, "rename to "):
				f.Status, f.Path = Renamed, strings.TrimPrefix(l, "rename to ")
			}
		}
		// The hunks: each header says how many old and new lines follow,
		// so a line of content that looks like a header is never taken
		// for one.
		for i < len(lines) && strings.HasPrefix(lines[i], "@@ ") {
			oldN, newN, err := hunkHeader(lines[i])
			if err != nil {
				return nil, fmt.Errorf("line %d: %v", i+1, err)
			}
			i++
			for oldN > 0 || newN > 0 {
				if i >= len(lines) {
					return nil, fmt.Errorf("%s: the diff ends inside a hunk", f.Path)
				}
				l := lines[i]
				switch {
				case strings.HasPrefix(l, "+"):
					f.Added++
					newN--
				case strings.HasPrefix(l, "-"):
					f.Removed++
					oldN--
				case strings.HasPrefix(l, " ") || l == "":
					oldN--
					newN--
				case strings.HasPrefix(l, `\`):
				default:
					return nil, fmt.Errorf("line %d: %q inside a hunk of %s", i+1, l, f.Path)
				}
				i++
			}
			if i < len(lines) && strings.HasPrefix(lines[i], `\`) {
				i++
			}
		}
		files = append(files, f)
	}
	return files, nil
}

// header reads "diff --git a/OLD b/NEW".
func header(line string) (File, error) {
	fields := strings.Fields(strings.TrimPrefix(line, "diff --git "))
	if len(fields) != 2 || !strings.HasPrefix(fields[0], "a/") || !strings.HasPrefix(fields[1], "b/") {
		return File{}, fmt.Errorf("cannot read the paths of %q", line)
	}
	return File{OldPath: fields[0][2:], Path: fields[1][2:]}, nil
}

// hunkHeader reads "@@ -l[,n] +l[,n] @@ ..." and returns the two counts.
func hunkHeader(line string) (oldN, newN int, err error) {
	fields := strings.Fields(line)
	if len(fields) < 4 || fields[3] != "@@" || !strings.HasPrefix(fields[1], "-") || !strings.HasPrefix(fields[2], "+") {
		return 0, 0, fmt.Errorf("cannot read the hunk header %q", line)
	}
	if oldN, err = count(fields[1][1:]); err == nil {
		newN, err = count(fields[2][1:])
	}
	if err != nil {
		return 0, 0, fmt.Errorf("cannot read the hunk header %q: %v", line, err)
	}
	return oldN, newN, nil
}

// count reads "l,n" or "l" (n is then 1) and returns n.
func count(r string) (int, error) {
	_, n, ok := strings.Cut(r, ",")
	if !ok {
		n = "1"
	}
	return strconv.Atoi(n)
}

// Sum returns the number of files, and of lines added and removed, in
// files.
func Sum(files []File) (n, added, removed int) {
	for _, f := range files {
		added += f.Added
		removed += f.Removed
	}
	return len(files), added, removed
}
