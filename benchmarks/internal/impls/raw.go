package impls

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/ants/v2"
)

func init() {
	register(Impl{
		Name: "raw-conn",
		Kind: KindLimit,
		Summary: "Raw TCP, no RPC: the server echoes each frame (16-byte myrpc header + payload) without decoding it. " +
			"Each caller has its own connection and one frame in flight: the request/reply limit of loopback.",
		NewServer: newRawServer,
		NewClient: newRawConnClient,
	})
}

// The frame the raw implementations send: myrpc's 16-byte header (magic,
// version, type, sequence id, meta length, body length; big-endian) with no
// meta, and the payload as the body.
const (
	rawHeaderLen = 16
	rawMagic     = 0x4D52
	rawVersion   = 1
	rawRequest   = 1
	rawResponse  = 2
	// rawMaxFrame bounds meta + body, as myrpc's default limit does.
	rawMaxFrame = 4 << 20
	rawBufSize  = 32 << 10
)

// errRawFrame reports a frame the raw implementations refuse.
var errRawFrame = errors.New("bench: bad raw frame")

// appendRawFrame appends a request frame carrying payload to b.
func appendRawFrame(b []byte, seq uint32, payload []byte) []byte {
	var h [rawHeaderLen]byte
	binary.BigEndian.PutUint16(h[0:2], rawMagic)
	h[2] = rawVersion
	h[3] = rawRequest
	binary.BigEndian.PutUint32(h[4:8], seq)
	binary.BigEndian.PutUint32(h[12:16], uint32(len(payload)))
	b = append(b, h[:]...)
	return append(b, payload...)
}

// parseRawHeader checks a header of type typ and returns its sequence id
// and the length of what follows it.
func parseRawHeader(h []byte, typ byte) (seq uint32, n int, err error) {
	if binary.BigEndian.Uint16(h[0:2]) != rawMagic || h[2] != rawVersion || h[3] != typ {
		return 0, 0, fmt.Errorf("%w: header % x", errRawFrame, h[:4])
	}
	m, b := uint64(binary.BigEndian.Uint32(h[8:12])), uint64(binary.BigEndian.Uint32(h[12:16]))
	if m+b > rawMaxFrame {
		return 0, 0, fmt.Errorf("%w: %d bytes after the header", errRawFrame, m+b)
	}
	return binary.BigEndian.Uint32(h[4:8]), int(m + b), nil
}

// rawServer echoes frames. Each connection has one goroutine, which copies
// every frame into a buffered writer with the type set to response, and
// flushes only when no more input is buffered: frames that arrive together
// (pipelined) leave in one write, a lone frame leaves at once.
type rawServer struct {
	wg sync.WaitGroup
	// frames and writes count response frames and write syscalls.
	frames, writes atomic.Uint64
	// pool, if not nil, writes the echoes (raw-pool).
	pool *ants.Pool

	// mu protects the fields below.
	mu     sync.Mutex
	lis    net.Listener
	conns  map[net.Conn]struct{}
	closed bool
}

func newRawServer(Options) (Server, error) {
	return &rawServer{conns: make(map[net.Conn]struct{})}, nil
}

func (s *rawServer) Serve(lis net.Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		lis.Close()
		return nil
	}
	s.lis = lis
	s.mu.Unlock()
	for {
		c, err := lis.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
			if s.pool != nil {
				s.serveConnPool(c)
			} else {
				s.serveConn(c)
			}
		}()
	}
}

// countingWriter counts the writes that reach the connection.
type countingWriter struct {
	w io.Writer
	n uint64
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n++
	return w.w.Write(p)
}

func (s *rawServer) serveConn(c net.Conn) {
	cw := &countingWriter{w: c}
	var frames uint64
	defer func() {
		s.frames.Add(frames)
		s.writes.Add(cw.n)
	}()
	br := bufio.NewReaderSize(c, rawBufSize)
	bw := bufio.NewWriterSize(cw, rawBufSize)
	var h [rawHeaderLen]byte
	for {
		n, err := readRequestHeader(br, &h)
		if err != nil {
			return
		}
		h[3] = rawResponse
		bw.Write(h[:])
		for n > 0 {
			if br.Buffered() == 0 {
				if _, err := br.Peek(1); err != nil {
					return
				}
			}
			k := min(n, br.Buffered())
			b, _ := br.Peek(k)
			bw.Write(b)
			br.Discard(k)
			n -= k
		}
		frames++
		if br.Buffered() == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
	}
}

// readRequestHeader reads a request frame's header into h and returns the
// length of what follows it.
func readRequestHeader(br *bufio.Reader, h *[rawHeaderLen]byte) (int, error) {
	if _, err := io.ReadFull(br, h[:]); err != nil {
		return 0, err
	}
	_, n, err := parseRawHeader(h[:], rawRequest)
	return n, err
}

// Stop closes the listener and every connection. The harness stops a
// server only after its callers are done.
func (s *rawServer) Stop(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	if s.lis != nil {
		s.lis.Close()
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		if s.pool != nil {
			s.pool.Release()
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats reports the mean frames per write syscall.
func (s *rawServer) Stats() map[string]float64 {
	f, w := s.frames.Load(), s.writes.Load()
	st := map[string]float64{"frames": float64(f), "writes": float64(w)}
	if w > 0 {
		st[StatFramesPerWrite] = float64(f) / float64(w)
	}
	return st
}

// rawConnClient gives each caller its own connection.
type rawConnClient struct {
	addr string
	d    net.Dialer
}

func newRawConnClient(addr string, _ Options) (Client, error) {
	return &rawConnClient{addr: addr}, nil
}

// NewCaller returns a handle that dials on its first call, so that a
// connection that cannot be made shows as call errors.
func (c *rawConnClient) NewCaller() (Caller, error) {
	return &rawConnCaller{cl: c}, nil
}

func (c *rawConnClient) Close() error { return nil }

type rawConnCaller struct {
	cl *rawConnClient
	// c is the caller's connection; nil until the first call and after a
	// call that failed, which may have left a frame half sent or half read.
	c   net.Conn
	br  *bufio.Reader
	out []byte
	in  []byte
	seq uint32
}

func (c *rawConnCaller) Call(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.c == nil {
		nc, err := c.cl.d.DialContext(ctx, "tcp", c.cl.addr)
		if err != nil {
			return err
		}
		c.c = nc
		c.br = bufio.NewReaderSize(nc, rawBufSize)
	}
	err := c.roundTrip(ctx, payload)
	if err != nil {
		c.c.Close()
		c.c = nil
	}
	return err
}

func (c *rawConnCaller) roundTrip(ctx context.Context, payload []byte) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Time{}
	}
	c.c.SetDeadline(deadline)
	c.seq++
	c.out = appendRawFrame(c.out[:0], c.seq, payload)
	if _, err := c.c.Write(c.out); err != nil {
		return err
	}
	var h [rawHeaderLen]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return err
	}
	seq, n, err := parseRawHeader(h[:], rawResponse)
	if err != nil {
		return err
	}
	if seq != c.seq {
		return fmt.Errorf("%w: sequence id %d, want %d", errRawFrame, seq, c.seq)
	}
	if cap(c.in) < n {
		c.in = make([]byte, n)
	}
	c.in = c.in[:n]
	if _, err := io.ReadFull(c.br, c.in); err != nil {
		return err
	}
	return checkEcho(payload, c.in)
}

func (c *rawConnCaller) Close() error {
	if c.c == nil {
		return nil
	}
	err := c.c.Close()
	c.c = nil
	return err
}
