// Package x is a fixture: a file the later stage moves to moved/x.go,
// changing one line of it.
package x

// X is moved.
const X = 2

// Y stays as it is.
const Y = 1

// Z stays as it is.
const Z = 1
