// Package t is a fixture in testdata, which is not code.
package t
