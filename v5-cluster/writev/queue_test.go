package writev

import (
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestQueuePushTake(t *testing.T) {
	tests := []struct {
		name   string
		rounds [][]string // frames pushed before each Take
	}{
		{"empty", [][]string{{}}},
		{"one frame", [][]string{{"a"}}},
		{"several frames", [][]string{{"a", "bb", "ccc", "dddd"}}},
		{"several rounds", [][]string{{"a", "bb"}, {}, {"ccc"}, {"dddd", "e", "ff"}}},
		{"many frames", [][]string{manyFrames(1000), manyFrames(3), manyFrames(2000)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Queue
			var batch [][]byte
			for r, round := range tt.rounds {
				want := 0
				for _, s := range round {
					want += len(s)
					queued, ok := q.Push([]byte(s))
					if !ok || queued != want {
						t.Fatalf("round %d: Push(%q) = %d, %v; want %d, true", r, s, queued, ok, want)
					}
				}
				if got := q.Bytes(); got != want {
					t.Fatalf("round %d: Bytes() = %d, want %d", r, got, want)
				}
				batch = q.Take(batch[:0])
				if got := asStrings(batch); !slices.Equal(got, round) {
					t.Fatalf("round %d: Take = %q, want %q", r, got, round)
				}
				if q.Bytes() != 0 {
					t.Fatalf("round %d: Bytes() = %d after Take, want 0", r, q.Bytes())
				}
				if again := q.Take(nil); len(again) != 0 {
					t.Fatalf("round %d: a second Take gave %q", r, asStrings(again))
				}
			}
		})
	}
}

// TestQueueTakeSwaps checks that Take's trade of slices loses nothing: a
// batch handed out is never written by later pushes, and frames taken into
// a batch that still holds frames go after them.
func TestQueueTakeSwaps(t *testing.T) {
	var q Queue
	var batch [][]byte
	next := 0
	push := func(n int) []string {
		var pushed []string
		for range n {
			s := string(rune('a'+next%26)) + string(rune('A'+next/26%26))
			next++
			q.Push([]byte(s))
			pushed = append(pushed, s)
		}
		return pushed
	}
	for round := range 50 {
		pushed := push(round%7 + 1)
		keep := 0
		if round%3 == 0 && len(batch) > 0 {
			// The writer wrote only part of the last batch: the rest
			// stays in front.
			keep = len(batch) / 2
			batch = append(batch[:0], batch[len(batch)-keep:]...)
		} else {
			batch = batch[:0]
		}
		before := asStrings(batch)
		batch = q.Take(batch)
		want := append(before, pushed...)
		if got := asStrings(batch); !slices.Equal(got, want) {
			t.Fatalf("round %d: Take = %q, want %q", round, got, want)
		}
		// The queue now owns the other slice; filling it must not touch
		// the batch just taken.
		snapshot := asStrings(batch)
		more := push(3)
		if got := asStrings(batch); !slices.Equal(got, snapshot) {
			t.Fatalf("round %d: pushing %q changed the taken batch to %q, want %q", round, more, got, snapshot)
		}
		batch = q.Take(batch)
		if got := asStrings(batch); !slices.Equal(got, append(snapshot, more...)) {
			t.Fatalf("round %d: Take after more pushes = %q, want %q", round, got, append(snapshot, more...))
		}
	}
}

// TestQueueSteadyStateAllocs checks that once both slices have grown, a
// push and take cycle allocates nothing.
func TestQueueSteadyStateAllocs(t *testing.T) {
	var q Queue
	var batch [][]byte
	frame := []byte("frame")
	cycle := func() {
		for range 64 {
			q.Push(frame)
		}
		batch = q.Take(batch[:0])
		if len(batch) != 64 {
			t.Fatalf("Take gave %d frames, want 64", len(batch))
		}
	}
	cycle()
	cycle()
	if n := testing.AllocsPerRun(100, cycle); n != 0 {
		t.Fatalf("a push and take cycle made %v allocations, want 0", n)
	}
}

func TestQueueClose(t *testing.T) {
	tests := []struct {
		name   string
		queued []string
	}{
		{"empty", nil},
		{"one frame", []string{"a"}},
		{"several frames", []string{"a", "bb", "ccc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var q Queue
			for _, s := range tt.queued {
				q.PushUntil([]byte(s), time.Now().Add(time.Hour))
			}
			if left := asStrings(q.Close()); !slices.Equal(left, tt.queued) {
				t.Fatalf("Close returned %q, want %q", left, tt.queued)
			}
			if q.Bytes() != 0 {
				t.Fatalf("Bytes() = %d after Close, want 0", q.Bytes())
			}
			if queued, ok := q.Push([]byte("late")); ok || queued != 0 {
				t.Fatalf("Push after Close = %d, %v; want 0, false", queued, ok)
			}
			if got, latest := q.TakeUntil(nil); len(got) != 0 || !latest.IsZero() {
				t.Fatalf("TakeUntil after Close = %q, %v; want nothing, zero", asStrings(got), latest)
			}
			if left := q.Close(); len(left) != 0 {
				t.Fatalf("a second Close returned %q", asStrings(left))
			}
		})
	}
}

// manyFrames returns n distinct short frames.
func manyFrames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = string(rune('a'+i%26)) + string(rune('0'+i/26%10)) + string(rune('A'+i/260%26))
	}
	return out
}

