package etcdlocal_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"myrpc/v5-cluster/etcdtest"
)

func TestMain(m *testing.M) { etcdtest.VerifyTestMain(m) }

// recorder is a slog.Handler that counts what it is given.
type recorder struct {
	mu sync.Mutex // protects n
	n  int
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(context.Context, slog.Record) error {
	r.mu.Lock()
	r.n++
	r.mu.Unlock()
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }
func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}
