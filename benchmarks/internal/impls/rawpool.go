package impls

import (
	"bufio"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/panjf2000/ants/v2"
)

func init() {
	register(Impl{
		Name: "raw-pool",
		Kind: KindLimit,
		Summary: "Raw TCP, no RPC, as raw-conn, but the server hands each frame to a goroutine of an ants pool, which writes the echo; " +
			"the connection's goroutine goes on reading. The request/reply limit for a server whose handlers run on a pool, " +
			"as myrpc's do from V2 on: what raw-conn pays, plus one goroutine hand-off per call.",
		NewServer: newRawPoolServer,
		NewClient: newRawConnClient,
	})
}

// rawPoolWorkers is the size of the raw-pool server's ants pool, as myrpc's
// default.
const rawPoolWorkers = 10000

func newRawPoolServer(Options) (Server, error) {
	p, err := ants.NewPool(rawPoolWorkers)
	if err != nil {
		return nil, err
	}
	return &rawServer{conns: make(map[net.Conn]struct{}), pool: p}, nil
}

// serveConnPool is serveConn for a server with a pool: the connection's
// goroutine reads each frame and submits its echo to the pool, where a
// worker writes it, whole, under the connection's write lock.
func (s *rawServer) serveConnPool(c net.Conn) {
	var (
		wmu    sync.Mutex
		writes uint64
		frames uint64
		// owed counts the echoes submitted and not yet written.
		owed sync.WaitGroup
	)
	defer func() {
		owed.Wait()
		s.frames.Add(frames)
		s.writes.Add(writes)
	}()
	br := bufio.NewReaderSize(c, rawBufSize)
	var h [rawHeaderLen]byte
	for {
		n, err := readRequestHeader(br, &h)
		if err != nil {
			return
		}
		frame := make([]byte, rawHeaderLen+n)
		copy(frame, h[:])
		frame[3] = rawResponse
		if _, err := io.ReadFull(br, frame[rawHeaderLen:]); err != nil {
			return
		}
		owed.Add(1)
		err = s.pool.Submit(func() {
			defer owed.Done()
			wmu.Lock()
			defer wmu.Unlock()
			if _, err := c.Write(frame); err == nil {
				writes++
				frames++
			}
		})
		if err != nil {
			owed.Done()
			return
		}
		if br.Buffered() == 0 {
			// As myrpc's servers do: the worker runs first, and its echo
			// leaves before this goroutine reads again.
			runtime.Gosched()
		}
	}
}
