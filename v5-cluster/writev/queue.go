package writev

import (
	"sync"
	"time"
)

// Queue holds the frames waiting to be written on one connection, in the
// order they were pushed. Many goroutines push; one writer takes them all
// at once. It is a slice behind a mutex. BenchmarkQueue measures it against
// the lock-free ring the blog uses: the bare ring is faster, but a ring is
// bounded, and once it is given Queue's contract (never make a producer
// wait, hold any number of frames, count the bytes for backpressure) it is
// slower than this; docs/v4-epoll-batch.md has the numbers.
type Queue struct {
	// mu protects the fields below.
	mu     sync.Mutex
	frames [][]byte
	bytes  int
	closed bool
	// latest is the latest deadline of the frames held, and unbounded is
	// set if one of them has none: a writer that may block bounds its
	// write by them.
	latest    time.Time
	unbounded bool
}

// Push adds a frame that has no deadline; see PushUntil.
func (q *Queue) Push(frame []byte) (queued int, ok bool) {
	return q.PushUntil(frame, time.Time{})
}

// PushUntil adds a frame whose call ends at deadline (zero: never), and
// returns the bytes now queued, for backpressure. It reports false, and
// queues nothing, once the queue is closed.
func (q *Queue) PushUntil(frame []byte, deadline time.Time) (queued int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return q.bytes, false
	}
	q.frames = append(q.frames, frame)
	q.bytes += len(frame)
	if deadline.IsZero() {
		q.unbounded = true
	} else if deadline.After(q.latest) {
		q.latest = deadline
	}
	return q.bytes, true
}

// Take moves every queued frame to the end of dst and returns it; see
// TakeUntil.
func (q *Queue) Take(dst [][]byte) [][]byte {
	dst, _ = q.TakeUntil(dst)
	return dst
}

// TakeUntil moves every queued frame to the end of dst and returns it,
// with the latest deadline of the frames taken (zero if one of them has
// none). The queue's slice and dst trade places, so that neither allocates
// once both have grown.
func (q *Queue) TakeUntil(dst [][]byte) ([][]byte, time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.frames) == 0 {
		return dst, time.Time{}
	}
	if len(dst) == 0 {
		dst, q.frames = q.frames, dst[:0]
	} else {
		dst = append(dst, q.frames...)
		clear(q.frames)
		q.frames = q.frames[:0]
	}
	latest := q.latest
	if q.unbounded {
		latest = time.Time{}
	}
	q.bytes, q.latest, q.unbounded = 0, time.Time{}, false
	return dst, latest
}

// Len returns the number of frames queued.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.frames)
}

// Bytes returns the bytes queued.
func (q *Queue) Bytes() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.bytes
}

// Close closes the queue and returns the frames it still held.
func (q *Queue) Close() [][]byte {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.closed = true
	left := q.frames
	q.frames, q.bytes = nil, 0
	return left
}
