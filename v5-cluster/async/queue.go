package async

import (
	"container/heap"
	"sync"
	"time"
)

// Queue runs functions at given times: the delay queue that holds every
// retry waiting for its backoff to pass. One goroutine serves the whole
// queue, sleeping on a timer set to the earliest due time and woken early
// when an earlier item arrives, so that waiting retries cost a heap entry
// each, not a goroutine each, and nothing polls. Due items are started on
// goroutines of their own, so that a slow one delays no other.
type Queue struct {
	// mu protects items, started and closed.
	mu      sync.Mutex
	items   itemHeap
	started bool
	closed  bool

	// wake tells the goroutine that the earliest item changed.
	wake chan struct{}
	quit chan struct{}
	done chan struct{}
}

// NewQueue returns an empty queue. Its goroutine starts with the first Add.
func NewQueue() *Queue {
	return &Queue{wake: make(chan struct{}, 1), quit: make(chan struct{}), done: make(chan struct{})}
}

// Add arranges for run to be started at due. It reports false, and runs
// nothing, once the queue is closed.
func (q *Queue) Add(due time.Time, run func()) bool {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return false
	}
	if !q.started {
		q.started = true
		go q.loop()
	}
	heap.Push(&q.items, item{due: due, run: run})
	earliest := q.items[0].due.Equal(due)
	q.mu.Unlock()
	if earliest {
		select {
		case q.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
	}
	return true
}

// Len returns the number of items waiting.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items)
}

func (q *Queue) loop() {
	defer close(q.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		q.mu.Lock()
		now := time.Now()
		var due []func()
		for len(q.items) > 0 && !q.items[0].due.After(now) {
			due = append(due, heap.Pop(&q.items).(item).run)
		}
		next := time.Duration(-1)
		if len(q.items) > 0 {
			next = q.items[0].due.Sub(now)
		}
		q.mu.Unlock()
		for _, run := range due {
			go run()
		}
		if next >= 0 {
			timer.Reset(next)
		} else {
			timer.Stop()
		}
		select {
		case <-timer.C:
		case <-q.wake:
		case <-q.quit:
			return
		}
	}
}

// Close stops the queue and returns the functions that were still
// waiting, without running them, so that the caller can end them another
// way. Later Adds report false.
func (q *Queue) Close() []func() {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	started := q.started
	var left []func()
	for _, it := range q.items {
		left = append(left, it.run)
	}
	q.items = nil
	q.mu.Unlock()
	if started {
		close(q.quit)
		<-q.done
	}
	return left
}

type item struct {
	due time.Time
	run func()
}

// itemHeap orders items by due time, earliest first.
type itemHeap []item

func (h itemHeap) Len() int           { return len(h) }
func (h itemHeap) Less(i, j int) bool { return h[i].due.Before(h[j].due) }
func (h itemHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *itemHeap) Push(x any)        { *h = append(*h, x.(item)) }
func (h *itemHeap) Pop() any {
	old := *h
	it := old[len(old)-1]
	*h = old[:len(old)-1]
	return it
}
