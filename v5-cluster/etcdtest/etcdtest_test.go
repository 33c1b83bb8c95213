package etcdtest

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// endingTB is a test that ends when its end is called: it runs its
// cleanups, in reverse order as the testing package does, and then counts
// the lines logged to it, which would make a real test panic.
type endingTB struct {
	testing.TB

	// mu protects the fields below.
	mu       sync.Mutex
	cleanups []func()
	lines    []string
	ended    bool
	late     int
}

func (e *endingTB) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

func (e *endingTB) Log(args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		e.late++
		return
	}
	e.lines = append(e.lines, fmt.Sprint(args...))
}

func (e *endingTB) end() {
	e.mu.Lock()
	cleanups := e.cleanups
	e.mu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ended = true
}

// syncBuffer is a bytes.Buffer safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex // protects b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestLoggerOutlivesTheTest: the logger given to etcd writes to the test's
// log while the test runs, cleanups included, and elsewhere once the test
// has ended, however many goroutines log as it ends: never to the log of
// a test that has completed.
func TestLoggerOutlivesTheTest(t *testing.T) {
	late := &syncBuffer{}
	lateLog = late
	defer func() { lateLog = os.Stderr }()

	tb := &endingTB{TB: t}
	log := testLogger(tb)
	log.Warn("while the test runs")
	// What etcd logs as the test's cleanup closes it.
	tb.Cleanup(func() { log.Warn("as etcd closes") })

	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			<-start
			for range 200 {
				log.Warn("from a goroutine of etcd")
			}
		})
	}
	close(start)
	tb.end()
	log.Warn("after the test")
	wg.Wait()

	tb.mu.Lock()
	defer tb.mu.Unlock()
	if tb.late != 0 {
		t.Errorf("%d lines went to the test's log after it ended", tb.late)
	}
	if len(tb.lines) < 2 || !strings.Contains(tb.lines[0], "while the test runs") {
		t.Errorf("the test's log holds %q, want what came while it ran", tb.lines)
	}
	if !strings.Contains(strings.Join(tb.lines, ""), "as etcd closes") {
		t.Errorf("what was logged during the cleanup is not in the test's log: %q", tb.lines)
	}
	if got := late.String(); !strings.Contains(got, "etcdtest: after "+t.Name()+" ended: ") || !strings.Contains(got, "after the test") {
		t.Errorf("after the test ended, lines went to %q, want them there, named", got)
	}
}
