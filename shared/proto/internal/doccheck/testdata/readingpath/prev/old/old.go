// Package old is a fixture: a package the later stage deletes.
package old

// Old is gone in the later stage.
func Old() {}
