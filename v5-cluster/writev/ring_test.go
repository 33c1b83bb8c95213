package writev

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ring is a bounded lock-free queue of items (frames, for the blog):
// many producers, one consumer at a time. Every slot carries a sequence
// number that says whose turn it is: a slot at position pos is free for
// the producer of pos when its sequence is pos, holds that producer's item
// when it is pos+1, and is
// free again for the producer one lap later once the consumer sets it to
// pos+len(slots). A producer claims a position with one compare-and-swap on
// tail; nothing else is shared between producers.
type ring[T any] struct {
	// tail is the next position a producer claims; head, the next one the
	// consumer takes. Each has a cache line of its own, so that producers
	// and the consumer do not invalidate each other's.
	_    [64]byte
	tail atomic.Uint64
	_    [56]byte
	head atomic.Uint64
	_    [56]byte

	mask  uint64
	slots []ringSlot[T]
}

type ringSlot[T any] struct {
	seq  atomic.Uint64
	item T
}

// newRing returns an empty ring of size slots, a power of two.
func newRing[T any](size int) *ring[T] {
	r := &ring[T]{mask: uint64(size - 1), slots: make([]ringSlot[T], size)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// tryPush adds item, or reports false if the ring is full. It never
// waits.
func (r *ring[T]) tryPush(item T) bool {
	for {
		pos := r.tail.Load()
		s := &r.slots[pos&r.mask]
		switch seq := s.seq.Load(); {
		case seq == pos:
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.item = item
				s.seq.Store(pos + 1) // publishes the item
				return true
			}
		case seq < pos:
			return false // the slot still holds an item from a lap ago: full
		}
		// Another producer took pos first: try the next one.
	}
}

// pop takes the oldest item, or reports false when none is ready: the
// ring is empty, or the producer of the next position has claimed it and
// not yet written it.
func (r *ring[T]) pop() (T, bool) {
	var zero T
	pos := r.head.Load()
	s := &r.slots[pos&r.mask]
	if s.seq.Load() != pos+1 {
		return zero, false
	}
	item := s.item
	s.item = zero
	r.head.Store(pos + 1)
	s.seq.Store(pos + uint64(len(r.slots))) // frees the slot for the next lap
	return item, true
}

// ringSize is the capacity of the rings measured.
const ringSize = 1024

// ringQueue is the ring made into what Queue must be: unbounded, never
// making a producer wait, counting the bytes queued for backpressure, and
// tracking the latest deadline of the frames queued. A producer that finds
// the ring full puts its frame in an overflow slice behind a mutex
// instead, and from then on every producer does, until the consumer has
// taken the overflow; the consumer takes the ring before the overflow, so
// no producer's frames are reordered. Each frame in the ring carries its
// deadline, which the consumer reads as it takes the frame. It is what the
// product would use if the ring had won BenchmarkQueue.
type ringQueue struct {
	ring *ring[ringEntry]
	once sync.Once

	// bytes is written by every push and take: it has a cache line of its
	// own, away from the fields that are only read.
	_     [64]byte
	bytes atomic.Int64
	_     [56]byte

	// overflowing is set while the overflow holds frames; mu protects
	// overflow and the latest deadline of its frames (unbounded: one has
	// none).
	overflowing atomic.Bool
	mu          sync.Mutex
	overflow    [][]byte
	latest      time.Time
	unbounded   bool

	// closed refuses pushes. A push that races with Close may still land
	// after Close has emptied the queue; its frame is then never written,
	// like every frame of a connection that is closing.
	closed atomic.Bool
}

// ringEntry is a frame in ringQueue's ring, with its deadline.
type ringEntry struct {
	frame    []byte
	deadline time.Time
}

func (q *ringQueue) init() { q.once.Do(func() { q.ring = newRing[ringEntry](ringSize) }) }

// Push adds a frame that has no deadline; see PushUntil.
func (q *ringQueue) Push(frame []byte) (queued int, ok bool) {
	return q.PushUntil(frame, time.Time{})
}

// PushUntil adds a frame whose call ends at deadline (zero: never), and
// returns the bytes now queued, for backpressure. It reports false, and
// queues nothing, once the queue is closed.
func (q *ringQueue) PushUntil(frame []byte, deadline time.Time) (n int, ok bool) {
	q.init()
	if q.closed.Load() {
		return int(q.bytes.Load()), false
	}
	if q.overflowing.Load() || !q.ring.tryPush(ringEntry{frame, deadline}) {
		q.mu.Lock()
		q.overflow = append(q.overflow, frame)
		if deadline.IsZero() {
			q.unbounded = true
		} else if deadline.After(q.latest) {
			q.latest = deadline
		}
		q.overflowing.Store(true)
		q.mu.Unlock()
	}
	return int(q.bytes.Add(int64(len(frame)))), true
}

// Take moves every queued frame to the end of dst and returns it; see
// TakeUntil.
func (q *ringQueue) Take(dst [][]byte) [][]byte {
	dst, _ = q.TakeUntil(dst)
	return dst
}

// TakeUntil moves every queued frame to the end of dst and returns it,
// with the latest deadline of the frames taken (zero if one of them has
// none).
func (q *ringQueue) TakeUntil(dst [][]byte) ([][]byte, time.Time) {
	q.init()
	n := 0
	var latest time.Time
	unbounded := false
	// take takes the oldest frame in the ring, if one is ready.
	take := func() bool {
		e, ok := q.ring.pop()
		if !ok {
			return false
		}
		dst = append(dst, e.frame)
		n += len(e.frame)
		if e.deadline.IsZero() {
			unbounded = true
		} else if e.deadline.After(latest) {
			latest = e.deadline
		}
		return true
	}
	for take() {
	}
	if q.overflowing.Load() {
		q.mu.Lock()
		// Again, under the lock, and this time every position claimed so
		// far, waiting for the producers that have claimed one and not
		// yet filled it: a producer whose frame is in the overflow put
		// its earlier frames in the ring, maybe behind a position another
		// producer is still filling, and they must come out first.
		for end := q.ring.tail.Load(); q.ring.head.Load() != end; {
			if !take() {
				runtime.Gosched()
			}
		}
		for _, f := range q.overflow {
			n += len(f)
		}
		dst = append(dst, q.overflow...)
		clear(q.overflow)
		q.overflow = q.overflow[:0]
		if q.unbounded {
			unbounded = true
		} else if q.latest.After(latest) {
			latest = q.latest
		}
		q.latest, q.unbounded = time.Time{}, false
		q.overflowing.Store(false)
		q.mu.Unlock()
	}
	q.bytes.Add(-int64(n))
	if unbounded {
		latest = time.Time{}
	}
	return dst, latest
}

// Bytes returns the bytes queued.
func (q *ringQueue) Bytes() int { return int(q.bytes.Load()) }

// Close closes the queue and returns the frames it still held.
func (q *ringQueue) Close() [][]byte {
	q.init()
	q.closed.Store(true)
	return q.Take(nil)
}

// pushWait pushes frame into r, waiting while r is full, as the
// benchmark's producers do.
func pushWait(r *ring[[]byte], frame []byte) {
	for spins := 0; !r.tryPush(frame); spins++ {
		if spins >= 32 {
			runtime.Gosched()
		}
	}
}

// TestRing checks the benchmark's ring before it is measured: every frame
// comes out exactly once, and with one consumer in each producer's order,
// also when producers outnumber the slots many times over.
func TestRing(t *testing.T) {
	tests := []struct {
		name      string
		size      int
		producers int
		consumers int
		each      int
	}{
		{"one producer, one consumer", 8, 1, 1, 10000},
		{"many producers, one consumer", 8, 16, 1, 2000},
		{"many producers, tiny ring", 2, 8, 1, 2000},
		{"benchmark size", ringSize, 64, 1, 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing[[]byte](tt.size)
			total := tt.producers * tt.each
			var wg sync.WaitGroup
			for p := range tt.producers {
				wg.Go(func() {
					for i := range tt.each {
						pushWait(r, testFrame(p, i, 1))
					}
				})
			}
			var taken atomic.Int64
			seen := make([][]int, tt.consumers)
			var cwg sync.WaitGroup
			for c := range tt.consumers {
				cwg.Go(func() {
					for taken.Load() < int64(total) {
						f, ok := r.pop()
						if !ok {
							runtime.Gosched()
							continue
						}
						taken.Add(1)
						p, i, err := parseTestFrame(f)
						if err != nil || p >= tt.producers || i >= tt.each {
							t.Errorf("popped a bad frame (producer %d, index %d): %v", p, i, err)
							continue // keep draining, or the producers never finish
						}
						seen[c] = append(seen[c], p*tt.each+i)
					}
				})
			}
			done := make(chan struct{})
			go func() {
				wg.Wait()
				cwg.Wait()
				close(done)
			}()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("the ring is stuck: %d of %d frames taken after 10 s", taken.Load(), total)
			}
			if t.Failed() {
				return
			}

			count := make([]int, total)
			for _, ids := range seen {
				for _, id := range ids {
					count[id]++
				}
			}
			for id, n := range count {
				if n != 1 {
					t.Fatalf("frame %d of producer %d came out %d times", id%tt.each, id/tt.each, n)
				}
			}
			if tt.consumers == 1 {
				next := make([]int, tt.producers)
				for _, id := range seen[0] {
					p, i := id/tt.each, id%tt.each
					if i != next[p] {
						t.Fatalf("producer %d: frame %d came out where %d was due", p, i, next[p])
					}
					next[p]++
				}
			}
			if f, ok := r.pop(); ok {
				t.Fatalf("the drained ring still gave a frame of %d bytes", len(f))
			}
		})
	}
}

