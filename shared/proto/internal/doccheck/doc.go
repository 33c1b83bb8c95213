// Package doccheck holds the tests that keep docs/ true to the code.
//
// # Code excerpts
//
// A Markdown code block preceded by a line
//
//	<!-- code: path/from/the/repository/root.go -->
//
// must appear in that file, line for line (leading and trailing spaces
// aside). A line "// ..." inside the block stands for lines left out.
//
// # Reading paths
//
// A stage's chapter may hold a reading path: the files of the stage's diff
// from the stage before, in the order to read them, each with the
// identifiers that matter in it. It is the list that follows a line
//
//	<!-- reading-path: v1-to-v2 -->
//
// in docs/v2-pool-keepalive.md (v2-to-v3 in the V3 chapter, v3-to-v4 in
// the V4 chapter, and just v1 in docs/v1-basic.md), up to the next
// heading; a chapter has at most one. For example:
//
//	## Reading the diff
//	<!-- reading-path: v1-to-v2 -->
//	1. **`pool/pool.go`** (new) — `Config`, `New`, `Pool.Get`: what to notice…
//	2. **`client/client.go`** — `Client.Invoke`, `dial`: …
//
// The rules:
//
//   - An item is a line that begins, unindented, with "1." (any number,
//     or "1)") or with "-", "*" or "+", and the lines after it up to the
//     next item, heading, or unindented line after a blank one. Text of
//     the section outside the items (an introduction, a closing remark) is
//     not read, nor is anything inside a fenced code block.
//   - Every item begins with the file it is about, as a bold code span
//     holding a path relative to the stage's folder: **`client/client.go`**.
//   - The item's head runs from there to its first colon outside code
//     spans and parentheses (to the item's end if it has none). Each code
//     span of the head outside parentheses names an identifier declared in
//     that file: `Name` for a function, type, variable or constant, and
//     `Type.Method` or `Type.Field` for a method declared in the file with
//     receiver Type, or a field or method of a struct or interface type
//     declared in the file. Unexported names are fine; package-qualified
//     names, calls such as `New()` and anything else are errors, so that a
//     misspelt identifier is never skipped. Code spans in parentheses are
//     notes, such as (renamed from `client/client_test.go`), and code spans
//     after the colon are prose: neither is read. The separator between
//     the file and the identifiers, an em dash in the example, is free.
//   - Identifiers are looked up with go/parser in the file as it is in the
//     stage. A file that is not Go source, such as rpc.yaml, must exist;
//     the identifiers under it are not looked up.
//
// The test fails when the path leaves out a file that the pair's code
// diff, docs/diffs/vA-to-vB.diff, adds, changes or renames (its new path);
// when it names a file the stage does not have; or when it names an
// identifier the file does not declare. A file the diff deletes need not
// be listed; if it is, it is looked up in the stage before. For V1, which
// has no stage before, the "diff" is every Go file of v1-basic that is not
// a test or generated, and v1-basic/rpc.yaml.
//
// A chapter with the marker is always checked. A chapter without one fails
// only if it is in requirePath, in readingpath_test.go.
package doccheck
