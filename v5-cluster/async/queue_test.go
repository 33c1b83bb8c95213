package async_test

import (
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"myrpc/v5-cluster/async"
)

// TestQueueRunsInDueOrder: items run no earlier than their due time, and
// are taken in due order, whatever order they were added in. Each item
// looks at the queue when it starts: every item due before it must have
// left the queue already, and every item due in an hour must still be
// there.
func TestQueueRunsInDueOrder(t *testing.T) {
	const ms, far = time.Millisecond, time.Hour
	tests := []struct {
		name string
		// offsets are the items' due times from now, in the order added;
		// items due in an hour or more must not run during the test.
		offsets []time.Duration
	}{
		{"added in order", []time.Duration{30 * ms, 60 * ms, 90 * ms, 120 * ms, 150 * ms}},
		{"added in reverse", []time.Duration{150 * ms, 120 * ms, 90 * ms, 60 * ms, 30 * ms}},
		{"shuffled", []time.Duration{90 * ms, 30 * ms, 150 * ms, 60 * ms, 120 * ms}},
		{"some already due", []time.Duration{60 * ms, -20 * ms, 30 * ms, -10 * ms, 90 * ms}},
		{"equal times", []time.Duration{40 * ms, 40 * ms, 20 * ms, 40 * ms, 20 * ms}},
		{"far items first", []time.Duration{2 * far, far, 50 * ms, 3 * far, 20 * ms}},
		{"far items last", []time.Duration{20 * ms, 50 * ms, far, 3 * far, 2 * far}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := async.NewQueue()
			defer q.Close()
			type run struct {
				at   time.Time
				left int
			}
			n := len(tt.offsets)
			runs := make([]run, n)
			var wg sync.WaitGroup
			nFar := 0
			for _, off := range tt.offsets {
				if off >= far {
					nFar++
				}
			}
			wg.Add(n - nFar)
			base := time.Now().Add(20 * time.Millisecond)
			dues := make([]time.Time, n)
			for i, off := range tt.offsets {
				dues[i] = base.Add(off)
				if !q.Add(dues[i], func() {
					runs[i] = run{at: time.Now(), left: q.Len()}
					wg.Done()
				}) {
					t.Fatal("Add to an open queue = false")
				}
			}
			wait(t, &wg, "the items due soon to run")
			for i := range n {
				if tt.offsets[i] >= far {
					continue
				}
				if runs[i].at.Before(dues[i]) {
					t.Errorf("item %d ran %v before its due time", i, dues[i].Sub(runs[i].at))
				}
				if late := runs[i].at.Sub(dues[i]); late > 2*time.Second {
					t.Errorf("item %d ran %v late", i, late)
				}
				// Items due later than this one may still wait; no other.
				later := 0
				for j := range n {
					if dues[j].After(dues[i]) {
						later++
					}
				}
				if runs[i].left > later || runs[i].left < nFar {
					t.Errorf("item %d started with %d items waiting, want %d to %d", i, runs[i].left, nFar, later)
				}
			}
			if left := q.Close(); len(left) != nFar {
				t.Fatalf("Close returned %d items, want the %d far ones", len(left), nFar)
			}
		})
	}
}

// TestQueueWakesEarly: an item due before every waiting one wakes the
// queue's goroutine early, rather than waiting for the earlier timer.
func TestQueueWakesEarly(t *testing.T) {
	q := async.NewQueue()
	defer q.Close()
	late := make(chan struct{}, 1)
	early := make(chan time.Time, 1)
	q.Add(time.Now().Add(time.Second), func() { late <- struct{}{} })
	// Let the goroutine go to sleep on the 1 s timer first.
	waitFor(t, "the queue's goroutine to park", func() bool { return parked(goroutinesIn(queueLoop)) })
	start := time.Now()
	q.Add(start.Add(20*time.Millisecond), func() { early <- time.Now() })
	select {
	case at := <-early:
		if d := at.Sub(start); d < 20*time.Millisecond || d > 500*time.Millisecond {
			t.Fatalf("the early item ran after %v, want about 20 ms", d)
		}
	case <-late:
		t.Fatal("the 1 s item ran before the 20 ms one")
	case <-time.After(5 * time.Second):
		t.Fatal("the early item did not run")
	}
	if left := q.Close(); len(left) != 1 {
		t.Fatalf("Close returned %d items, want the 1 s one", len(left))
	}
	select {
	case <-late:
		t.Fatal("the 1 s item ran although Close took it")
	default:
	}
}

// parked reports whether the goroutines (headers from goroutinesIn) are
// exactly one, blocked in a select.
func parked(headers []string) bool {
	return len(headers) == 1 && strings.Contains(headers[0], "[select")
}

