package writev

import (
	"errors"
	"sync/atomic"
	"time"
)

// IOVMax is the most buffers one writev takes (IOV_MAX on Linux).
const IOVMax = 1024

// ErrClosed is returned by Push after Close.
var ErrClosed = errors.New("rpc: connection closed for writing")

// WriteFunc writes bufs, in order, in one system call, and returns the
// bytes written. wouldBlock reports that the socket took none, or not all,
// of them and the caller must wait for it to become writable. A WriteFunc
// never gets more than IOVMax buffers.
type WriteFunc func(bufs [][]byte) (n int, wouldBlock bool, err error)

// Counters count write system calls and the frames they carried; Writers
// may share one.
type Counters struct {
	Writes atomic.Uint64
	Frames atomic.Uint64
}

// Options are a Writer's optional parts; zero fields are unused.
type Options struct {
	// Release gets every frame once it has been written or dropped, so that
	// its buffer can be reused.
	Release func([]byte)
	// Counters, if set, is where the Writer counts its writes and frames.
	Counters *Counters
}

// Writer sends the frames that many goroutines produce for one connection
// in as few system calls as possible. Any goroutine may Push a frame; one
// goroutine, the writer's owner, calls Flush, which writes everything
// queued, in batches of up to IOVMax frames per system call. Frames are
// never reordered or dropped: after a short write, the rest of the batch
// stays, with its offset, for the next Flush.
//
// Who owns a Writer is the one rule of V4's sending: on the server, the
// loop that serves the connection (workers push and wake it); on the
// client, whoever holds the connection's write lock: its writer goroutine
// (callers push and wake it), or a call alone on the connection, which
// writes its own frame at once.
type Writer struct {
	q        Queue
	write    WriteFunc
	release  func([]byte)
	counters *Counters

	// Owned by the owner: the frames taken from the queue and not yet
	// written, how much of batch[0] has been written, and the latest
	// deadline of the frames in batch (zero: one of them has none).
	batch     [][]byte
	off       int
	latest    time.Time
	unbounded bool
}

// NewWriter returns a Writer that writes with write.
func NewWriter(write WriteFunc, o Options) *Writer {
	if o.Counters == nil {
		o.Counters = new(Counters)
	}
	return &Writer{write: write, release: o.Release, counters: o.Counters}
}

// Push queues frame, whose call ends at deadline (zero: never), and
// returns the bytes now queued, for backpressure. Any goroutine may call
// it. The frame belongs to the Writer from now on: it goes to Release once
// written or dropped. After Close it returns ErrClosed and releases the
// frame.
func (w *Writer) Push(frame []byte, deadline time.Time) (queued int, err error) {
	queued, ok := w.q.PushUntil(frame, deadline)
	if !ok {
		w.drop([][]byte{frame})
		return 0, ErrClosed
	}
	return queued, nil
}

// Flush writes what is queued until nothing is left, or until the socket
// is full: then it returns wouldBlock, and the owner calls Flush again
// once the socket is writable. n is the bytes written. Owner only.
func (w *Writer) Flush() (n int, wouldBlock bool, err error) {
	return w.FlushWith(w.write)
}

// FlushWith is Flush with another WriteFunc for the same connection, such
// as one that never waits (TryConn) where the Writer's own may. Owner
// only.
func (w *Writer) FlushWith(write WriteFunc) (n int, wouldBlock bool, err error) {
	for {
		had := len(w.batch)
		var latest time.Time
		w.batch, latest = w.q.TakeUntil(w.batch)
		if len(w.batch) == 0 {
			return n, false, nil
		}
		if len(w.batch) > had {
			if latest.IsZero() {
				w.unbounded = true
			} else if latest.After(w.latest) {
				w.latest = latest
			}
		}
		bufs := w.batch[:min(len(w.batch), IOVMax)]
		first := bufs[0]
		bufs[0] = first[w.off:]
		k, wouldBlock, err := write(bufs)
		bufs[0] = first
		if k > 0 {
			w.counters.Writes.Add(1)
		}
		w.advance(k)
		n += k
		if err != nil || wouldBlock {
			return n, wouldBlock, err
		}
	}
}

// advance drops the n bytes written from the front of the batch, and any
// empty frames there, which take no bytes at all.
func (w *Writer) advance(n int) {
	done := 0
	for done < len(w.batch) {
		rest := len(w.batch[done]) - w.off
		if n < rest {
			w.off += n
			break
		}
		n -= rest
		w.off = 0
		if w.release != nil {
			w.release(w.batch[done])
		}
		w.batch[done] = nil
		done++
	}
	w.counters.Frames.Add(uint64(done))
	w.batch = append(w.batch[:0], w.batch[done:]...)
	if len(w.batch) == 0 {
		w.latest, w.unbounded = time.Time{}, false
	}
}

// Deadline returns the latest deadline of the frames being written, or
// zero if one of them has none: a WriteFunc that blocks bounds its write
// by it, since by then every call it carries has ended. Owner only.
func (w *Writer) Deadline() time.Time {
	if w.unbounded {
		return time.Time{}
	}
	return w.latest
}

// Queued returns the bytes pushed and not yet taken by a Flush. Any
// goroutine may call it.
func (w *Writer) Queued() int { return w.q.Bytes() }

// Pending returns the bytes pushed and not yet written. Owner only.
func (w *Writer) Pending() int {
	n := w.q.Bytes()
	for i, f := range w.batch {
		if i == 0 {
			n += len(f) - w.off
		} else {
			n += len(f)
		}
	}
	return n
}

// Idle reports whether nothing is queued or left to write. Owner only.
func (w *Writer) Idle() bool { return len(w.batch) == 0 && w.q.Len() == 0 }

// Close stops the writer: later Pushes fail with ErrClosed. It returns the
// frames not written, in order, after giving them to Release; started
// reports whether the first of them was partly written. Owner only.
func (w *Writer) Close() (left [][]byte, started bool) {
	left = append(w.batch, w.q.Close()...)
	started = len(w.batch) > 0 && w.off > 0
	w.drop(left)
	w.batch, w.off = nil, 0
	w.latest, w.unbounded = time.Time{}, false
	return left, started
}

func (w *Writer) drop(frames [][]byte) {
	if w.release == nil {
		return
	}
	for _, f := range frames {
		if f != nil {
			w.release(f)
		}
	}
}

// Stats returns the write system calls made and the frames they carried,
// counted in the Writer's Counters.
func (w *Writer) Stats() (writes, frames uint64) {
	return w.counters.Writes.Load(), w.counters.Frames.Load()
}
