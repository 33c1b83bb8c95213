// Package async holds the machinery of asynchronous calls: Future, the
// result of a call that has not ended yet, and Queue, the one goroutine
// that holds every retry waiting for its time.
package async
