package faultproxy

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wait is how long a test waits for something that must happen.
const wait = 5 * time.Second

// quiet is how long a test watches for something that must not happen.
const quiet = 200 * time.Millisecond

// pair is a client connection through a proxy and the connection the
// target accepted for it.
type pair struct {
	p              *Proxy
	client, server *net.TCPConn
	conn           *Conn
}

// setup starts a target listener and a proxy in front of it, and opens
// one connection through them.
func setup(t *testing.T) pair {
	t.Helper()
	return setupWith(t, Options{})
}

func setupWith(t *testing.T, o Options) pair {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	p, err := Listen(lis.Addr().String(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cc, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	lis.(*net.TCPListener).SetDeadline(time.Now().Add(wait))
	sc, err := lis.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	// The proxy registers the connection once its dial returns, which may
	// be after the target's Accept.
	deadline := time.Now().Add(wait)
	for len(p.Conns()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the proxy does not list the connection")
		}
		time.Sleep(time.Millisecond)
	}
	return pair{p: p, client: cc.(*net.TCPConn), server: sc.(*net.TCPConn), conn: p.Conns()[0]}
}

// send writes b to c.
func send(t *testing.T, c net.Conn, b []byte) {
	t.Helper()
	c.SetWriteDeadline(time.Now().Add(wait))
	if _, err := c.Write(b); err != nil {
		t.Fatalf("write: %v", err)
	}
}

// expect reads len(want) bytes from c and compares them with want.
func expect(t *testing.T, c net.Conn, want []byte) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("read: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %q, want %q", got, want)
	}
}

// expectNothing checks that nothing arrives on c for a while.
func expectNothing(t *testing.T, c net.Conn) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(quiet))
	var b [1]byte
	n, err := c.Read(b[:])
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read %d bytes, %v; want nothing", n, err)
	}
}

// readErr reads from c until an error and returns it.
func readErr(t *testing.T, c net.Conn) error {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(wait))
	_, err := io.Copy(io.Discard, c)
	if err == nil {
		err = io.EOF
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("the connection stayed open")
	}
	return err
}

// waitClosed waits until the proxy has no connection open.
func waitClosed(t *testing.T, p *Proxy) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for len(p.Conns()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still open", len(p.Conns()))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestForward(t *testing.T) {
	pr := setup(t)
	up := make([]byte, 1<<20)
	down := make([]byte, 1<<20)
	rand.Read(up)
	rand.Read(down)
	go pr.server.Write(down)
	go pr.client.Write(up)
	expect(t, pr.server, up)
	expect(t, pr.client, down)

	// A half-close by the client reaches the server, the other way still
	// works, and the connection ends when both ways have.
	pr.client.CloseWrite()
	if err := readErr(t, pr.server); err != io.EOF {
		t.Fatalf("server read: %v, want EOF", err)
	}
	send(t, pr.server, []byte("late"))
	expect(t, pr.client, []byte("late"))
	pr.server.CloseWrite()
	if err := readErr(t, pr.client); err != io.EOF {
		t.Fatalf("client read: %v, want EOF", err)
	}
	waitClosed(t, pr.p)
	if st := pr.p.Stats(); st != (Stats{Accepted: 1}) {
		t.Fatalf("stats %+v", st)
	}
}

