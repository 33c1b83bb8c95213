package interceptor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/rpc"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/interceptor"
)

// logBuffer collects JSON log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// record is the part of a log line the tests read.
type record struct {
	Level    string        `json:"level"`
	Msg      string        `json:"msg"`
	Method   string        `json:"method"`
	Code     string        `json:"code"`
	Duration time.Duration `json:"duration"`
	Err      string        `json:"err"`
}

func (b *logBuffer) records(t *testing.T) []record {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []record
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

func newLogger(level slog.Level) (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: level})), b
}

// TestLogging: one record per call, at Debug with code OK for a call that
// succeeded, at Warn with its code and error for one that failed; the
// client's and the server's alike, over a real connection.
func TestLogging(t *testing.T) {
	srvLog, srvLogs := newLogger(slog.LevelDebug)
	cliLog, cliLogs := newLogger(slog.LevelDebug)
	addr := startServer(t, interceptor.ServerLogging(srvLog))
	c := newClient(t, addr, interceptor.ClientLogging(cliLog))
	for _, msg := range []string{"world", "fail", "plain"} {
		hello(t, c, msg)
	}
	method := "/myrpc.helloworld.Greeter/Hello"
	for _, side := range []struct {
		name string
		logs *logBuffer
		msg  string
	}{
		{"server", srvLogs, "rpc: served"},
		{"client", cliLogs, "rpc: called"},
	} {
		got := side.logs.records(t)
		want := []record{
			{Level: "DEBUG", Code: "OK"},
			{Level: "WARN", Code: "NotFound", Err: "no such greeting"},
			{Level: "WARN", Code: "Unknown", Err: "a plain failure"},
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d records, want %d: %+v", side.name, len(got), len(want), got)
		}
		for i, r := range got {
			w := want[i]
			if r.Level != w.Level || r.Msg != side.msg || r.Method != method || r.Code != w.Code || !strings.Contains(r.Err, w.Err) || (w.Err == "") != (r.Err == "") {
				t.Errorf("%s: record %d = %+v, want %s %q with method %s, code %s, err %q", side.name, i, r, w.Level, side.msg, method, w.Code, w.Err)
			}
			if r.Duration <= 0 {
				t.Errorf("%s: record %d has duration %v", side.name, i, r.Duration)
			}
		}
	}
}

// TestLoggingPassesThrough: the interceptors return what the call
// returned, and a logger at Info logs the failures alone.
func TestLoggingPassesThrough(t *testing.T) {
	log, logs := newLogger(slog.LevelInfo)
	errWant := status.New(codes.Unavailable, "down")
	ic := interceptor.ClientLogging(log)
	if err := call(ic, nil); err != nil {
		t.Errorf("client, success: %v", err)
	}
	if err := call(ic, errWant); err != errWant {
		t.Errorf("client, failure: %v, want %v", err, errWant)
	}
	reply := &struct{ proto.Message }{}
	got, err := interceptor.ServerLogging(log)(context.Background(), nil, &rpc.UnaryServerInfo{FullMethod: "/s/M"},
		func(context.Context, proto.Message) (proto.Message, error) { return reply, errWant })
	if got != reply || !errors.Is(err, errWant) {
		t.Errorf("server: %v, %v; want the handler's", got, err)
	}
	recs := logs.records(t)
	if len(recs) != 2 || recs[0].Level != "WARN" || recs[1].Level != "WARN" {
		t.Errorf("records at Info: %+v, want the two failures", recs)
	}
}