// asStrings returns frames as strings, for comparing and printing.
func asStrings(frames [][]byte) []string {
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		out = append(out, string(f))
	}
	return out
}

// TestQueueKeepsOrder: many producers push while the consumer takes, and
// every producer's frames come out in its order, for Queue and for
// ringQueue, whose ring overflows here many times.
func TestQueueKeepsOrder(t *testing.T) {
	t.Run("queue", func(t *testing.T) { testKeepsOrder(t, &Queue{}) })
	t.Run("ringqueue", func(t *testing.T) { testKeepsOrder(t, &ringQueue{}) })
}

// queueLike is Queue's contract, which ringQueue keeps too.
type queueLike interface {
	Push([]byte) (int, bool)
	PushUntil([]byte, time.Time) (int, bool)
	Take([][]byte) [][]byte
	TakeUntil([][]byte) ([][]byte, time.Time)
	Bytes() int
}

func testKeepsOrder(t *testing.T, q queueLike) {
	const producers, each = 8, 5000
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				q.Push(testFrame(p, i, 1))
			}
		})
	}
	next := make([]int, producers)
	got := 0
	var batch [][]byte
	for got < producers*each {
		batch = q.Take(batch[:0])
		for _, f := range batch {
			p, i, err := parseTestFrame(f)
			if err != nil {
				t.Fatal(err)
			}
			if i != next[p] {
				t.Fatalf("producer %d: frame %d came out where %d was due", p, i, next[p])
			}
			next[p]++
			got++
		}
		if len(batch) == 0 {
			runtime.Gosched()
		}
	}
	wg.Wait()
	if q.Bytes() != 0 {
		t.Fatalf("%d bytes left queued", q.Bytes())
	}
}

