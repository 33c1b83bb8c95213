//go:build linux

package server

import "testing"

// TestReactor runs the tests of a connection's bounds, and of its calls'
// end with it, against the epoll engine: the engine stops reading a
// connection at its bounds (whole frames already read wait in its input),
// watches for the peer's FIN while it does, and writes through the loop.
// TestMain turned the engine off for the unit tests of the goroutine path.
func TestReactor(t *testing.T) {
	reactorByDefault = true
	defer func() { reactorByDefault = false }()
	for _, tt := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"ConnCallsBound", TestConnCallsBound},
		{"ConnCallsHalfTheWorkers", TestConnCallsHalfTheWorkers},
		{"ConnBytesBound", TestConnBytesBound},
		{"ClientNeverReads", TestClientNeverReads},
		{"SlowReaderServed", TestSlowReaderServed},
		{"CallsEndWithTheirConnection", TestCallsEndWithTheirConnection},
		{"MaxTimeout", TestMaxTimeout},
	} {
		t.Run(tt.name, tt.fn)
	}
}
