package registry_test

import (
	"context"
	"log/slog"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"myrpc/v5-cluster/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.VerifyTestMain(m) }

// waitLong bounds a wait for something that takes a few seconds at most
// (a lease to end, a member to be missed); it is long because the machine
// may be busy with other work, and a test that passes never waits it.
const waitLong = 30 * time.Second

// updates records what a resolver gives its update function.
type updates struct {
	mu      sync.Mutex // protects got and changed
	got     [][]string
	changed chan struct{}
}

func newUpdates() *updates { return &updates{changed: make(chan struct{})} }

func (u *updates) update(addrs []string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.got = append(u.got, addrs)
	close(u.changed)
	u.changed = make(chan struct{})
}

// last returns the last update, the number of updates, and a channel
// closed at the next one.
func (u *updates) last() ([]string, int, <-chan struct{}) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.got) == 0 {
		return nil, 0, u.changed
	}
	return u.got[len(u.got)-1], len(u.got), u.changed
}

// waitFor waits until the last update is want, and returns how long it
// waited.
func (u *updates) waitFor(t *testing.T, want ...string) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := time.After(waitLong)
	for {
		got, n, changed := u.last()
		if n > 0 && slices.Equal(got, want) {
			return time.Since(start)
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("addresses are %q after %v, want %q", got, waitLong, want)
		}
	}
}

// records is a slog.Handler that keeps what is logged.
type records struct {
	mu      sync.Mutex // protects recs and changed
	recs    []slog.Record
	changed chan struct{}
}

func newRecords() *records { return &records{changed: make(chan struct{})} }

func (r *records) logger() *slog.Logger { return slog.New(r) }

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	close(r.changed)
	r.changed = make(chan struct{})
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count returns how many records at level say msg, and a channel closed
// at the next record.
func (r *records) count(level slog.Level, msg string) (int, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, rec := range r.recs {
		if rec.Level == level && strings.Contains(rec.Message, msg) {
			n++
		}
	}
	return n, r.changed
}

// waitFor waits for a record at level that says msg.
func (r *records) waitFor(t *testing.T, level slog.Level, msg string) {
	t.Helper()
	deadline := time.After(waitLong)
	for {
		n, changed := r.count(level, msg)
		if n > 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("no %v record %q after %v", level, msg, waitLong)
		}
	}
}

// goroutines returns the stacks of the running goroutines that hold a
// frame of one of fns.
func goroutines(fns ...string) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		for _, fn := range fns {
			if strings.Contains(g, fn) {
				found = append(found, g)
				break
			}
		}
	}
	return found
}

// The goroutines of a Resolve and of a Registration.
const (
	resolveFrame = "v5-cluster/registry.(*watch)."
	keepFrame    = "v5-cluster/registry.(*Registration).keep"
)

func noGoroutines(t *testing.T, what string, fns ...string) {
	t.Helper()
	if gs := goroutines(fns...); len(gs) > 0 {
		t.Fatalf("%s left %d goroutine(s):\n%s", what, len(gs), strings.Join(gs, "\n\n"))
	}
}
