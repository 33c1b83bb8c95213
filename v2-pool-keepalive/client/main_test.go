package client

import (
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/shared/proto/meta"
	"myrpc/v2-pool-keepalive/codec"
)

func TestMain(m *testing.M) {
	// ants starts a default pool when it is imported: its goroutines are
	// there before any test runs.
	goleak.VerifyTestMain(m, goleak.IgnoreCurrent())
}

// quietLogger returns a logger that drops everything.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// received is a request as a fake server read it.
type received struct {
	seq  uint32
	meta *meta.RequestMeta
	body []byte
}

// fakeServer is a listener that reads one request frame per connection,
// reports it on reqs, and lets respond answer it however it likes, the
// wrong ways included. The connection is closed when respond returns.
type fakeServer struct {
	addr string
	lis  net.Listener
	reqs chan received
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
}

// newFakeServer starts a fake server; it is stopped when the test ends.
// respond may be nil, for a server that reads the request and never
// answers.
func newFakeServer(t *testing.T, respond func(nc net.Conn, r received)) *fakeServer {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{addr: lis.Addr().String(), lis: lis, reqs: make(chan received, 16), conns: make(map[net.Conn]bool)}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns[nc] = true
			f.mu.Unlock()
			f.wg.Add(1)
			go f.serve(t, nc, respond)
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *fakeServer) serve(t *testing.T, nc net.Conn, respond func(net.Conn, received)) {
	defer f.wg.Done()
	defer func() {
		f.mu.Lock()
		delete(f.conns, nc)
		f.mu.Unlock()
		nc.Close()
	}()
	fr, err := codec.ReadFrame(nc, codec.TypeRequest, codec.DefaultMaxFrameSize)
	if err != nil {
		t.Errorf("fake server: reading the request: %v", err)
		return
	}
	rm, err := codec.DecodeRequestMeta(fr.Meta)
	if err != nil {
		t.Errorf("fake server: request meta: %v", err)
		return
	}
	r := received{seq: fr.Seq, meta: rm, body: fr.Body}
	select {
	case f.reqs <- r:
	default:
	}
	if respond == nil {
		// Never answer: wait for the client to give up.
		io.Copy(io.Discard, nc)
		return
	}
	respond(nc, r)
}

// close stops the fake server and waits for its goroutines.
func (f *fakeServer) close() {
	f.lis.Close()
	f.mu.Lock()
	for nc := range f.conns {
		nc.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// request waits for the next request the fake server reads.
func (f *fakeServer) request(t *testing.T) received {
	t.Helper()
	select {
	case r := <-f.reqs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("the fake server received no request")
		return received{}
	}
}