// TestRingWrapsAround pushes and pops across many laps of a small ring from
// one goroutine, so that every slot's sequence is reused.
func TestRingWrapsAround(t *testing.T) {
	r := newRing[[]byte](4)
	next := 0
	for i := range 1000 {
		pushWait(r, testFrame(0, i, 1))
		if i%3 == 2 { // fall behind by one frame in three, then catch up
			continue
		}
		for {
			f, ok := r.pop()
			if !ok {
				break
			}
			if _, got, err := parseTestFrame(f); err != nil || got != next {
				t.Fatalf("popped frame %d (%v), want %d", got, err, next)
			}
			next++
		}
	}
	if next != 1000 {
		t.Fatalf("popped %d frames, want 1000", next)
	}
}

// benchQueue is what BenchmarkQueue measures: producers push, one consumer
// drains whatever is there.
type benchQueue interface {
	push(frame []byte, deadline time.Time)
	// drain consumes every frame ready and returns how many frames and
	// bytes it consumed, and the latest of their deadlines if the queue
	// tracks them.
	drain() (frames, bytes int, latest time.Time)
}

// ringBench is the bare lock-free ring, drained by popping until it is
// empty; producers wait while it is full. It holds frames only, as the
// blog's does: deadlines are not its business.
type ringBench struct{ r *ring[[]byte] }

