package rpctest

import (
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

func protoUnmarshal(b []byte, m proto.Message) error { return proto.Unmarshal(b, m) }

// canDial reports whether a TCP connection to addr succeeds.
func canDial(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// resettingServer is a fake server that reads requests until it has seen
// want of them (on any number of connections), then sends part of a response
// on each connection and resets it (SO_LINGER 0, then close).
type resettingServer struct {
	addr string
	lis  net.Listener
	wg   sync.WaitGroup

	mu    sync.Mutex
	conns []*net.TCPConn
	seen  int
	want  int
	fired bool
}

func newResettingServer(t *testing.T, want int) *resettingServer {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &resettingServer{addr: lis.Addr().String(), lis: lis, want: want}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			tc := nc.(*net.TCPConn)
			s.mu.Lock()
			s.conns = append(s.conns, tc)
			s.mu.Unlock()
			s.wg.Add(1)
			go s.read(tc)
		}
	}()
	t.Cleanup(s.close)
	return s
}

func (s *resettingServer) read(c *net.TCPConn) {
	defer s.wg.Done()
	for {
		r, err := readRequestFrame(c)
		if err != nil {
			return
		}
		s.mu.Lock()
		s.seen++
		if s.seen >= s.want && !s.fired {
			s.fired = true
			half := header{magic: magic, version: version, typ: typeResponse, seq: r, metaLen: 2, bodyLen: 100}.bytes()
			for _, c := range s.conns {
				c.Write(half[:headerLen-6])
				c.SetLinger(0)
				c.Close()
			}
		}
		s.mu.Unlock()
	}
}

func (s *resettingServer) close() {
	s.lis.Close()
	s.mu.Lock()
	for _, c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// readRequestFrame reads one request frame without judging it and returns
// its sequence id.
func readRequestFrame(c net.Conn) (uint32, error) {
	h := make([]byte, headerLen)
	if _, err := io.ReadFull(c, h); err != nil {
		return 0, err
	}
	n := uint64(binary.BigEndian.Uint32(h[8:])) + uint64(binary.BigEndian.Uint32(h[12:]))
	if n > 64<<20 {
		return 0, io.ErrUnexpectedEOF
	}
	if _, err := io.CopyN(io.Discard, c, int64(n)); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(h[4:]), nil
}

// deafServer accepts connections and never reads from them: a peer whose
// receive buffers fill and stay full, so that whatever writes to it blocks.
type deafServer struct {
	addr string
	lis  net.Listener
	wg   sync.WaitGroup
	// mu protects the fields below: conns, the connections accepted and
	// not yet closed by close, and count, all those accepted.
	mu    sync.Mutex
	conns []net.Conn
	count int
}

func newDeafServer(t *testing.T) *deafServer {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &deafServer{addr: lis.Addr().String(), lis: lis}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := lis.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns = append(s.conns, nc)
			s.count++
			s.mu.Unlock()
		}
	}()
	t.Cleanup(s.close)
	return s
}

// accepted returns the number of connections accepted so far.
func (s *deafServer) accepted() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// close closes the listener and every connection; it may be called more
// than once.
func (s *deafServer) close() {
	s.lis.Close()
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		c.Close()
	}
	s.conns = nil
}
