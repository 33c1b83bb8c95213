package writev

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ring is a bounded lock-free queue of frames: many producers, one
// consumer at a time. Every slot carries a sequence number that says whose
// turn it is: a slot at position pos is free for the producer of pos when
// its sequence is pos, holds that producer's frame when it is pos+1, and is
// free again for the producer one lap later once the consumer sets it to
// pos+len(slots). A producer claims a position with one compare-and-swap on
// tail; nothing else is shared between producers.
type ring struct {
	// tail is the next position a producer claims; head, the next one the
	// consumer takes. Each has a cache line of its own, so that producers
	// and the consumer do not invalidate each other's.
	_    [64]byte
	tail atomic.Uint64
	_    [56]byte
	head atomic.Uint64
	_    [56]byte

	mask  uint64
	slots []ringSlot
}

type ringSlot struct {
	seq   atomic.Uint64
	frame []byte
}

// newRing returns an empty ring of size slots, a power of two.
func newRing(size int) *ring {
	r := &ring{mask: uint64(size - 1), slots: make([]ringSlot, size)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// tryPush adds frame, or reports false if the ring is full. It never
// waits.
func (r *ring) tryPush(frame []byte) bool {
	for {
		pos := r.tail.Load()
		s := &r.slots[pos&r.mask]
		switch seq := s.seq.Load(); {
		case seq == pos:
			if r.tail.CompareAndSwap(pos, pos+1) {
				s.frame = frame
				s.seq.Store(pos + 1) // publishes the frame
				return true
			}
		case seq < pos:
			return false // the slot still holds a frame from a lap ago: full
		}
		// Another producer took pos first: try the next one.
	}
}

// pop takes the oldest frame, or reports false when none is ready: the
// ring is empty, or the producer of the next position has claimed it and
// not yet written it.
func (r *ring) pop() ([]byte, bool) {
	pos := r.head.Load()
	s := &r.slots[pos&r.mask]
	if s.seq.Load() != pos+1 {
		return nil, false
	}
	frame := s.frame
	s.frame = nil
	r.head.Store(pos + 1)
	s.seq.Store(pos + uint64(len(r.slots))) // frees the slot for the next lap
	return frame, true
}

// ringSize is the capacity of the rings measured.
const ringSize = 1024

// ringQueue is the ring made into what Queue must be: unbounded, never
// making a producer wait, and counting the bytes queued for backpressure.
// A producer that finds the ring full puts its frame in an overflow slice
// behind a mutex instead, and from then on every producer does, until the
// consumer has taken the overflow; the consumer takes the ring before the
// overflow, so no producer's frames are reordered. It is what the product
// would use if the ring had won BenchmarkQueue.
type ringQueue struct {
	ring *ring
	once sync.Once

	// bytes is written by every push and take: it has a cache line of its
	// own, away from the fields that are only read.
	_     [64]byte
	bytes atomic.Int64
	_     [56]byte

	// overflowing is set while the overflow holds frames; mu protects
	// overflow.
	overflowing atomic.Bool
	mu          sync.Mutex
	overflow    [][]byte

	// closed refuses pushes. A push that races with Close may still land
	// after Close has emptied the queue; its frame is then never written,
	// like every frame of a connection that is closing.
	closed atomic.Bool
}

func (q *ringQueue) init() { q.once.Do(func() { q.ring = newRing(ringSize) }) }

// Push adds a frame and returns the bytes now queued, for backpressure. It
// reports false, and queues nothing, once the queue is closed.
func (q *ringQueue) Push(frame []byte) (queued int, ok bool) {
	q.init()
	if q.closed.Load() {
		return int(q.bytes.Load()), false
	}
	if q.overflowing.Load() || !q.ring.tryPush(frame) {
		q.mu.Lock()
		q.overflow = append(q.overflow, frame)
		q.overflowing.Store(true)
		q.mu.Unlock()
	}
	return int(q.bytes.Add(int64(len(frame)))), true
}

// Take moves every queued frame to the end of dst and returns it.
func (q *ringQueue) Take(dst [][]byte) [][]byte {
	q.init()
	n := 0
	for {
		f, ok := q.ring.pop()
		if !ok {
			break
		}
		dst = append(dst, f)
		n += len(f)
	}
	if q.overflowing.Load() {
		q.mu.Lock()
		// Again, under the lock: a producer may have put a frame in the
		// ring after the loop above and its next frame in the overflow;
		// taking the ring first keeps its two frames in order.
		for {
			f, ok := q.ring.pop()
			if !ok {
				break
			}
			dst = append(dst, f)
			n += len(f)
		}
		for _, f := range q.overflow {
			n += len(f)
		}
		dst = append(dst, q.overflow...)
		clear(q.overflow)
		q.overflow = q.overflow[:0]
		q.overflowing.Store(false)
		q.mu.Unlock()
	}
	q.bytes.Add(-int64(n))
	return dst
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
func pushWait(r *ring, frame []byte) {
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
			r := newRing(tt.size)
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
	r := newRing(4)
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
	push(frame []byte)
	// drain consumes every frame ready and returns how many frames and
	// bytes it consumed.
	drain() (frames, bytes int)
}

// ringBench is the bare lock-free ring, drained by popping until it is
// empty; producers wait while it is full.
type ringBench struct{ r *ring }

func (rb ringBench) push(frame []byte) { pushWait(rb.r, frame) }

func (rb ringBench) drain() (frames, bytes int) {
	for {
		f, ok := rb.r.pop()
		if !ok {
			return frames, bytes
		}
		frames++
		bytes += len(f)
	}
}

// queueBench is the product's Queue: a slice behind a mutex.
type queueBench struct {
	q     Queue
	batch [][]byte
}

func (m *queueBench) push(frame []byte) {
	if _, ok := m.q.Push(frame); !ok {
		panic("push on a closed queue")
	}
}

func (m *queueBench) drain() (frames, bytes int) {
	m.batch = m.q.Take(m.batch[:0])
	for _, f := range m.batch {
		bytes += len(f)
	}
	return len(m.batch), bytes
}

// ringQueueBench is the ring with its overflow: Queue's contract.
type ringQueueBench struct {
	q     ringQueue
	batch [][]byte
}

func (m *ringQueueBench) push(frame []byte) {
	if _, ok := m.q.Push(frame); !ok {
		panic("push on a closed queue")
	}
}

func (m *ringQueueBench) drain() (frames, bytes int) {
	m.batch = m.q.Take(m.batch[:0])
	for _, f := range m.batch {
		bytes += len(f)
	}
	return len(m.batch), bytes
}

// BenchmarkQueue compares Queue (a slice behind a mutex) with the bare
// lock-free ring, which makes producers wait when it is full, and with
// ringQueue, the ring given Queue's contract (unbounded, no waiting, bytes
// counted):
// P producers push b.N 64-byte frames between them while one consumer
// drains everything ready in a loop. ns/op is per frame pushed and
// consumed; drains/op says how often the consumer found frames waiting.
func BenchmarkQueue(b *testing.B) {
	impls := []struct {
		name string
		new  func() benchQueue
	}{
		{"mutex", func() benchQueue { return &queueBench{} }},
		{"ring", func() benchQueue { return ringBench{newRing(ringSize)} }},
		{"ringqueue", func() benchQueue { return &ringQueueBench{} }},
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
					wg.Go(func() {
						<-start
						for range n {
							q.push(frame)
						}
					})
				}
				b.ResetTimer()
				close(start)
				consumed, bytes, drains := 0, 0, 0
				for consumed < b.N {
					n, nb := q.drain()
					if n == 0 {
						runtime.Gosched()
						continue
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