func TestReset(t *testing.T) {
	pr := setup(t)
	send(t, pr.client, []byte("x"))
	expect(t, pr.server, []byte("x"))
	if !pr.conn.Reset() {
		t.Fatal("Reset of an open connection returned false")
	}
	for name, c := range map[string]net.Conn{"client": pr.client, "server": pr.server} {
		if err := readErr(t, c); !errors.Is(err, syscall.ECONNRESET) {
			t.Errorf("%s read: %v, want a reset", name, err)
		}
	}
	if pr.conn.Reset() {
		t.Error("Reset of a closed connection returned true")
	}
	waitClosed(t, pr.p)
	if st := pr.p.Stats(); st.Resets != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHalfCloseToServer(t *testing.T) {
	pr := setup(t)
	if !pr.conn.HalfClose(ToServer) {
		t.Fatal("HalfClose returned false")
	}
	// The server sees the end of its input, and can still answer.
	if err := readErr(t, pr.server); err != io.EOF {
		t.Fatalf("server read: %v, want EOF", err)
	}
	send(t, pr.server, []byte("answer"))
	expect(t, pr.client, []byte("answer"))
	// What the client sends now is dropped, not an error for it.
	send(t, pr.client, []byte("dropped"))
	if pr.conn.HalfClose(ToServer) {
		t.Error("a second HalfClose returned true")
	}
	// The server closing ends the client's input, and the client
	// closing ends the connection.
	pr.server.Close()
	if err := readErr(t, pr.client); err != io.EOF {
		t.Fatalf("client read: %v, want EOF", err)
	}
	pr.client.Close()
	waitClosed(t, pr.p)
	if st := pr.p.Stats(); st.HalfCloses != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestCalmResetsHalfClosed(t *testing.T) {
	pr := setup(t)
	pr.conn.HalfClose(ToServer)
	if err := readErr(t, pr.server); err != io.EOF {
		t.Fatalf("server read: %v, want EOF", err)
	}
	pr.p.Calm()
	if err := readErr(t, pr.client); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v, want a reset", err)
	}
	waitClosed(t, pr.p)
}

func TestHalfCloseToClient(t *testing.T) {
	pr := setup(t)
	if !pr.conn.HalfClose(ToClient) {
		t.Fatal("HalfClose returned false")
	}
	if err := readErr(t, pr.client); err != io.EOF {
		t.Fatalf("client read: %v, want EOF", err)
	}
	// The client can still send; what the server sends is dropped.
	send(t, pr.client, []byte("request"))
	expect(t, pr.server, []byte("request"))
	send(t, pr.server, []byte("dropped"))
	pr.client.Close()
	if err := readErr(t, pr.server); err != io.EOF {
		t.Fatalf("server read: %v, want EOF", err)
	}
	pr.server.Close()
	waitClosed(t, pr.p)
}

func TestStall(t *testing.T) {
	pr := setup(t)
	if !pr.conn.Stall(time.Hour) {
		t.Fatal("Stall returned false")
	}
	send(t, pr.client, []byte("up"))
	send(t, pr.server, []byte("down"))
	expectNothing(t, pr.server)
	expectNothing(t, pr.client)
	// The sender blocks once the buffers are full: the proxy reads no
	// more than one buffer in each direction while it stalls.
	pr.client.SetWriteDeadline(time.Now().Add(quiet))
	n, err := pr.client.Write(make([]byte, 64<<20))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a stalled connection took %d bytes: %v", n, err)
	}
	pr.p.Calm()
	expect(t, pr.server, []byte("up"))
	expect(t, pr.client, []byte("down"))
	if st := pr.p.Stats(); st.Stalls != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestSocketBuffer(t *testing.T) {
	const n = 8 << 10
	for name, o := range map[string]Options{"default": {}, "small": {SocketBuffer: n}} {
		pr := setupWith(t, o)
		for end, c := range map[string]*net.TCPConn{"client side": pr.conn.client, "server side": pr.conn.server} {
			rc, err := c.SyscallConn()
			if err != nil {
				t.Fatal(err)
			}
			var rcv, snd int
			rc.Control(func(fd uintptr) {
				rcv, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF)
				snd, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF)
			})
			// Linux doubles what is set; its defaults are far larger.
			small := rcv <= 2*n && snd <= 2*n
			if small != (o.SocketBuffer > 0) {
				t.Errorf("%s, %s: SO_RCVBUF %d, SO_SNDBUF %d", name, end, rcv, snd)
			}
		}
	}
}

func TestStallEnds(t *testing.T) {
	pr := setup(t)
	const d = 150 * time.Millisecond
	start := time.Now()
	pr.conn.Stall(d)
	send(t, pr.client, []byte("up"))
	expect(t, pr.server, []byte("up"))
	if el := time.Since(start); el < d {
		t.Fatalf("forwarded after %v, during a stall of %v", el, d)
	}
}

func TestFragment(t *testing.T) {
	pr := setup(t)
	const chunk, delay, n = 7, 2 * time.Millisecond, 700
	if !pr.conn.Fragment(chunk, delay, time.Hour) {
		t.Fatal("Fragment returned false")
	}
	b := make([]byte, n)
	rand.Read(b)
	start := time.Now()
	send(t, pr.client, b)
	expect(t, pr.server, b)
	// The proxy pauses after each chunk but the last.
	if el := time.Since(start); el < (n/chunk-1)*delay {
		t.Fatalf("%d bytes in chunks of %d with %v pauses took only %v", n, chunk, delay, el)
	}
	st := pr.p.Stats()
	if st.Chunks < n/chunk || st.Fragments != 1 {
		t.Fatalf("stats %+v: want at least %d chunks", st, n/chunk)
	}
	// After Calm, writes are whole again.
	pr.p.Calm()
	send(t, pr.server, b)
	expect(t, pr.client, b)
	if got := pr.p.Stats().Chunks; got != st.Chunks {
		t.Fatalf("%d chunks after Calm", got-st.Chunks)
	}
}

func TestTargetDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	target := lis.Addr().String()
	lis.Close()
	p, err := Listen(target, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// The reset can come before the client's dial has returned.
	c, err := net.Dial("tcp", p.Addr())
	if err == nil {
		defer c.Close()
		err = readErr(t, c)
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("dial or read: %v, want a reset", err)
	}
	if st := p.Stats(); st.DialFailures != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestClose checks that Close ends every connection, stalled or not, and
// every goroutine (TestMain checks for leaks).
func TestClose(t *testing.T) {
	pr := setup(t)
	pr.conn.Stall(time.Hour)
	send(t, pr.client, []byte("x"))
	if err := pr.p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := readErr(t, pr.client); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client read: %v, want the end", err)
	}
	if len(pr.p.Conns()) != 0 {
		t.Fatal("connections left after Close")
	}
	if _, err := net.DialTimeout("tcp", pr.p.Addr(), time.Second); err == nil {
		t.Fatal("the proxy accepts after Close")
	}
}