func (rb ringBench) push(frame []byte, _ time.Time) { pushWait(rb.r, frame) }

func (rb ringBench) drain() (frames, bytes int, latest time.Time) {
	for {
		f, ok := rb.r.pop()
		if !ok {
			return frames, bytes, latest
		}
		frames++
		bytes += len(f)
	}
}

// queueBench is the product's Queue: a slice behind a mutex, used as the
// Writer uses it.
type queueBench struct {
	q     Queue
	batch [][]byte
}

func (m *queueBench) push(frame []byte, deadline time.Time) {
	if _, ok := m.q.PushUntil(frame, deadline); !ok {
		panic("push on a closed queue")
	}
}

func (m *queueBench) drain() (frames, bytes int, latest time.Time) {
	m.batch, latest = m.q.TakeUntil(m.batch[:0])
	for _, f := range m.batch {
		bytes += len(f)
	}
	return len(m.batch), bytes, latest
}

// ringQueueBench is the ring with its overflow: Queue's contract, used as
// the Writer uses Queue.
type ringQueueBench struct {
	q     ringQueue
	batch [][]byte
}

func (m *ringQueueBench) push(frame []byte, deadline time.Time) {
	if _, ok := m.q.PushUntil(frame, deadline); !ok {
		panic("push on a closed queue")
	}
}

func (m *ringQueueBench) drain() (frames, bytes int, latest time.Time) {
	m.batch, latest = m.q.TakeUntil(m.batch[:0])
	for _, f := range m.batch {
		bytes += len(f)
	}
	return len(m.batch), bytes, latest
}

// BenchmarkQueue compares Queue (a slice behind a mutex) with the bare
// lock-free ring, which makes producers wait when it is full, and with
// ringQueue, the ring given Queue's contract (unbounded, no waiting, bytes
// counted, deadlines tracked):
// P producers push b.N 64-byte frames between them, each with a deadline,
// while one consumer drains everything ready in a loop. ns/op is per frame
// pushed and consumed; drains/op says how often the consumer found frames
// waiting.
func BenchmarkQueue(b *testing.B) {
	impls := []struct {
		name      string
		new       func() benchQueue
		deadlines bool // the queue tracks deadlines
	}{
		{"mutex", func() benchQueue { return &queueBench{} }, true},
		{"ring", func() benchQueue { return ringBench{newRing[[]byte](ringSize)} }, false},
		{"ringqueue", func() benchQueue { return &ringQueueBench{} }, true},
	}
	frame := make([]byte, 64)
	for _, impl := range impls {
		for _, producers := range []int{1, 4, 64} {
			b.Run(fmt.Sprintf("impl=%s/producers=%d", impl.name, producers), func(b *testing.B) {
				b.ReportAllocs()
				q := impl.new()
				start := make(chan struct{})
				var wg sync.WaitGroup
				for p := range producers {
					n := b.N / producers
					if p < b.N%producers {
						n++
					}
					deadline := time.Now().Add(time.Minute + time.Duration(p))
					wg.Go(func() {
						<-start
						for range n {
							q.push(frame, deadline)
						}
					})
				}
				b.ResetTimer()
				close(start)
				consumed, bytes, drains := 0, 0, 0
				for consumed < b.N {
					n, nb, latest := q.drain()
					if n == 0 {
						runtime.Gosched()
						continue
					}
					if impl.deadlines && latest.IsZero() {
						b.Fatalf("%d frames with deadlines drained without one", n)
					}
					consumed += n
					bytes += nb
					drains++
				}
				b.StopTimer()
				wg.Wait()
				if consumed != b.N || bytes != b.N*len(frame) {
					b.Fatalf("consumed %d frames, %d bytes; want %d, %d", consumed, bytes, b.N, b.N*len(frame))
				}
				b.ReportMetric(float64(drains)/float64(b.N), "drains/op")
			})
		}
	}
}
