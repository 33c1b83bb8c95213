package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/helloworld"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/services"
	"myrpc/v5-cluster/codec"
	"myrpc/v5-cluster/etcdtest"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	// These unit tests cover the goroutine-per-connection path, which V4
	// keeps for systems without epoll; TestReactor (reactor_test.go) runs
	// the tests of a connection's bounds again on the epoll engine, and the
	// conformance suite covers it too.
	reactorByDefault = false
	// etcdtest's check gives the goroutines of the etcd that the registry
	// tests start time to end.
	etcdtest.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// logBuffer collects a server's log as JSON lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// logRecord is the part of a JSON log line the tests read.
type logRecord struct {
	Level    string `json:"level"`
	Msg      string `json:"msg"`
	Failures int    `json:"failures"`
	// Delay is a time.Duration, which slog's JSON handler writes in
	// nanoseconds.
	Delay time.Duration `json:"delay"`
}

// records decodes the lines logged so far.
func (b *logBuffer) records(t *testing.T) []logRecord {
	t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []logRecord
	for _, line := range strings.Split(strings.TrimSpace(b.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var r logRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, r)
	}
	return out
}

// count returns the number of records with the level and message.
func (b *logBuffer) count(t *testing.T, level, msg string) int {
	t.Helper()
	n := 0
	for _, r := range b.records(t) {
		if r.Level == level && r.Msg == msg {
			n++
		}
	}
	return n
}

// newLogger returns a logger that writes Info and above to a buffer.
func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelInfo})), b
}

// quietLogger returns a logger that drops everything.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// testServer is a server serving on 127.0.0.1:0.
type testServer struct {
	*Server
	addr   string
	served chan error
}

// startServer starts a server with the demo services registered. When the
// test ends it is shut down, and Serve must have returned ErrServerClosed.
func startServer(t *testing.T, opts ...Option) *testServer {
	t.Helper()
	s := New(append([]Option{WithLogger(quietLogger())}, opts...)...)
	if err := s.Register(&helloworld.Greeter_ServiceDesc, services.Greeter{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Register(&echo.Echo_ServiceDesc, services.Echo{}); err != nil {
		t.Fatal(err)
	}
	return serveOn(t, s)
}

// serveOn starts s on 127.0.0.1:0.
func serveOn(t *testing.T, s *Server) *testServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{Server: s, addr: lis.Addr().String(), served: make(chan error, 1)}
	go func() { ts.served <- s.Serve(lis) }()
	t.Cleanup(func() {
		s.Close()
		ts.waitServed(t)
	})
	return ts
}

// waitServed waits for Serve to return, and checks it returned
// ErrServerClosed. It may be called more than once.
func (ts *testServer) waitServed(t *testing.T) {
	t.Helper()
	select {
	case err, ok := <-ts.served:
		if !ok {
			return
		}
		close(ts.served)
		if !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v, want ErrServerClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("Serve did not return within 5 s of Close")
	}
}

// numConns returns the number of connections the server tracks.
func (s *Server) numConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// waitFor polls cond until it holds or d passes. It is for states the test
// cannot be told about, such as the server's connection count.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(2 * time.Millisecond)
	}
	return true
}

// waitConns waits until the server tracks n connections.
func waitConns(t *testing.T, s *Server, n int) {
	t.Helper()
	if !waitFor(5*time.Second, func() bool { return s.numConns() == n }) {
		t.Fatalf("the server tracks %d connections, want %d", s.numConns(), n)
	}
}

// dial opens a raw connection, closed when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return nc
}

// requestFrame encodes a request frame.
func requestFrame(t *testing.T, seq uint32, service, method string, body proto.Message) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, codec.TypeRequest, seq,
		&meta.RequestMeta{Service: service, Method: method}, body, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// readClosed reads from nc until it is closed (EOF or reset) or d passes,
// and returns how long that took. Data or a timeout fails the test.
func readClosed(t *testing.T, nc net.Conn, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	nc.SetReadDeadline(start.Add(d))
	buf := make([]byte, 256)
	for {
		n, err := nc.Read(buf)
		if n > 0 {
			t.Fatalf("read % x, want the connection closed", buf[:n])
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("the connection was still open after %v", d)
			}
			return time.Since(start)
		}
	}
}

// freeAddr returns a 127.0.0.1 address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// ctxTimeout returns a context that ends after d, cancelled when the test
// ends.
func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