// TestQueueDeadlines checks the deadline tracking of Queue, and of
// ringQueue, which must keep the same contract: TakeUntil returns the
// latest deadline of the frames it takes, zero if one of them has none or
// it takes none, and the tracking starts again after each Take or
// TakeUntil.
func TestQueueDeadlines(t *testing.T) {
	base := time.Now().Add(time.Hour)
	// at returns the deadline s seconds after base; 0 is no deadline.
	at := func(s int) time.Time {
		if s == 0 {
			return time.Time{}
		}
		return base.Add(time.Duration(s) * time.Second)
	}
	type round struct {
		push []int // deadlines of the frames pushed; -1 pushes with Push
		take bool  // take with Take, which returns no deadline
		want int   // what TakeUntil returns
	}
	tests := []struct {
		name   string
		rounds []round
	}{
		{"empty", []round{{nil, false, 0}}},
		{"one frame", []round{{[]int{2}, false, 2}}},
		{"latest of several", []round{{[]int{2, 3, 1}, false, 3}}},
		{"one frame has none", []round{{[]int{2, 0, 1}, false, 0}}},
		{"Push has none", []round{{[]int{2, -1}, false, 0}}},
		{"empty after a take", []round{{[]int{3}, false, 3}, {nil, false, 0}}},
		{"an earlier one after a take", []round{{[]int{3}, false, 3}, {[]int{1}, false, 1}}},
		{"one after a take of none", []round{{[]int{0}, false, 0}, {[]int{1}, false, 1}}},
		{"none after a take of one", []round{{[]int{1}, false, 1}, {[]int{0}, false, 0}}},
		{"Take resets", []round{{[]int{3}, true, 0}, {[]int{1}, false, 1}}},
		{"Take resets none", []round{{[]int{-1}, true, 0}, {[]int{1}, false, 1}}},
		// More frames than ringQueue's ring holds: the last ones overflow.
		{"many, the latest last", []round{{append(slices.Repeat([]int{1}, ringSize), 3), false, 3}}},
		{"many, the last has none", []round{{append(slices.Repeat([]int{1}, ringSize), 0), false, 0}}},
		{"many, then an earlier one", []round{{append(slices.Repeat([]int{1}, ringSize), 3), false, 3}, {[]int{2}, false, 2}}},
		{"many, then many earlier", []round{{append(slices.Repeat([]int{1}, ringSize), 3), false, 3}, {append(slices.Repeat([]int{1}, ringSize), 2), false, 2}}},
	}
	impls := []struct {
		name string
		new  func() queueLike
	}{
		{"queue", func() queueLike { return &Queue{} }},
		{"ringqueue", func() queueLike { return &ringQueue{} }},
	}
	for _, impl := range impls {
		for _, tt := range tests {
			t.Run(impl.name+"/"+tt.name, func(t *testing.T) {
				q := impl.new()
				var batch [][]byte
				for r, rd := range tt.rounds {
					for _, s := range rd.push {
						var ok bool
						if s < 0 {
							_, ok = q.Push([]byte("f"))
						} else {
							_, ok = q.PushUntil([]byte("f"), at(s))
						}
						if !ok {
							t.Fatalf("round %d: a push failed", r)
						}
					}
					if rd.take {
						batch = q.Take(batch[:0])
						if len(batch) != len(rd.push) {
							t.Fatalf("round %d: Take gave %d frames, want %d", r, len(batch), len(rd.push))
						}
						continue
					}
					var latest time.Time
					batch, latest = q.TakeUntil(batch[:0])
					if len(batch) != len(rd.push) {
						t.Fatalf("round %d: TakeUntil gave %d frames, want %d", r, len(batch), len(rd.push))
					}
					if !latest.Equal(at(rd.want)) {
						t.Fatalf("round %d: TakeUntil returned %v, want %v", r, latest, at(rd.want))
					}
				}
			})
		}
	}
}

// TestQueueTakeUntilAppends checks that TakeUntil, like Take, appends to
// a batch that still holds frames, and that the deadline it returns is
// that of the frames it took.
func TestQueueTakeUntilAppends(t *testing.T) {
	var q Queue
	base := time.Now()
	q.PushUntil([]byte("a"), base.Add(3*time.Second))
	q.PushUntil([]byte("b"), base.Add(2*time.Second))
	batch, latest := q.TakeUntil(nil)
	if !latest.Equal(base.Add(3 * time.Second)) {
		t.Fatalf("TakeUntil returned %v, want %v", latest, base.Add(3*time.Second))
	}
	batch = batch[1:] // the writer wrote the first frame
	q.PushUntil([]byte("c"), base.Add(time.Second))
	batch, latest = q.TakeUntil(batch)
	if got := asStrings(batch); !slices.Equal(got, []string{"b", "c"}) || !latest.Equal(base.Add(time.Second)) {
		t.Fatalf("TakeUntil into a batch holding \"b\" = %q, %v; want [b c], %v", got, latest, base.Add(time.Second))
	}
}
