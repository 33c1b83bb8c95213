package writev

import (
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
)

// IOVMax is the most buffers one writev takes (IOV_MAX on Linux).
const IOVMax = 1024

// ErrClosed is returned by Send after Close or after a write failed.
var ErrClosed = errors.New("rpc: connection closed for writing")

// The states of a Sender.
const (
	idle int32 = iota
	flushing
	parked
)

// WriteFunc writes bufs, in order, in one system call, and returns the
// bytes written. wouldBlock reports that the socket took none, or not all,
// of them and the caller must wait for it to become writable. A WriteFunc
// never gets more than IOVMax buffers.
type WriteFunc func(bufs [][]byte) (n int, wouldBlock bool, err error)

// Sender sends the frames pushed by many goroutines on one connection. The
// goroutine that finds no flush in progress becomes the flusher: it writes
// everything queued, its own frame and those pushed meanwhile, in batches
// of up to IOVMax frames per system call, while the others only queue.
// Frames are never reordered or dropped: after a short write, the rest of
// the batch stays, with its offset, for the next flush.
type Sender struct {
	write   WriteFunc
	release func([]byte)
	blocked func()

	q Queue
	// state says who owns batch: nobody (idle), the goroutine flushing, or
	// nobody until the socket is writable (parked).
	state atomic.Int32
	// batch holds the frames taken from the queue and not yet written;
	// off is how much of batch[0] has been written. Owned by the flusher.
	batch [][]byte
	off   int

	// mu protects err.
	mu  sync.Mutex
	err error

	// counters count the writes and frames of every Sender that shares
	// them.
	counters *Counters
	// drained, if not nil, is called when a flush ends with nothing left.
	drained func()
}

// Counters count write system calls and the frames they carried; Senders
// may share one.
type Counters struct {
	Writes atomic.Uint64
	Frames atomic.Uint64
}

// Options are a Sender's optional parts; zero fields are unused.
type Options struct {
	// Release gets every frame once it has been written or dropped, so that
	// its buffer can be reused.
	Release func([]byte)
	// Blocked is called when a flush stops because the socket is full; the
	// owner then calls Flush when the socket is writable.
	Blocked func()
	// Drained is called when a flush ends with nothing left to write.
	Drained func()
	// Counters, if set, is where the Sender counts its writes and frames.
	Counters *Counters
}

// NewSender returns a Sender that writes with write.
func NewSender(write WriteFunc, o Options) *Sender {
	if o.Counters == nil {
		o.Counters = new(Counters)
	}
	return &Sender{write: write, release: o.Release, blocked: o.Blocked, drained: o.Drained, counters: o.Counters}
}

// Send queues frame and, if no flush is in progress, flushes. It returns
// the bytes still queued afterwards, for backpressure, and the error that
// closed the sender, if one did. The frame belongs to the Sender from now
// on: it goes to release once written.
func (s *Sender) Send(frame []byte) (queued int, err error) {
	if _, ok := s.q.Push(frame); !ok {
		s.drop([][]byte{frame})
		return 0, s.closedErr()
	}
	if s.state.CompareAndSwap(idle, flushing) {
		// Let the goroutines that are ready to run queue their frames
		// first: on a busy connection the writev then carries them all,
		// and on a quiet one nobody else is runnable and this returns at
		// once.
		runtime.Gosched()
		if err := s.flush(); err != nil {
			return 0, err
		}
	}
	return s.q.Bytes(), nil
}

// Flush resumes a flush that stopped because the socket was full; call it
// when the socket is writable. It does nothing if no flush is parked.
func (s *Sender) Flush() error {
	if !s.state.CompareAndSwap(parked, flushing) {
		return nil
	}
	return s.flush()
}

// flush writes until the queue is empty or the socket is full. The caller
// owns the batch (flushing is true).
func (s *Sender) flush() error {
	for {
		s.batch = s.q.Take(s.batch)
		if len(s.batch) == 0 {
			s.state.Store(idle)
			if s.drained != nil {
				s.drained()
			}
			// A frame pushed between Take and Store saw a flush in
			// progress and left it to us: take it, unless another
			// goroutine has become the flusher since.
			if s.q.Bytes() == 0 || !s.state.CompareAndSwap(idle, flushing) {
				return nil
			}
			continue
		}
		bufs := s.batch[:min(len(s.batch), IOVMax)]
		first := bufs[0]
		bufs[0] = first[s.off:]
		n, wouldBlock, err := s.write(bufs)
		bufs[0] = first
		if n > 0 {
			s.counters.Writes.Add(1)
		}
		s.advance(n)
		if err != nil {
			s.fail(err)
			return err
		}
		if wouldBlock {
			// Park: the owner calls Flush when the socket is writable.
			s.state.Store(parked)
			if s.blocked != nil {
				s.blocked()
			}
			return nil
		}
	}
}

// advance drops the n bytes written from the front of the batch, and any
// empty frames there, which take no bytes at all.
func (s *Sender) advance(n int) {
	done := 0
	for done < len(s.batch) {
		rest := len(s.batch[done]) - s.off
		if n < rest {
			s.off += n
			break
		}
		n -= rest
		s.off = 0
		if s.release != nil {
			s.release(s.batch[done])
		}
		s.batch[done] = nil
		done++
	}
	s.counters.Frames.Add(uint64(done))
	s.batch = append(s.batch[:0], s.batch[done:]...)
}

// fail closes the sender after a write error; the frames not written are
// dropped.
func (s *Sender) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
	s.drop(s.q.Close())
	s.drop(s.batch)
	s.batch, s.off = nil, 0
	s.state.Store(idle) // nothing is left to flush, ever
}

func (s *Sender) drop(frames [][]byte) {
	if s.release == nil {
		return
	}
	for _, f := range frames {
		if f != nil {
			s.release(f)
		}
	}
}

func (s *Sender) closedErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	return ErrClosed
}

// Pending returns the bytes queued and not yet taken by a flush.
func (s *Sender) Pending() int { return s.q.Bytes() }

// Idle reports whether nothing is queued or being written.
func (s *Sender) Idle() bool { return s.state.Load() == idle && s.q.Bytes() == 0 }

// Close stops the sender: later Sends fail with ErrClosed, and the frames
// still queued, or parked waiting for the socket, are dropped. A flush in
// progress finishes its write and then finds the queue closed. Callers that
// want every frame out wait for Idle first.
func (s *Sender) Close() {
	s.mu.Lock()
	if s.err == nil {
		s.err = ErrClosed
	}
	s.mu.Unlock()
	s.drop(s.q.Close())
	if s.state.CompareAndSwap(parked, flushing) {
		// A parked batch has no owner: drop it here.
		s.drop(s.batch)
		s.batch, s.off = nil, 0
		s.state.Store(idle)
	}
}

// Parked reports whether a flush waits for the socket to become writable.
func (s *Sender) Parked() bool { return s.state.Load() == parked }

// Stats returns the write system calls made and the frames they carried,
// counted in the Sender's Counters.
func (s *Sender) Stats() (writes, frames uint64) {
	return s.counters.Writes.Load(), s.counters.Frames.Load()
}