// TestQueueSleepsWithoutPolling: with one item due in 300 ms, the queue's
// goroutine sleeps in a select on its timer: it is not running, and not in
// a sleep-and-look loop.
func TestQueueSleepsWithoutPolling(t *testing.T) {
	q := async.NewQueue()
	defer q.Close()
	q.Add(time.Now().Add(300*time.Millisecond), func() {})
	waitFor(t, "the queue's goroutine to park in a select", func() bool { return parked(goroutinesIn(queueLoop)) })
	if q.Len() != 1 {
		t.Skip("the machine was too slow to look before the item was due")
	}
	// Look again a few times while the item waits: never running.
	for range 5 {
		h := goroutinesIn(queueLoop)
		if q.Len() != 1 {
			break
		}
		if !parked(h) {
			t.Fatalf("the queue's goroutine is %q while its only item waits", h)
		}
	}
}

// TestQueueGoroutine: no goroutine before the first Add, exactly one after,
// none after Close.
func TestQueueGoroutine(t *testing.T) {
	before := goleak.IgnoreCurrent()
	q := async.NewQueue()
	if err := goleak.Find(before); err != nil {
		t.Fatalf("NewQueue started a goroutine: %v", err)
	}
	ran := make(chan struct{}, 2)
	q.Add(time.Now(), func() { ran <- struct{}{} })
	q.Add(time.Now().Add(time.Hour), func() { ran <- struct{}{} })
	select {
	case <-ran:
	case <-time.After(5 * time.Second):
		q.Close()
		t.Fatal("the item due now did not run")
	}
	if n := len(goroutinesIn(queueLoop)); n != 1 {
		t.Fatalf("%d goroutines serve the queue, want 1", n)
	}
	q.Close()
	waitFor(t, "the queue's goroutine to end", func() bool { return len(goroutinesIn(queueLoop)) == 0 })
	goleak.VerifyNone(t, before)
}

// TestQueueClose: Close returns the waiting items unrun and stops the
// goroutine; later Adds report false and run nothing; Close is safe to
// repeat, and on a queue never used.
func TestQueueClose(t *testing.T) {
	t.Run("waiting items", func(t *testing.T) {
		q := async.NewQueue()
		var ran atomic.Int64
		for i := range 3 {
			q.Add(time.Now().Add(time.Hour+time.Duration(i)), func() { ran.Add(1) })
		}
		left := q.Close()
		if len(left) != 3 || ran.Load() != 0 {
			t.Fatalf("Close returned %d items with %d run, want 3 unrun", len(left), ran.Load())
		}
		if q.Len() != 0 {
			t.Fatalf("Len() after Close = %d", q.Len())
		}
		for _, run := range left {
			run()
		}
		if ran.Load() != 3 {
			t.Fatalf("running what Close returned ran %d items, want 3", ran.Load())
		}
		if q.Add(time.Now(), func() { ran.Add(100) }) {
			t.Fatal("Add after Close = true")
		}
		if again := q.Close(); again != nil {
			t.Fatalf("second Close returned %d items", len(again))
		}
		waitFor(t, "the queue's goroutine to end", func() bool { return len(goroutinesIn(queueLoop)) == 0 })
		if ran.Load() != 3 {
			t.Fatal("an item added after Close ran")
		}
	})
	t.Run("never used", func(t *testing.T) {
		before := goleak.IgnoreCurrent()
		q := async.NewQueue()
		if left := q.Close(); left != nil {
			t.Fatalf("Close of an empty queue returned %d items", len(left))
		}
		if q.Add(time.Now(), func() { t.Error("ran") }) {
			t.Fatal("Add after Close = true")
		}
		goleak.VerifyNone(t, before)
	})
}

// TestQueueManyItems: items added from many goroutines at once each run
// exactly once.
func TestQueueManyItems(t *testing.T) {
	const (
		adders = 8
		each   = 250
	)
	q := async.NewQueue()
	defer q.Close()
	var counts [adders * each]atomic.Int32
	var wg sync.WaitGroup
	wg.Add(adders * each)
	var added sync.WaitGroup
	for a := range adders {
		added.Add(1)
		go func() {
			defer added.Done()
			r := rand.New(rand.NewPCG(uint64(a), 1))
			for i := range each {
				k := a*each + i
				due := time.Now().Add(time.Duration(r.IntN(60)-10) * time.Millisecond)
				if !q.Add(due, func() {
					counts[k].Add(1)
					wg.Done()
				}) {
					t.Error("Add = false")
				}
			}
		}()
	}
	added.Wait()
	wait(t, &wg, "every item to run")
	for k := range counts {
		if n := counts[k].Load(); n != 1 {
			t.Fatalf("item %d ran %d times", k, n)
		}
	}
	if n := q.Len(); n != 0 {
		t.Fatalf("Len() = %d after every item ran", n)
	}
}
