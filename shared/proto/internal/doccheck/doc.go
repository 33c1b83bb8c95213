// Package doccheck holds a test that keeps the code shown in docs/ true to
// the code: a Markdown code block preceded by a line
//
//	<!-- code: path/from/the/repository/root.go -->
//
// must appear in that file, line for line (leading and trailing spaces
// aside). A line "// ..." inside the block stands for lines left out.
package doccheck
