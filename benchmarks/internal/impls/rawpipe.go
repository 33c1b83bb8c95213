package impls

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
)

func init() {
	register(Impl{
		Name: "raw-pipe",
		Kind: KindLimit,
		Summary: "Raw TCP, no RPC, pipelined: all callers share one connection with every caller's frame in flight at once. " +
			"A writer goroutine sends everything queued in one write, a reader goroutine hands each echo to its caller by sequence id: " +
			"the limit for a multiplexing client.",
		NewServer: newRawServer,
		NewClient: newRawPipeClient,
	})
}

// errPipeClosed fails the calls of a raw-pipe client after Close.
var errPipeClosed = errors.New("bench: raw-pipe client closed")

// rawPipeClient multiplexes every caller's frames over one connection.
type rawPipeClient struct {
	c    net.Conn
	wg   sync.WaitGroup
	wake chan struct{}
	quit chan struct{}

	// mu protects the fields below.
	mu sync.Mutex
	// pending holds the calls waiting for their echo, by sequence id.
	pending map[uint32]*pipeCall
	seq     uint32
	// out holds the frames queued for the writer, spare its other buffer.
	out, spare []byte
	// flushing is true from the first frame queued until the writer finds
	// the queue empty; the caller that sets it wakes the writer.
	flushing bool
	// err is set when the connection fails; every later call fails with it.
	err error
}

// pipeCall is one call in flight. A caller reuses its own for every call.
type pipeCall struct {
	// buf receives the echo; n is its length.
	buf []byte
	n   int
	err error
	// done gets one value when the reader (or a failure) ends the call.
	done chan struct{}
}

func newRawPipeClient(addr string, _ Options) (Client, error) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	cl := &rawPipeClient{
		c:       c,
		wake:    make(chan struct{}, 1),
		quit:    make(chan struct{}),
		pending: make(map[uint32]*pipeCall),
	}
	cl.wg.Add(2)
	go cl.writeLoop()
	go cl.readLoop()
	return cl, nil
}

func (cl *rawPipeClient) NewCaller() (Caller, error) {
	return &rawPipeCaller{cl: cl, call: pipeCall{done: make(chan struct{}, 1)}}, nil
}

// Close closes the connection, fails the calls in flight and waits for the
// client's goroutines.
func (cl *rawPipeClient) Close() error {
	select {
	case <-cl.quit:
		return nil
	default:
	}
	close(cl.quit)
	cl.fail(errPipeClosed)
	err := cl.c.Close()
	cl.wg.Wait()
	return err
}

// fail records err as the connection's failure, unless there is one, and
// ends every pending call with it.
func (cl *rawPipeClient) fail(err error) {
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if cl.err == nil {
		cl.err = err
	}
	for seq, pc := range cl.pending {
		delete(cl.pending, seq)
		pc.err = cl.err
		pc.done <- struct{}{}
	}
}

// writeLoop sends the queued frames, all of them in one write each time it
// wakes.
func (cl *rawPipeClient) writeLoop() {
	defer cl.wg.Done()
	for {
		select {
		case <-cl.wake:
		case <-cl.quit:
			return
		}
		for {
			cl.mu.Lock()
			if len(cl.out) == 0 || cl.err != nil {
				cl.flushing = false
				cl.mu.Unlock()
				break
			}
			buf := cl.out
			cl.out = cl.spare[:0]
			cl.mu.Unlock()
			_, err := cl.c.Write(buf)
			cl.mu.Lock()
			cl.spare = buf[:0]
			cl.mu.Unlock()
			if err != nil {
				cl.fail(fmt.Errorf("bench: raw-pipe write: %w", err))
				break
			}
		}
	}
}

// readLoop reads echoes and hands each to the caller waiting for it. It
// reads a whole frame before it takes the caller's entry, so a caller whose
// entry is taken waits only for a copy.
func (cl *rawPipeClient) readLoop() {
	defer cl.wg.Done()
	br := bufio.NewReaderSize(cl.c, rawBufSize)
	var h [rawHeaderLen]byte
	var scratch []byte
	for {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			cl.fail(fmt.Errorf("bench: raw-pipe read: %w", err))
			return
		}
		seq, n, err := parseRawHeader(h[:], rawResponse)
		if err != nil {
			cl.fail(err)
			return
		}
		var body []byte
		if n <= br.Size() {
			// The frame fits in the reader's buffer: look at it there.
			if body, err = br.Peek(n); err != nil {
				cl.fail(fmt.Errorf("bench: raw-pipe read: %w", err))
				return
			}
		} else {
			if cap(scratch) < n {
				scratch = make([]byte, n)
			}
			body = scratch[:n]
			if _, err := io.ReadFull(br, body); err != nil {
				cl.fail(fmt.Errorf("bench: raw-pipe read: %w", err))
				return
			}
		}
		cl.mu.Lock()
		pc := cl.pending[seq]
		delete(cl.pending, seq)
		cl.mu.Unlock()
		if pc != nil {
			// The entry is ours alone now: its caller waits for done.
			pc.n = copy(pc.buf[:cap(pc.buf)], body)
			pc.err = nil
			if n > cap(pc.buf) {
				pc.err = fmt.Errorf("%w: got %d bytes, more than were sent", ErrMismatch, n)
			}
			pc.done <- struct{}{}
		}
		if n <= br.Size() {
			br.Discard(n)
		}
	}
}

type rawPipeCaller struct {
	cl   *rawPipeClient
	call pipeCall
}

func (c *rawPipeCaller) Call(ctx context.Context, payload []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	cl, pc := c.cl, &c.call
	if cap(pc.buf) < len(payload) {
		pc.buf = make([]byte, len(payload))
	}
	cl.mu.Lock()
	if cl.err != nil {
		err := cl.err
		cl.mu.Unlock()
		return err
	}
	cl.seq++
	for cl.pending[cl.seq] != nil {
		cl.seq++ // wrapped around onto a call still in flight
	}
	seq := cl.seq
	cl.pending[seq] = pc
	cl.out = appendRawFrame(cl.out, seq, payload)
	kick := !cl.flushing
	cl.flushing = true
	cl.mu.Unlock()
	if kick {
		select {
		case cl.wake <- struct{}{}:
		default:
		}
	}

	select {
	case <-pc.done:
	case <-ctx.Done():
		cl.mu.Lock()
		_, waiting := cl.pending[seq]
		delete(cl.pending, seq)
		cl.mu.Unlock()
		if waiting {
			return ctx.Err()
		}
		// The reader or a failure took the entry first and is about to
		// signal: wait for it, so the entry is free when we return.
		<-pc.done
	}
	if pc.err != nil {
		return pc.err
	}
	return checkEcho(payload, pc.buf[:pc.n])
}

func (c *rawPipeCaller) Close() error { return nil }
