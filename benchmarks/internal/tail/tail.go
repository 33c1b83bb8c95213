// Package tail keeps the end of a stream: what a child process last wrote
// on its standard error, to quote when it fails.
package tail

import (
	"bytes"
	"sync"
)

// Buffer keeps the last Max bytes written to it. It is safe for concurrent
// use.
type Buffer struct {
	Max int
	// mu protects b.
	mu sync.Mutex
	b  []byte
}

func (t *Buffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.Max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// String returns the kept text, trimmed, or "(no output on stderr)".
func (t *Buffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := string(bytes.TrimSpace(t.b))
	if s == "" {
		return "(no output on stderr)"
	}
	return s
}
