package etcdlocal

import (
	"context"
	"log/slog"
	"slices"
	"sync/atomic"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// slogCore is a zapcore.Core that writes what etcd logs to a slog.Logger,
// so that etcd's few words end up where the rest of the program's go.
type slogCore struct {
	log *slog.Logger
	min zapcore.Level

	// stopping, once set, turns every entry into a Debug one: etcd
	// stopping as asked logs errors ("use of closed network connection")
	// that are no news.
	stopping *atomic.Bool

	// fields are the fields that With added, written with every entry.
	fields []zapcore.Field
}

// newZap returns a zap.Logger that writes entries at min and above to
// log, and all of them at Debug once stopping is set.
func newZap(log *slog.Logger, min slog.Level, stopping *atomic.Bool) *zap.Logger {
	return zap.New(&slogCore{log: log, min: zapLevel(min), stopping: stopping})
}

// level returns the level an entry at l is written at.
func (c *slogCore) level(l zapcore.Level) zapcore.Level {
	if c.stopping.Load() {
		return zapcore.DebugLevel
	}
	return l
}

// zapLevel returns the zap level that corresponds to l.
func zapLevel(l slog.Level) zapcore.Level {
	switch {
	case l <= slog.LevelDebug:
		return zapcore.DebugLevel
	case l <= slog.LevelInfo:
		return zapcore.InfoLevel
	case l <= slog.LevelWarn:
		return zapcore.WarnLevel
	}
	return zapcore.ErrorLevel
}

// slogLevel returns the slog level that corresponds to l: zap's levels
// past Error (DPanic, Panic, Fatal) are Error too.
func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c *slogCore) Enabled(l zapcore.Level) bool {
	l = c.level(l)
	return l >= c.min && c.log.Enabled(context.Background(), slogLevel(l))
}

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	d := *c
	d.fields = append(slices.Clip(c.fields), fields...)
	return &d
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fields {
		f.AddTo(enc)
	}
	r := slog.NewRecord(e.Time, slogLevel(c.level(e.Level)), e.Message, 0)
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	r.AddAttrs(slog.String("component", "etcd"))
	for _, k := range keys {
		r.AddAttrs(slog.Any(k, enc.Fields[k]))
	}
	return c.log.Handler().Handle(context.Background(), r)
}

func (c *slogCore) Sync() error { return nil }
