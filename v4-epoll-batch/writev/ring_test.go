package writev

import (
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ring is the lock-free queue the batching design started from, kept here
// so that BenchmarkQueue can measure it against Queue: a bounded
// multi-producer, multi-consumer ring of frames.
//
// Every slot carries a sequence number that says whose turn it is. A slot
// at position pos is free for the producer of pos when its sequence is pos,
// holds that producer's frame when it is pos+1, and is free for the
// producer one lap later when the consumer sets it to pos+len(slots).
type ring struct {
	// tail is the next position a producer claims; head, the next one a
	// consumer takes. Each sits on its own cache line, so that producers
	// and the consumer do not invalidate each other's.
	_    [64]byte
	tail atomic.Uint64
	_    [56]byte
	head atomic.Uint64
	_    [56]byte

	mask  uint64
	slots []ringSlot
}

// ringSlot is one place in a ring.
type ringSlot struct {
	seq   atomic.Uint64
	frame []byte
}

// newRing returns a ring of size slots; size must be a power of two.
func newRing(size int) *ring {
	if size <= 0 || size&(size-1) != 0 {
		panic(fmt.Sprintf("ring size %d is not a power of two", size))
	}
	r := &ring{mask: uint64(size - 1), slots: make([]ringSlot, size)}
	for i := range r.slots {
		r.slots[i].seq.Store(uint64(i))
	}
	return r
}

// spinsBeforeYield is how many times a waiting goroutine polls a slot
// before it lets another goroutine run.
const spinsBeforeYield = 32

// push adds frame at the next position. While the ring is full it waits,
// polling and yielding, for the consumer to free the slot.
func (r *ring) push(frame []byte) {
	pos := r.tail.Load()
	for !r.tail.CompareAndSwap(pos, pos+1) {
		pos = r.tail.Load()
	}
	s := &r.slots[pos&r.mask]
	for spins := 0; s.seq.Load() != pos; spins++ {
		if spins >= spinsBeforeYield {
			runtime.Gosched()
		}
	}
	s.frame = frame
	s.seq.Store(pos + 1)
}

// pop takes the oldest frame, or reports false when none is ready: the ring
// is empty, or the producer of the next position has claimed it and not yet
// written it.
func (r *ring) pop() ([]byte, bool) {
	for {
		pos := r.head.Load()
		s := &r.slots[pos&r.mask]
		if s.seq.Load() != pos+1 {
			if r.head.Load() != pos {
				continue // another consumer took pos meanwhile
			}
			return nil, false
		}
		if r.head.CompareAndSwap(pos, pos+1) {
			frame := s.frame
			s.frame = nil
			s.seq.Store(pos + uint64(len(r.slots)))
			return frame, true
		}
	}
}

// ringSize is the ring's capacity in the benchmark.
const ringSize = 1024

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
		{"many producers, many consumers", 16, 8, 4, 2000},
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
						r.push(testFrame(p, i, 1))
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
			case <-time.After(30 * time.Second):
				t.Fatalf("the ring is stuck: %d of %d frames taken after 30 s", taken.Load(), total)
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
		r.push(testFrame(0, i, 1))
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

// mutexBench is the product's Queue, drained with Take.
type mutexBench struct {
	q     Queue
	batch [][]byte
}

func (m *mutexBench) push(frame []byte) {
	if _, ok := m.q.Push(frame); !ok {
		panic("push on a closed queue")
	}
}

func (m *mutexBench) drain() (frames, bytes int) {
	m.batch = m.q.Take(m.batch[:0])
	for _, f := range m.batch {
		bytes += len(f)
	}
	return len(m.batch), bytes
}

// ringBench is the lock-free ring, drained by popping until it is empty.
type ringBench struct{ r *ring }

func (rb ringBench) push(frame []byte) { rb.r.push(frame) }

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

// BenchmarkQueue compares the mutex-guarded Queue with the lock-free ring:
// P producers push b.N 64-byte frames between them while one consumer
// drains everything ready in a loop. ns/op is per frame pushed and
// consumed; drains/op says how often the consumer found frames waiting.
func BenchmarkQueue(b *testing.B) {
	impls := []struct {
		name string
		new  func() benchQueue
	}{
		{"mutex", func() benchQueue { return &mutexBench{} }},
		{"ring", func() benchQueue { return ringBench{newRing(ringSize)} }},
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
