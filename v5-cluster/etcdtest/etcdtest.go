// Package etcdtest starts etcd for tests, in the test's own process
// (package etcdlocal), and checks that a test binary that used it left no
// goroutine behind.
package etcdtest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/goleak"

	"myrpc/v5-cluster/etcdlocal"
	"myrpc/v5-cluster/registry"
)

// StartTimeout bounds a start or restart of etcd in a test. A start takes
// well under a second; the rest is room for a machine busy with other
// work.
const StartTimeout = 30 * time.Second

// Cluster is etcd started for one test; the test's cleanup closes it.
type Cluster struct {
	*etcdlocal.Cluster
	t testing.TB
}

// Start starts a one-member etcd that the test's cleanup closes. etcd's
// own log is dropped but for errors, which go to the test's log.
func Start(t testing.TB) *Cluster {
	t.Helper()
	return StartCluster(t, 1)
}

// StartCluster starts an etcd cluster of n members that the test's
// cleanup closes.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	start := time.Now()
	c, err := etcdlocal.StartCluster(ctx, n, etcdlocal.WithLogger(testLogger(t)))
	if err != nil {
		t.Fatalf("etcdtest: %v", err)
	}
	t.Logf("etcdtest: %d member(s) serving at %v after %v", n, c.Endpoints(), time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("etcdtest: close: %v", err)
		}
	})
	return &Cluster{Cluster: c, t: t}
}

// Stop stops member i; the test fails if it cannot.
func (c *Cluster) Stop(i int) {
	c.t.Helper()
	if err := c.Cluster.Stop(i); err != nil {
		c.t.Fatalf("etcdtest: stop member %d: %v", i, err)
	}
}

// Restart starts member i again; the test fails if it does not serve
// within StartTimeout.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	if err := c.Cluster.Restart(ctx, i); err != nil {
		c.t.Fatalf("etcdtest: restart member %d: %v", i, err)
	}
}

// Client returns a client of the given endpoints (Default: every member's)
// that the test's cleanup closes. It is made by registry.NewClient, so it
// is back within half a second of a member that was away.
func (c *Cluster) Client(endpoints ...string) *clientv3.Client {
	c.t.Helper()
	if len(endpoints) == 0 {
		endpoints = c.Endpoints()
	}
	cli, err := registry.NewClient(endpoints)
	if err != nil {
		c.t.Fatalf("etcdtest: client: %v", err)
	}
	c.t.Cleanup(func() { _ = cli.Close() })
	return cli
}

// LeakWait bounds the wait for goroutines that etcd leaves after it
// stopped. A peer connection of a stopped member lives on until its read
// deadline, which etcd sets 5 s ahead on every read, so that it can not be
// cut short from outside.
const LeakWait = 15 * time.Second

// VerifyTestMain runs the tests of m, then checks that no goroutine is
// left, as goleak.VerifyTestMain does, but first gives etcd's lingering
// peer connections LeakWait to end. It exits with the tests' status.
func VerifyTestMain(m *testing.M, opts ...goleak.Option) {
	code := m.Run()
	if code == 0 {
		if err := waitNoLeaks(LeakWait, opts...); err != nil {
			fmt.Fprintf(os.Stderr, "goleak: errors on successful test run: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

// waitNoLeaks polls goleak.Find until it finds nothing or d passes.
func waitNoLeaks(d time.Duration, opts ...goleak.Option) error {
	deadline := time.Now().Add(d)
	for {
		err := goleak.Find(opts...)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// testLogger returns a logger that writes to t's log while the test runs.
func testLogger(t testing.TB) *slog.Logger {
	w := &tWriter{t: t}
	// Registered before the cleanup that closes etcd, so it runs after
	// it: what etcd logs as it stops still goes to the test's log.
	t.Cleanup(w.end)
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// tWriter writes to a test's log until the test's cleanup ends it. etcd's
// goroutines can log after etcd was closed, and a test's log panics once
// the test has completed: what comes after the end goes to stderr.
type tWriter struct {
	// mu protects ended, and holds end back while a line is written.
	mu    sync.Mutex
	t     testing.TB
	ended bool
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ended {
		fmt.Fprintf(lateLog, "etcdtest: after %s ended: %s", w.t.Name(), p)
		return len(p), nil
	}
	w.t.Log(string(p))
	return len(p), nil
}

// lateLog is where a tWriter writes once its test has ended; tests
// replace it.
var lateLog io.Writer = os.Stderr

// end makes the writes that follow go to stderr.
func (w *tWriter) end() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
}
