package mux

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	"myrpc/shared/proto/codes"
	"myrpc/shared/proto/echo"
	"myrpc/shared/proto/meta"
	"myrpc/shared/proto/status"
	"myrpc/v5-cluster/codec"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quietLogger returns a logger that drops everything.
func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// peer is the server end of one connection, played by the test. Its reader
// decodes every request frame, and fails the test on one that does not
// decode; the test answers with write.
type peer struct {
	nc net.Conn
	// frames receives every request frame, in the order read.
	frames chan codec.Frame
	// ended is closed when the reader has ended, with endErr.
	ended  chan struct{}
	endErr error
	// wmu serialises the test's writes.
	wmu sync.Mutex
}

// newPeer starts reading nc.
func newPeer(t *testing.T, nc net.Conn) *peer {
	p := &peer{nc: nc, frames: make(chan codec.Frame, 4096), ended: make(chan struct{})}
	go func() {
		br := bufio.NewReader(nc)
		for {
			f, err := codec.ReadFrame(br, codec.TypeRequest, 64<<20)
			if err != nil {
				p.endErr = err
				close(p.ended)
				return
			}
			if _, err := codec.DecodeRequestMeta(f.Meta); err != nil {
				t.Errorf("peer: request meta of seq %d does not decode: %v", f.Seq, err)
			}
			p.frames <- f
		}
	}()
	return p
}

// next returns the next request frame the peer read.
func (p *peer) next(t *testing.T) codec.Frame {
	t.Helper()
	select {
	case f := <-p.frames:
		return f
	case <-p.ended:
		t.Fatalf("peer: no request frame: %v", p.endErr)
	case <-time.After(5 * time.Second):
		t.Fatal("peer: no request frame within 5 s")
	}
	return codec.Frame{}
}

// write sends raw bytes to the client.
func (p *peer) write(t *testing.T, b []byte) {
	t.Helper()
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if _, err := p.nc.Write(b); err != nil {
		t.Errorf("peer: write: %v", err)
	}
}

// answer sends a successful response carrying payload.
func (p *peer) answer(t *testing.T, seq uint32, payload string) {
	t.Helper()
	p.write(t, respFrame(t, seq, &meta.ResponseMeta{}, &echo.EchoReply{Payload: []byte(payload)}))
}

// waitClosed waits for the client to close its end.
func (p *peer) waitClosed(t *testing.T) error {
	t.Helper()
	select {
	case <-p.ended:
		return p.endErr
	case <-time.After(5 * time.Second):
		t.Fatal("peer: the client did not close the connection within 5 s")
		return nil
	}
}

// respFrame encodes a response frame.
func respFrame(t *testing.T, seq uint32, rm *meta.ResponseMeta, body proto.Message) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, codec.TypeResponse, seq, rm, body, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// reqFrame encodes a request frame for method with payload; Send sets its
// sequence id.
func reqFrame(t testing.TB, method string, payload []byte) []byte {
	t.Helper()
	b, err := codec.AppendFrame(nil, codec.TypeRequest, 0,
		&meta.RequestMeta{Service: "test.Mux", Method: method}, &echo.EchoRequest{Payload: payload}, 64<<20)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// payloadOf decodes the payload of a response frame.
func payloadOf(t *testing.T, f codec.Frame) string {
	t.Helper()
	var r echo.EchoReply
	if err := proto.Unmarshal(f.Body, &r); err != nil {
		t.Fatalf("response body: %v", err)
	}
	return string(r.Payload)
}

// result is what a Done received.
type result struct {
	f   codec.Frame
	err error
}

// recorder returns a Done that hands its result to the channel, which has
// room for more than one, so that a second call of Done shows.
func recorder() (Done, chan result) {
	ch := make(chan result, 8)
	return func(f codec.Frame, err error) { ch <- result{f, err} }, ch
}

// await returns the next result from ch.
func await(t *testing.T, ch chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("Done did not run within 5 s")
		return result{}
	}
}

// wantNoResult fails if ch holds a result.
func wantNoResult(t *testing.T, ch chan result) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("Done ran again (or unexpectedly): %+v", r)
	default:
	}
}

// wantCode fails unless err carries code.
func wantCode(t *testing.T, err error, code codes.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want code %v", code)
	}
	if got := status.Code(err); got != code {
		t.Fatalf("got %v (code %v), want code %v", err, got, code)
	}
}

// listen returns a listener on 127.0.0.1:0, closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

// hooks counts a Conn's calls of onRelease and onBroken.
type hooks struct {
	released atomic.Int64
	broken   atomic.Int64
	// brokenAt is how many Dones had run when onBroken was called.
	brokenAt atomic.Int64
	dones    *atomic.Int64
}

