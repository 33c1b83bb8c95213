// Package runner runs the benchmark cases: for each, a fresh bench server
// process (serverproc) on loopback, the implementation's client in this
// process, closed-loop callers through a warm-up and a measured window, and
// the measures of both sides; and the burst, N goroutines with one call each
// released at once.
package runner