// pipe connects a Conn to a peer over loopback TCP. wrap, if not nil,
// wraps the client's end. Both ends are closed when the test ends.
func pipe(t *testing.T, cfg Config, wrap func(net.Conn) net.Conn) (*Conn, *peer, *hooks) {
	t.Helper()
	lis := listen(t)
	accepted := make(chan net.Conn, 1)
	go func() {
		nc, err := lis.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- nc
	}()
	nc, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	snc, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	p := newPeer(t, snc)
	if wrap != nil {
		nc = wrap(nc)
	}
	cfg.Logger = quietLogger()
	h := &hooks{dones: new(atomic.Int64)}
	c := newConn(nc, cfg.withDefaults(), func(*Conn) { h.released.Add(1) }, func(*Conn) {
		h.brokenAt.Store(h.dones.Load())
		h.broken.Add(1)
	})
	t.Cleanup(func() {
		c.Close()
		snc.Close()
		// The peer's reader ends with the connection.
		select {
		case <-p.ended:
		case <-time.After(5 * time.Second):
			t.Error("peer reader did not end")
		}
	})
	return c, p, h
}

// waitFor polls cond until it holds or 5 s pass: for states nothing
// signals, such as a counter.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// fakeServer accepts connections and makes each a peer.
type fakeServer struct {
	addr  string
	lis   net.Listener
	peers chan *peer
	// accepted counts the connections accepted.
	accepted atomic.Int64
	mu       sync.Mutex
	all      []*peer
	done     chan struct{}
}

// newFakeServer starts a fake server; it is stopped when the test ends.
func newFakeServer(t *testing.T) *fakeServer {
	t.Helper()
	lis := listen(t)
	s := &fakeServer{addr: lis.Addr().String(), lis: lis, peers: make(chan *peer, 64), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			p := newPeer(t, nc)
			s.mu.Lock()
			s.all = append(s.all, p)
			s.mu.Unlock()
			s.peers <- p
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		<-s.done
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, p := range s.all {
			p.nc.Close()
			select {
			case <-p.ended:
			case <-time.After(5 * time.Second):
				t.Error("peer reader did not end")
			}
		}
	})
	return s
}

// nextPeer returns the next connection the server accepted.
func (s *fakeServer) nextPeer(t *testing.T) *peer {
	t.Helper()
	select {
	case p := <-s.peers:
		return p
	case <-time.After(5 * time.Second):
		t.Fatal("the fake server accepted no connection within 5 s")
		return nil
	}
}

// newGroup returns a group of connections to s, closed when the test ends.
func newGroup(t *testing.T, addr string, cfg Config) *Group {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = quietLogger()
	}
	g := NewGroup(addr, cfg)
	t.Cleanup(func() { g.Close() })
	return g
}

// send picks a connection of g and sends a request on it.
func send(t *testing.T, g *Group) (*Conn, uint32, chan result) {
	t.Helper()
	c, err := g.Pick(context.Background())
	if err != nil {
		t.Fatalf("Pick: %v", err)
	}
	done, ch := recorder()
	seq, _, err := c.Send(context.Background(), reqFrame(t, "Call", nil), done)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	return c, seq, ch
}

// numWaiters returns the number of Picks waiting for a stream.
func (g *Group) numWaiters() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.waiters.Len()
}

// discardConn is a connection that takes every write and never answers:
// for tests of the group's bookkeeping at full speed.
type discardConn struct {
	net.Conn
	once   sync.Once
	closed chan struct{}
}

func discardDial(context.Context, string) (net.Conn, error) {
	return &discardConn{closed: make(chan struct{})}, nil
}

func (d *discardConn) Read([]byte) (int, error)         { <-d.closed; return 0, io.EOF }
func (d *discardConn) Write(p []byte) (int, error)      { return len(p), nil }
func (d *discardConn) SetWriteDeadline(time.Time) error { return nil }
func (d *discardConn) Close() error {
	d.once.Do(func() { close(d.closed) })
	return nil
}

// idleCheckEvery is how often, at most, a group looks for idle connections.
const idleCheckEvery = time.Second

// waitIdle sleeps until the group's next Pick will find c idle for longer
// than idle: a wait for the clock, not for a state.
func waitIdle(c *Conn, idle time.Duration) {
	time.Sleep(time.Until(c.idleSince().Add(max(idle, idleCheckEvery))))
}

// errInjected is the error of a write that the test makes fail.
var errInjected = errors.New("injected write failure")
